//go:build linux

package e2e

// File-descriptor exhaustion, end to end: `dashstream serve` runs as a child
// process under a lowered RLIMIT_NOFILE (util-linux prlimit), with the
// embedded broker and INTERNAL_ADDR set, and is flooded with WebSocket
// connection attempts from one address.

import (
	"bufio"
	"io"
	"maps"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/limits"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// startFDChild runs `prlimit --nofile=<nofile> dashstream serve` with the
// embedded broker (and INTERNAL_ADDR when internal) and waits for /readyz
// on the internal listener (or the public one without it).
func startFDChild(t *testing.T, prlimit, bin, nofile string, internal bool, extra map[string]string) *child {
	t.Helper()
	env := map[string]string{"EMBEDDED_KAFKA_ADDR": "127.0.0.1:0", "EMBEDDED_KAFKA_PARTITIONS": "2",
		"EXPECTED_SCHEMAS_PATH": filepath.Join(t.TempDir(), "schemas.json"),
		"INSTANCE_ID":           "fd-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		"SHUTDOWN_TIMEOUT_SECS": "5", "LOG_LEVEL": "info"}
	maps.Copy(env, extra)
	opts := []childOption{underPrlimit(prlimit, nofile)}
	if internal {
		opts = append(opts, withInternal())
	}
	c := newChild(t, bin, env, opts...)
	c.start()
	return c
}

func noKeepAliveClient() *http.Client {
	return &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// statusOf returns GET url's status, 0 when it failed.
func statusOf(c *http.Client, url string) int {
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// attempt is the outcome of one WebSocket handshake.
type attempt struct {
	code       int // 0: failed (err)
	retryAfter string
	took       time.Duration
	err        error
	conn       net.Conn // open when code is 101
}

// upgrade dials addr and sends a WebSocket handshake; every step is bounded
// by limit. A 101 leaves the connection open.
func upgrade(addr string, limit time.Duration) attempt {
	start := time.Now()
	a := attempt{}
	c, err := net.DialTimeout("tcp", addr, limit)
	if err != nil {
		a.err, a.took = err, time.Since(start)
		return a
	}
	_ = c.SetDeadline(start.Add(limit))
	_, err = io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: "+addr+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	}
	a.took = time.Since(start)
	if err != nil {
		c.Close()
		a.err = err
		return a
	}
	resp.Body.Close()
	a.code, a.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
	if a.code == http.StatusSwitchingProtocols {
		_ = c.SetDeadline(time.Time{})
		a.conn = c
	} else {
		c.Close()
	}
	return a
}

// TestFaultFD runs the gateway under a lowered open-file limit: at start it
// raises the soft limit to the hard one; with the limit at 256 and 400
// connection attempts from one address, every attempt is answered within
// seconds (101 up to WEBSOCKET_MAX_CONNECTIONS, then 503 with Retry-After),
// the probes and /metrics on INTERNAL_ADDR answer within a second while the
// public listener is full, and room comes back when clients leave.
func TestFaultFD(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway and floods it with connections")
	}
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("util-linux prlimit not found: cannot start the gateway under a lowered RLIMIT_NOFILE")
	}
	var own syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &own); err != nil || own.Max < 1024 {
		t.Skipf("hard RLIMIT_NOFILE of the test below 1024 (%d, %v): cannot run clients and the child", own.Max, err)
	}
	bin := buildBinary(t, t.TempDir())

	t.Run("soft limit raised to the hard limit at start", func(t *testing.T) {
		gw := startFDChild(t, prlimit, bin, "256:1024", false, nil)
		if soft, hard := gw.openFiles(); soft != "1024" || hard != "1024" {
			t.Fatalf("child open-file limit %s:%s, want 1024:1024", soft, hard)
		}
		if got := gw.logged("open-file limit", "soft"); got != "1024" {
			t.Fatalf("logged soft limit %s, want 1024", got)
		}
		want := strconv.Itoa(limits.BudgetFor(1024, 0).WebSockets)
		if got := gw.logged("connection limits", "websocket_max_connections"); got != want {
			t.Fatalf("derived WEBSOCKET_MAX_CONNECTIONS %s, want %s", got, want)
		}
	})

	t.Run("exhaustion at ulimit 256", func(t *testing.T) {
		gw := startFDChild(t, prlimit, bin, "256:256", true, map[string]string{
			// Every client comes from 127.0.0.1: per-IP limits out of the way.
			"WEBSOCKET_MAX_CONNECTIONS_PER_IP": "100000", "WEBSOCKET_CONNECT_RATE_PER_IP": "100000",
			"WEBSOCKET_CONNECT_BURST_PER_IP": "100000"})
		if soft, _ := gw.openFiles(); soft != "256" {
			t.Fatalf("child soft open-file limit %s, want 256", soft)
		}
		budget := limits.BudgetFor(256, 0)
		floodFD(t, gw, budget)
	})
}

// floodFD is the exhaustion scenario against gw.
func floodFD(t *testing.T, gw *child, budget limits.Budget) {
	const attempts = 400
	const bound = 5 * time.Second // "none hangs past a few seconds"
	results := make([]attempt, attempts)
	var wg sync.WaitGroup
	for i := range attempts {
		wg.Go(func() { results[i] = upgrade(gw.public, bound) })
	}
	wg.Wait()
	var open []net.Conn
	t.Cleanup(func() {
		for _, c := range open {
			c.Close()
		}
	})
	counts := map[int]int{}
	var slowest time.Duration
	for _, a := range results {
		counts[a.code]++
		slowest = max(slowest, a.took)
		switch {
		case a.conn != nil:
			open = append(open, a.conn)
		case a.err != nil:
			t.Errorf("attempt failed after %v: %v", a.took.Round(time.Millisecond), a.err)
		case a.code != http.StatusServiceUnavailable && a.code != http.StatusTooManyRequests:
			t.Errorf("attempt answered %d", a.code)
		case a.retryAfter == "":
			t.Errorf("%d without Retry-After", a.code)
		}
	}
	t.Logf("%d attempts: %v (0 = failed); slowest %v", attempts, counts, slowest.Round(time.Millisecond))
	if slowest > bound {
		t.Errorf("slowest attempt took %v", slowest)
	}
	if len(open) != budget.WebSockets {
		t.Fatalf("%d sessions accepted, want WEBSOCKET_MAX_CONNECTIONS = %d", len(open), budget.WebSockets)
	}

	// Fill the public listener's remaining room with idle connections: it
	// is at its limit now, and answers further requests 503 at once.
	for range budget.PublicConns - budget.WebSockets {
		c, err := net.Dial("tcp", gw.public)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
	}
	hc := noKeepAliveClient()
	testenv.WaitFor(t, 10*time.Second, func() bool {
		return statusOf(hc, "http://"+gw.public+"/health") == http.StatusServiceUnavailable
	}, "public listener full: /health refused 503")
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		start := time.Now()
		code := statusOf(hc, "http://"+gw.internal+p) // the client's timeout is 1 s
		took := time.Since(start)
		if code != http.StatusOK || took > time.Second {
			t.Errorf("INTERNAL_ADDR %s at the limit: %d in %v, want 200 within 1s", p, code, took)
		}
		t.Logf("INTERNAL_ADDR %s at the limit: %d in %v", p, code, took.Round(100*time.Microsecond))
	}
	metricsBody := bodyOf(t, hc, "http://"+gw.internal+"/metrics")
	for _, reason := range []string{"max_connections", "listener_full"} {
		if !regexp.MustCompile(`websocket_rejected_connections_total\{reason="` + reason + `"\} [1-9]`).MatchString(metricsBody) {
			t.Errorf("no %s rejections in /metrics", reason)
		}
	}

	// Clients leave: new sessions are accepted again.
	for _, c := range open {
		c.Close()
	}
	open = nil
	testenv.WaitFor(t, 15*time.Second, func() bool {
		a := upgrade(gw.public, bound)
		if a.conn != nil {
			a.conn.Close()
		}
		return a.code == http.StatusSwitchingProtocols
	}, "a WebSocket session accepted after the clients closed")
	if code := statusOf(hc, "http://"+gw.public+"/healthz"); code != http.StatusNotFound {
		t.Errorf("public /healthz with INTERNAL_ADDR set: %d, want 404", code)
	}
}

func bodyOf(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
