package httpserver

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/limits"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// TestWSGlobalCapRefusesBeforeUpgrade: with WEBSOCKET_MAX_CONNECTIONS
// sessions live, the next upgrade gets 503 with Retry-After and a closed
// connection, without reaching the WebSocket handler or taking a per-IP
// slot; a session ending makes room again.
func TestWSGlobalCapRefusesBeforeUpgrade(t *testing.T) {
	var mu sync.Mutex
	var held []chan struct{}
	entered := make(chan struct{}, 4)
	f := newFixtureWith(t, Config{MaxWebSockets: 2}, func(d *Deps) {
		d.Limiter = limits.NewConnLimiter(limits.LimiterConfig{MaxPerIP: 10})
		d.WS = WSHandlerFunc(func(w http.ResponseWriter, _ *http.Request, _ auth.Identity, _ *limits.Slot) {
			release := make(chan struct{})
			mu.Lock()
			held = append(held, release)
			mu.Unlock()
			entered <- struct{}{}
			<-release
		})
	})
	f.limiter = f.srv.deps.Limiter
	ts := httptest.NewServer(f.srv.Handler())
	defer ts.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	open := func() {
		wg.Go(func() {
			if resp, err := http.Get(ts.URL + "/ws"); err == nil {
				resp.Body.Close()
			}
		})
		<-entered
	}
	open()
	open()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(ts.URL + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" || !resp.Close {
		t.Fatalf("third session: %d Retry-After %q close %v", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Close)
	}
	if !strings.Contains(string(body), metrics.RejectMaxConnections) || rejected(f, metrics.RejectMaxConnections) != 1 {
		t.Fatalf("body %s, counted %v", body, rejected(f, metrics.RejectMaxConnections))
	}
	if n := f.limiter.Active(loopback); n != 2 || f.srv.WebSockets() != 2 {
		t.Fatalf("per-IP slots %d sessions %d, want 2 and 2", n, f.srv.WebSockets())
	}
	mu.Lock()
	close(held[0])
	mu.Unlock()
	waitUntil(t, func() bool { return f.srv.WebSockets() == 1 })
	open()
	mu.Lock()
	for _, c := range held[1:] {
		close(c)
	}
	mu.Unlock()
	wg.Wait()
	if f.srv.WebSockets() != 0 || f.limiter.Tracked() != 0 {
		t.Fatalf("after close: %d sessions, %d IPs tracked", f.srv.WebSockets(), f.limiter.Tracked())
	}
}

// TestWSSlotReleasedOnEveryExitPath: the session place and the per-IP slot
// are held exactly as long as the request or the session that took them
// over, on every way out of the handler.
func TestWSSlotReleasedOnEveryExitPath(t *testing.T) {
	authn, err := auth.NewAuthenticator(auth.AuthConfig{Token: wsToken})
	if err != nil {
		t.Fatal(err)
	}
	var session func() // release of a session that took its slot over
	cases := []struct {
		name   string
		edit   func(*Deps)
		status Status
		hdr    map[string]string
		code   int
	}{
		{"handler returns", nil, Status{}, nil, http.StatusSwitchingProtocols},
		{"handler panics", func(d *Deps) {
			d.WS = WSHandlerFunc(func(http.ResponseWriter, *http.Request, auth.Identity, *limits.Slot) { panic("boom") })
		}, Status{}, nil, 0},
		{"session takes the slot over", func(d *Deps) {
			d.WS = WSHandlerFunc(func(w http.ResponseWriter, _ *http.Request, _ auth.Identity, slot *limits.Slot) {
				session = slot.Take()
				w.WriteHeader(http.StatusSwitchingProtocols)
			})
		}, Status{}, nil, http.StatusSwitchingProtocols},
		{"no WebSocket handler", func(d *Deps) { d.WS = nil }, Status{}, nil, http.StatusServiceUnavailable},
		{"rate limited after the session place", func(d *Deps) {
			l := limits.NewConnLimiter(limits.LimiterConfig{RatePerIP: 0.001, BurstPerIP: 1})
			if rel, err := l.Acquire(netip.MustParseAddr("192.0.2.1")); err == nil {
				rel() // the bucket is empty now
			}
			d.Limiter = l
		}, Status{}, nil, http.StatusTooManyRequests},
		{"unauthorized", func(d *Deps) { d.Auth = authn }, Status{}, nil, http.StatusUnauthorized},
		{"cross origin", nil, Status{}, map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"shutting down", nil, Status{ShuttingDown: true}, nil, http.StatusServiceUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			session = nil
			f := newFixtureWith(t, Config{MaxWebSockets: 1}, tc.edit)
			f.setStatus(tc.status)
			r := httptest.NewRequest("GET", "/ws", nil)
			r.RemoteAddr = "192.0.2.1:1234"
			for k, v := range tc.hdr {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			func() {
				defer func() { _ = recover() }()
				f.srv.Handler().ServeHTTP(w, r)
			}()
			if tc.code != 0 && w.Code != tc.code {
				t.Fatalf("code %d, want %d", w.Code, tc.code)
			}
			if session != nil {
				if f.srv.WebSockets() != 1 {
					t.Fatal("a session that took its slot over must keep its place")
				}
				if w := f.do(t, "GET", "/ws", "", nil); w.Code != http.StatusServiceUnavailable {
					t.Fatalf("cap of one with a live session: %d", w.Code)
				}
				session()
				session()
			}
			if f.srv.WebSockets() != 0 {
				t.Fatalf("session place leaked: %d", f.srv.WebSockets())
			}
			if l := f.srv.deps.Limiter; l != nil && l.Active(netip.MustParseAddr("192.0.2.1")) != 0 {
				t.Fatal("per-IP slot leaked")
			}
		})
	}
}

