package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/limits"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is a server with test doubles for every dependency.
type fixture struct {
	srv     *Server
	m       *metrics.Metrics
	reg     *prometheus.Registry
	limiter *limits.ConnLimiter
	mu      sync.Mutex
	status  Status
	wsCalls int
}

func (f *fixture) setStatus(st Status) {
	f.mu.Lock()
	f.status = st
	f.mu.Unlock()
}

func newFixture(t *testing.T, edit func(*Deps)) *fixture {
	t.Helper()
	return newFixtureWith(t, Config{}, edit)
}

// newFixtureWith is newFixture with a Config.
func newFixtureWith(t *testing.T, cfg Config, edit func(*Deps)) *fixture {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry(), status: Status{KafkaReachable: true, KafkaState: KafkaConnected}}
	f.m = metrics.New(f.reg)
	f.limiter = limits.NewConnLimiter(limits.LimiterConfig{MaxPerIP: 2})
	trusted, err := limits.ParseTrusted([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	deps := Deps{
		Gatherer: f.reg, Metrics: f.m, Limiter: f.limiter, Trusted: trusted,
		WS: WSHandlerFunc(func(w http.ResponseWriter, _ *http.Request, _ auth.Identity, _ *limits.Slot) {
			f.mu.Lock()
			f.wsCalls++
			f.mu.Unlock()
			w.WriteHeader(http.StatusSwitchingProtocols)
		}),
		Status: func() Status {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.status
		},
		SchemasPath: t.TempDir() + "/schemas/expected_schemas.json",
	}
	if edit != nil {
		edit(&deps)
	}
	f.srv, err = New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// do runs one request through the handler.
func (f *fixture) do(t *testing.T, method, target, body string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(w, r)
	return w
}

func decode(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", w.Body.String(), err)
	}
	return m
}

func rejected(f *fixture, reason string) float64 {
	return testutil.ToFloat64(f.m.RejectedConnections.WithLabelValues(reason))
}

func TestWSAdmitted(t *testing.T) {
	f := newFixture(t, nil)
	w := f.do(t, "GET", "/ws", "", map[string]string{"Origin": "http://example.com"})
	if w.Code != http.StatusSwitchingProtocols || f.wsCalls != 1 {
		t.Fatalf("code %d calls %d", w.Code, f.wsCalls)
	}
	if f.limiter.Tracked() != 0 {
		t.Fatal("slot not released")
	}
}

func TestWSRejections(t *testing.T) {
	cases := []struct {
		name   string
		status Status
		origin string
		code   int
		reason string
	}{
		{"cross origin", Status{KafkaReachable: true}, "https://evil.example", http.StatusForbidden, metrics.RejectOrigin},
		{"shutting down", Status{ShuttingDown: true}, "", http.StatusServiceUnavailable, metrics.RejectShutdown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.setStatus(tc.status)
			w := f.do(t, "GET", "/ws", "", map[string]string{"Origin": tc.origin})
			if w.Code != tc.code || f.wsCalls != 0 || rejected(f, tc.reason) != 1 {
				t.Fatalf("code %d calls %d rejected %v", w.Code, f.wsCalls, rejected(f, tc.reason))
			}
			if decode(t, w)["reason"] != tc.reason {
				t.Fatalf("body %s", w.Body)
			}
		})
	}
}

func TestWSAllowedOrigin(t *testing.T) {
	f := newFixture(t, func(d *Deps) { d.AllowedOrigins = []string{"http://localhost:5173"} })
	if w := f.do(t, "GET", "/ws", "", map[string]string{"Origin": "http://localhost:5173"}); w.Code != http.StatusSwitchingProtocols {
		t.Fatalf("code %d", w.Code)
	}
}

func TestWSPerIPLimitAndForwardedFor(t *testing.T) {
	block := make(chan struct{})
	entered := make(chan struct{}, 4)
	f := newFixture(t, func(d *Deps) {
		d.WS = WSHandlerFunc(func(w http.ResponseWriter, _ *http.Request, _ auth.Identity, _ *limits.Slot) {
			entered <- struct{}{}
			<-block
		})
	})
	ts := httptest.NewServer(f.srv.Handler())
	defer ts.Close()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			resp, err := http.Get(ts.URL + "/ws")
			if err == nil {
				resp.Body.Close()
			}
		})
		<-entered
	}
	resp, err := http.Get(ts.URL + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third connection: %d", resp.StatusCode)
	}
	if rejected(f, metrics.RejectIPLimit) != 1 {
		t.Fatal("ip_limit not counted")
	}
	// The peer (127.0.0.1) is not a trusted proxy: its X-Forwarded-For is ignored.
	req, _ := http.NewRequest("GET", ts.URL+"/ws", nil)
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatal("untrusted peer's X-Forwarded-For must be ignored")
	}
	close(block)
	wg.Wait()
	if n := f.limiter.Active(netip.MustParseAddr("127.0.0.1")); n != 0 {
		t.Fatalf("slots held after close: %d", n)
	}
}

