package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
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

// child is `dashstream serve` running as a child process.
type child struct {
	t    testing.TB
	bin  string
	env  []string
	port int
	log  string // stdout+stderr of every run, appended
	cmd  *exec.Cmd
	done chan struct{} // closed when the running process exited
}

func newChild(t testing.TB, bin string, env map[string]string) *child {
	c := &child{t: t, bin: bin, port: testenv.FreePort(t), log: filepath.Join(t.TempDir(), "gateway.log")}
	c.env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"WEBSOCKET_HOST=127.0.0.1", "WEBSOCKET_PORT=" + strconv.Itoa(c.port)}
	for k, v := range env {
		c.env = append(c.env, k+"="+v)
	}
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			if b, err := os.ReadFile(c.log); err == nil {
				t.Logf("child gateway log:\n%s", b)
			}
		}
	})
	return c
}

func (c *child) base() string { return "http://127.0.0.1:" + strconv.Itoa(c.port) }
func (c *child) ws() string   { return "ws://127.0.0.1:" + strconv.Itoa(c.port) + "/ws" }

// start runs the gateway and waits until /readyz answers 200.
func (c *child) start() {
	c.t.Helper()
	f, err := os.OpenFile(c.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "=== start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(c.bin, "serve")
	cmd.Env, cmd.Stdout, cmd.Stderr = c.env, f, f
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start gateway: %v", err)
	}
	c.cmd, c.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(c.done)
	hc := &http.Client{Timeout: time.Second}
	testenv.WaitFor(c.t, 60*time.Second, func() bool {
		select {
		case <-c.done:
			c.t.Fatalf("gateway exited before ready: %v", cmd.ProcessState)
		default:
		}
		resp, err := hc.Get(c.base() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "child gateway /readyz 200")
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

// TestReplayRestartAfterSIGKILL: `dashstream serve` as a child process is
// killed with SIGKILL in the middle of a stream and started again (same
// INSTANCE_ID). The restarted instance re-reads from its last saved
// progress (at-least-once consumption, saved every 0.2 s); a client that
// resumes with its cursor still gets every record exactly once: nothing
// lost in the crash, nothing duplicated by the re-read.
func TestReplayRestartAfterSIGKILL(t *testing.T) {
	k, topic := kafkaEnv(t, 2)
	r := testenv.Redis(t)
	bin := buildBinary(t, t.TempDir())
	instance := "sigkill-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	gw := newChild(t, bin, map[string]string{
		"KAFKA_BROKERS": strings.Join(k.Brokers, ","), "KAFKA_TOPIC": topic, "REDIS_URL": r.URL,
		"INSTANCE_ID": instance, "KAFKA_PROGRESS_INTERVAL_SECS": "0.2", "KAFKA_AUTO_OFFSET_RESET": "earliest",
		"LOG_LEVEL": "warn", "EXPECTED_SCHEMAS_PATH": filepath.Join(t.TempDir(), "schemas.json"),
	})
	l := newProduced()
	pr := startProducer(t, k, topic, l, 2, 2, 10*time.Millisecond)
	gw.start()

	dial := func(cursor map[int32]int64) *wsclient.Conn {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := wsclient.Dial(ctx, gw.ws(), wsclient.Options{
			Resume: &wsclient.Resume{From: wsclient.FromCursor, Offsets: cursor}})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
	s := newExact(l, cursorAll(2, -1))
	c1 := dial(cursorAll(2, -1))
	if err := readExact(c1, s, arrive, func(wsclient.Message) (bool, error) { return s.n >= 400, nil }); err != nil {
		t.Fatal(err)
	}
	gw.kill()
	// Whatever reached the client before the crash is applied too.
	err := readExact(c1, s, arrive, func(wsclient.Message) (bool, error) { return false, nil })
	if errors.Is(err, errNotExact) {
		t.Fatal(err)
	}
	cursor, atKill := s.cursor(), s.n
	saved := savedProgress(t, k, "websocket-server-v4."+instance, topic)
	t.Logf("killed: client applied %d records, cursor %v; saved progress (next offsets) %v; last produced %v",
		atKill, cursor, saved, l.last())

	gw.start()
	c2 := dial(cursor)
	rc, n := readReplayComplete(t, c2, s, arrive)
	if rc.TotalReplayed != n {
		t.Fatalf("replay_complete %+v after %d records", rc, n)
	}
	if err := readExact(c2, s, arrive, func(wsclient.Message) (bool, error) { return s.n >= atKill+n+200, nil }); err != nil {
		t.Fatal(err)
	}
	if err := pr.Stop(); err != nil {
		t.Fatal(err)
	}
	readExactTo(t, c2, s, l.last(), arrive)
	if s.n != l.total() {
		t.Fatalf("client applied %d records, %d were produced", s.n, l.total())
	}
	t.Logf("after restart: %d replayed, %d in total, all exactly once", n, s.n)
}

// savedProgress reads an instance's saved next offsets.
func savedProgress(t testing.TB, k *testenv.KafkaEnv, group, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := k.Admin.FetchOffsets(ctx, group)
	if err != nil {
		t.Logf("fetch offsets of %s: %v", group, err)
		return nil
	}
	out := map[int32]int64{}
	for p, o := range resp[topic] {
		out[p] = o.At
	}
	return out
}