func TestInternalListenerRoutes(t *testing.T) {
	f := newFixtureWith(t, Config{Internal: true}, func(d *Deps) { d.AdminToken = "admin-tok" })
	public, internal := f.srv.Handler(), f.srv.InternalHandler()
	call := func(h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, nil)
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	bearer := map[string]string{"Authorization": "Bearer admin-tok"}
	for _, tc := range []struct {
		name           string
		h              http.Handler
		method, target string
		hdr            map[string]string
		code           int
		bodyHas        string
	}{
		{"public health stays", public, "GET", "/health", nil, 200, `"status"`},
		{"public ws stays", public, "GET", "/ws", nil, http.StatusSwitchingProtocols, ""},
		{"public healthz moved", public, "GET", "/healthz", nil, 404, "INTERNAL_ADDR"},
		{"public readyz moved", public, "GET", "/readyz", nil, 404, "INTERNAL_ADDR"},
		{"public metrics moved", public, "GET", "/metrics", nil, 404, "INTERNAL_ADDR"},
		{"public admin moved", public, "POST", "/api/admin/replay/clear", bearer, 404, "INTERNAL_ADDR"},
		{"public no pprof", public, "GET", "/debug/pprof/", nil, 404, ""},
		{"internal healthz", internal, "GET", "/healthz", nil, 200, ""},
		{"internal readyz", internal, "GET", "/readyz", nil, 200, ""},
		{"internal metrics", internal, "GET", "/metrics", nil, 200, `websocket_rejected_connections_total{reason="max_connections"}`},
		{"internal health", internal, "GET", "/health", nil, 200, `"status"`},
		{"internal pprof index", internal, "GET", "/debug/pprof/", nil, 200, "goroutine"},
		{"internal pprof profile", internal, "GET", "/debug/pprof/goroutine?debug=1", nil, 200, "goroutine profile"},
		{"internal admin needs token", internal, "POST", "/api/admin/replay/clear", nil, 401, ""},
		{"internal admin routed", internal, "POST", "/api/admin/replay/clear", bearer, http.StatusNotImplemented, ""},
		{"internal no ws", internal, "GET", "/ws", nil, 404, ""},
		{"internal no ui", internal, "GET", "/", nil, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := call(tc.h, tc.method, tc.target, tc.hdr)
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.bodyHas) {
				t.Fatalf("%s %s: %d %.300s", tc.method, tc.target, w.Code, w.Body)
			}
		})
	}
	if g := newFixture(t, nil); g.srv.InternalHandler() != nil {
		t.Fatal("internal handler without Config.Internal")
	} else if w := call(g.srv.Handler(), "GET", "/debug/pprof/", nil); w.Code == 200 {
		t.Fatal("pprof served on the public listener")
	}
}

// TestProbesAnswerWhilePublicListenerFull fills the public listener with
// idle connections: a further request is refused 503 at once (not left
// unaccepted), probes on the internal listener answer within a second, idle
// keep-alive connections are closed to make room, and keep-alives come back
// when the connections close.
func TestProbesAnswerWhilePublicListenerFull(t *testing.T) {
	f := newFixtureWith(t, Config{Internal: true, MaxWebSockets: 1, FDLimit: 256}, nil)
	b := f.srv.Budget()
	if b.PublicConns != 9 {
		t.Fatalf("budget %+v", b)
	}
	ln, iln := listen(t), listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.srv.Serve(ctx, ln, iln) }()
	base, ibase := "http://"+ln.Addr().String(), "http://"+iln.Addr().String()
	fast := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	keepAlive := &http.Client{Timeout: time.Second, Transport: &http.Transport{}}
	defer keepAlive.CloseIdleConnections()
	if code := get(t, keepAlive, base+"/health"); code != 200 { // leaves an idle keep-alive connection
		t.Fatalf("public /health %d", code)
	}
	var idle []net.Conn
	for range b.PublicConns - 1 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	waitUntil(t, func() bool { return f.srv.public.Load().Active() == b.PublicConns })
	start := time.Now()
	resp, err := fast.Get(base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" || time.Since(start) > 2*time.Second {
		t.Fatalf("full listener: %d Retry-After %q in %v", resp.StatusCode, resp.Header.Get("Retry-After"), time.Since(start))
	}
	if rejected(f, metrics.RejectListenerFull) != 1 {
		t.Fatal("listener_full not counted")
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		start := time.Now()
		if code := get(t, fast, ibase+p); code != 200 || time.Since(start) > time.Second {
			t.Fatalf("internal %s: %d in %v", p, code, time.Since(start))
		}
	}
	// The refusal closed the idle keep-alive connection: room for one
	// (well before the idle raw connections' header timeout).
	deadline := time.Now().Add(3 * time.Second)
	for get(t, fast, base+"/health") != 200 {
		if time.Now().After(deadline) {
			t.Fatal("idle keep-alive connection not closed to make room")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range idle {
		c.Close()
	}
	waitUntil(t, func() bool { return get(t, fast, base+"/health") == 200 && !f.srv.noKeep.Load() })

	f.srv.BeginShutdown()
	if code := get(t, fast, ibase+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("internal /readyz during shutdown: %d", code)
	}
	shutdown(t, f.srv, done)
}

func TestServeListenerMismatch(t *testing.T) {
	with := newFixtureWith(t, Config{Internal: true}, nil)
	if err := with.srv.Serve(context.Background(), listen(t), nil); err == nil {
		t.Fatal("internal configured, no internal listener: want an error")
	}
	without := newFixture(t, nil)
	if err := without.srv.Serve(context.Background(), listen(t), listen(t)); err == nil {
		t.Fatal("internal listener without Config.Internal: want an error")
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// get returns the status of GET url, 0 when it failed.
func get(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
