package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles ./cmd/dashstream of the module that contains the working
// directory into dir and returns the binary's path.
func Build(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "dashstream")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/dashstream")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("chaos: go build ./cmd/dashstream: %w\n%s", err, out)
	}
	return bin, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("chaos: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Gateway is `dashstream serve` as a child process that a scenario can
// start, SIGKILL and start again (same port, same INSTANCE_ID).
type Gateway struct {
	Name string
	Port int
	// InternalPort is INTERNAL_ADDR's port, 0 when unset.
	InternalPort int
	// NoFile, when positive, runs the gateway with RLIMIT_NOFILE (soft and
	// hard) set to it.
	NoFile int

	t   testing.TB
	bin string
	env []string
	log string

	// mu guards cmd and done.
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the running process exited
}

// NewGateway prepares an instance; env holds its configuration (KAFKA_*,
// REDIS_URL, …) on top of the loopback bind on port. It is killed when t ends.
func NewGateway(t testing.TB, bin, name string, port int, env map[string]string) *Gateway {
	g := &Gateway{Name: name, Port: port, t: t, bin: bin, log: filepath.Join(t.TempDir(), name+".log")}
	g.env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"WEBSOCKET_HOST=127.0.0.1", "WEBSOCKET_PORT=" + strconv.Itoa(port), "INSTANCE_ID=" + name}
	for k, v := range env {
		g.env = append(g.env, k+"="+v)
	}
	t.Cleanup(func() {
		g.Kill()
		if t.Failed() {
			g.dumpLog()
		}
	})
	return g
}

func (g *Gateway) dumpLog() {
	b, err := os.ReadFile(g.log)
	if err != nil {
		return
	}
	const keep = 8 << 10
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	g.t.Logf("chaos: last lines of gateway %s log:\n%s", g.Name, b)
}

// Base is the instance's public HTTP base URL.
func (g *Gateway) Base() string { return "http://127.0.0.1:" + strconv.Itoa(g.Port) }

// WS is the instance's WebSocket URL.
func (g *Gateway) WS() string { return "ws://127.0.0.1:" + strconv.Itoa(g.Port) + "/ws" }

// probeBase serves /readyz and /healthz: the internal listener when set.
func (g *Gateway) probeBase() string {
	if g.InternalPort > 0 {
		return "http://127.0.0.1:" + strconv.Itoa(g.InternalPort)
	}
	return g.Base()
}

// Start runs the process (not waiting for readiness).
func (g *Gateway) Start() {
	g.t.Helper()
	f, err := os.OpenFile(g.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		g.t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "=== start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(g.bin, "serve")
	if g.NoFile > 0 {
		// exec keeps the pid: a signal to cmd reaches the gateway itself.
		cmd = exec.Command("bash", "-c", `ulimit -n "$1" && exec "$2" serve`, "_", strconv.Itoa(g.NoFile), g.bin)
	}
	cmd.Env, cmd.Stdout, cmd.Stderr = g.env, f, f
	if err := cmd.Start(); err != nil {
		g.t.Fatalf("chaos: start gateway %s: %v", g.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }() // the exit status is read from ProcessState
	g.mu.Lock()
	g.cmd, g.done = cmd, done
	g.mu.Unlock()
}

// Exited reports whether the process started last has ended.
func (g *Gateway) Exited() bool {
	g.mu.Lock()
	done := g.done
	g.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// Kill ends the process with SIGKILL (a crash) and waits for it.
func (g *Gateway) Kill() { g.signal(syscall.SIGKILL, 10*time.Second) }

// Stop sends SIGTERM and waits for the ordered shutdown (SIGKILL after 30 s).
func (g *Gateway) Stop() { g.signal(syscall.SIGTERM, 30*time.Second) }

func (g *Gateway) signal(sig syscall.Signal, wait time.Duration) {
	g.mu.Lock()
	cmd, done := g.cmd, g.done
	g.cmd = nil
	g.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
	}
}

var probeClient = &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// Status returns the HTTP status of GET path on the probe listener, 0 when
// it does not answer within a second.
func (g *Gateway) Status(path string) int {
	resp, err := probeClient.Get(g.probeBase() + path)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // drain for keep-alive; the status is the answer
	resp.Body.Close()
	return resp.StatusCode
}

// Ready reports /readyz == 200.
func (g *Gateway) Ready() bool { return g.Status("/readyz") == http.StatusOK }

// Health is the parsed /health body (public listener).
type Health struct {
	Status      string `json:"status"`
	KafkaStatus string `json:"kafka_status"`
	Alert       string `json:"alert"`
	Replay      struct {
		RedisEnabled  bool  `json:"redis_enabled"`
		RedisFailures int64 `json:"redis_write_failures"`
	} `json:"replay_buffer"`
}

// Health fetches /health.
func (g *Gateway) Health() (Health, error) {
	var h Health
	return h, g.getJSON("/health", &h)
}

// Namespace is /version's resume_namespace.
func (g *Gateway) Namespace() (string, error) {
	var v struct {
		Namespace string `json:"resume_namespace"`
	}
	err := g.getJSON("/version", &v)
	return v.Namespace, err
}

func (g *Gateway) getJSON(path string, v any) error {
	resp, err := probeClient.Get(g.Base() + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("chaos: GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}

// WaitReady polls /readyz (every 50 ms) until it is want, and returns how
// long that took; ok is false after timeout or when the process exited.
func (g *Gateway) WaitReady(want bool, timeout time.Duration) (took time.Duration, ok bool) {
	start := time.Now()
	for time.Since(start) < timeout {
		if g.Exited() && want {
			return time.Since(start), false
		}
		if g.Ready() == want {
			return time.Since(start), true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start), false
}

// CPUTime returns the user+system CPU time the running process has used so
// far (from /proc), 0 when it is not running.
func (g *Gateway) CPUTime() time.Duration {
	g.mu.Lock()
	cmd := g.cmd
	g.mu.Unlock()
	if cmd == nil {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / hz
}
