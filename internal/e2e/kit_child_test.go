package e2e

// The kit's child-process harness (doc.go describes the whole kit):
// `dashstream serve`, built from this tree, as the process users run — for
// crashes (SIGKILL) and process limits (prlimit).

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// buildBinary builds cmd/dashstream into dir and returns the binary's path.
func buildBinary(t testing.TB, dir string) string {
	t.Helper()
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			t.Fatal("go.mod not found above the working directory")
		}
		root = parent
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(dir, "dashstream")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./cmd/dashstream")
	cmd.Dir = root
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/dashstream: %v\n%s", err, out)
	}
	t.Logf("built %s in %v", bin, time.Since(start).Round(time.Millisecond))
	return bin
}

// child is `dashstream serve` running as a child process; start may run it
// again after a stop or kill (same settings).
type child struct {
	t        testing.TB
	argv     []string // the command line: [prlimit --nofile=N] bin serve
	env      []string
	public   string // host:port of the public listener
	internal string // host:port of INTERNAL_ADDR, "" when off
	log      string // stdout+stderr of every run, appended
	cmd      *exec.Cmd
	done     chan struct{} // closed when the running process exited
}

// childOption is one of newChild's options.
type childOption func(*child)

// underPrlimit runs the gateway through util-linux prlimit with
// --nofile=nofile ("soft:hard"); prlimit execs it, so the pid is the
// gateway's.
func underPrlimit(prlimit, nofile string) childOption {
	return func(c *child) { c.argv = append([]string{prlimit, "--nofile=" + nofile}, c.argv...) }
}

// withInternal sets INTERNAL_ADDR to a free port; readiness is then probed
// there.
func withInternal() childOption {
	return func(c *child) {
		c.internal = "127.0.0.1:" + strconv.Itoa(testenv.FreePort(c.t))
		c.env = append(c.env, "INTERNAL_ADDR="+c.internal)
	}
}

// newChild prepares `bin serve` on a free loopback port with env (and
// nothing of the test's environment but PATH and HOME). It is stopped
// (SIGTERM) at cleanup, and its log shown when the test failed.
func newChild(t testing.TB, bin string, env map[string]string, opts ...childOption) *child {
	t.Helper()
	c := &child{t: t, argv: []string{bin, "serve"}, public: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
		log: filepath.Join(t.TempDir(), "gateway.log")}
	c.env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"WEBSOCKET_HOST=127.0.0.1", "WEBSOCKET_PORT=" + strings.TrimPrefix(c.public, "127.0.0.1:")}
	for k, v := range env {
		c.env = append(c.env, k+"="+v)
	}
	for _, o := range opts {
		o(c)
	}
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			if b, err := os.ReadFile(c.log); err == nil {
				t.Logf("child gateway log:\n%s", b)
			}
		}
	})
	return c
}

func (c *child) ws() string { return "ws://" + c.public + "/ws" }

// start runs the gateway and waits until /readyz answers 200 (on the
// internal listener when there is one).
func (c *child) start() {
	c.t.Helper()
	f, err := os.OpenFile(c.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "=== start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Env, cmd.Stdout, cmd.Stderr = c.env, f, f
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start gateway (%s): %v", strings.Join(c.argv, " "), err)
	}
	c.cmd, c.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(c.done)
	probe := c.public
	if c.internal != "" {
		probe = c.internal
	}
	// No keep-alive: an idle probe connection would hold one of the
	// child's descriptors.
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	testenv.WaitFor(c.t, 60*time.Second, func() bool {
		select {
		case <-c.done:
			c.t.Fatalf("gateway exited before ready: %v", cmd.ProcessState)
		default:
		}
		resp, err := hc.Get("http://" + probe + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "child gateway /readyz 200")
}

// stop sends SIGTERM and waits for the exit (SIGKILL after 20 s, which
// fails the test).
func (c *child) stop() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		c.t.Error("gateway did not stop within 20s of SIGTERM")
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	c.cmd = nil
}

// kill ends the running gateway with SIGKILL (a crash) and waits for it.
func (c *child) kill() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
	c.cmd = nil
}

// openFiles reads the soft and hard "Max open files" of the running child
// from /proc.
func (c *child) openFiles() (soft, hard string) {
	c.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", c.cmd.Process.Pid))
	if err != nil {
		c.t.Fatal(err)
	}
	m := regexp.MustCompile(`Max open files\s+(\S+)\s+(\S+)`).FindSubmatch(b)
	if m == nil {
		c.t.Fatalf("no open-file limit in /proc/%d/limits:\n%s", c.cmd.Process.Pid, b)
	}
	return string(m[1]), string(m[2])
}

// logged returns the value of key in the first log line with msg.
func (c *child) logged(msg, key string) string {
	c.t.Helper()
	b, err := os.ReadFile(c.log)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, `msg="`+msg+`"`) {
			continue
		}
		if m := regexp.MustCompile(`\b` + key + `=(\S+)`).FindStringSubmatch(line); m != nil {
			return m[1]
		}
	}
	c.t.Fatalf("no %q with %s in the gateway log", msg, key)
	return ""
}