func TestWSForwardedForFromTrustedProxy(t *testing.T) {
	f := newFixture(t, nil)
	r := httptest.NewRequest("GET", "/ws", nil)
	r.RemoteAddr = "10.1.2.3:5555"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	var seen netip.Addr
	f.srv.deps.WS = WSHandlerFunc(func(http.ResponseWriter, *http.Request, auth.Identity, *limits.Slot) {
		seen = netip.MustParseAddr("198.51.100.1")
		if f.limiter.Active(seen) != 1 {
			t.Error("slot not counted for the forwarded client")
		}
	})
	f.srv.Handler().ServeHTTP(httptest.NewRecorder(), r)
	if !seen.IsValid() {
		t.Fatal("handler not called")
	}
}

func TestWSRateLimited(t *testing.T) {
	f := newFixture(t, nil)
	f.srv.deps.Limiter = limits.NewConnLimiter(limits.LimiterConfig{RatePerIP: 0.001, BurstPerIP: 1})
	f.do(t, "GET", "/ws", "", nil)
	w := f.do(t, "GET", "/ws", "", nil)
	if w.Code != http.StatusTooManyRequests || rejected(f, metrics.RejectRateLimit) != 1 {
		t.Fatalf("code %d", w.Code)
	}
}

// TestWSSlotReleasedOnPanic proves the per-IP slot is released when the
// WebSocket handler panics, directly and through a real http.Server.
func TestWSSlotReleasedOnPanic(t *testing.T) {
	f := newFixture(t, func(d *Deps) {
		d.WS = WSHandlerFunc(func(http.ResponseWriter, *http.Request, auth.Identity, *limits.Slot) { panic("boom") })
	})
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic swallowed")
			}
		}()
		f.do(t, "GET", "/ws", "", nil)
	}()
	if f.limiter.Tracked() != 0 || f.srv.WebSockets() != 0 {
		t.Fatal("slot leaked after panic")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.srv.ListenAndServe(ctx, ln) }()
	for range 5 {
		if resp, err := http.Get("http://" + ln.Addr().String() + "/ws"); err == nil {
			resp.Body.Close()
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if f.limiter.Tracked() != 0 || f.srv.WebSockets() != 0 {
		t.Fatalf("slot leaked after panics through http.Server: %d IPs, %d sessions", f.limiter.Tracked(), f.srv.WebSockets())
	}
}

func TestLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.srv.ListenAndServe(context.Background(), ln) }()
	url := "http://" + ln.Addr().String()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz %d", resp.StatusCode)
	}
	f.srv.BeginShutdown()
	resp, err = http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "shutting_down") {
		t.Fatalf("readyz during shutdown %d %s", resp.StatusCode, body)
	}
	// The client's connections go first: built with Go 1.27, a connection
	// the client still holds kept http.Server.Shutdown from returning within
	// 5 s in about a third of runs (never with 1.26).
	http.DefaultClient.CloseIdleConnections()
	shutdown(t, f.srv, done)
}

// shutdown stops srv within 5 s and checks that its Serve, reporting to
// done, returned without error.
func shutdown(t *testing.T, srv *Server, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestListenAndServeError(t *testing.T) {
	f := newFixture(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := f.srv.ListenAndServe(context.Background(), ln); err == nil || errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("err = %v", err)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	f := newFixture(t, nil)
	f.m.ClientConnected()
	w := f.do(t, "GET", "/metrics", "", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "websocket_connected_clients 1") {
		t.Fatalf("metrics %d %s", w.Code, w.Body)
	}
	g := newFixture(t, func(d *Deps) { d.Gatherer = nil })
	if w := g.do(t, "GET", "/metrics", "", nil); w.Code != http.StatusNotFound {
		t.Fatalf("nil gatherer: %d", w.Code)
	}
}

func TestUnknownAPIAndMethods(t *testing.T) {
	f := newFixture(t, nil)
	if w := f.do(t, "GET", "/api/nope", "", nil); w.Code != 404 || decode(t, w)["error"] == nil {
		t.Fatalf("unknown api %d %s", w.Code, w.Body)
	}
	if w := f.do(t, "POST", "/health", "", nil); w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /health %d", w.Code)
	}
	if w := f.do(t, "GET", "/api/admin/replay/clear", "", nil); w.Code != http.StatusNotFound {
		t.Fatalf("GET admin %d", w.Code)
	}
}
