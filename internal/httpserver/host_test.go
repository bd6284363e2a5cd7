package httpserver

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/limits"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
)

// serveOn serves f's server on a real listener bound to bind (the production
// path: ListenAndServe, whose BaseContext records the bind) and returns the
// address to dial. Skips when the bind is unavailable on this machine.
func serveOn(t *testing.T, f *fixture, bind string) string {
	t.Helper()
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", bind, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.srv.ListenAndServe(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	if ip := ln.Addr().(*net.TCPAddr).IP; ip.IsUnspecified() {
		return "127.0.0.1:" + port // a wildcard bind is dialled over loopback
	}
	return ln.Addr().String()
}

// hostRequest sends GET path to addr with the given Host and Origin (empty:
// none) and returns the status and the "reason" of a JSON refusal.
func hostRequest(t *testing.T, addr, path, host, origin string) (int, string) {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("GET %s Host %q: %v", path, host, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var refusal struct{ Reason string }
	if resp.StatusCode == http.StatusForbidden {
		_ = json.Unmarshal(body, &refusal)
	}
	return resp.StatusCode, refusal.Reason
}

// admittedWS is the fixture's WebSocket double for a real listener: net/http
// does not let a handler answer a plain GET with 101, so admission shows as
// 200 here.
func admittedWS(calls *atomic.Int32) func(*Deps) {
	return func(d *Deps) {
		d.WS = WSHandlerFunc(func(w http.ResponseWriter, _ *http.Request, _ auth.Identity, _ *limits.Slot) {
			calls.Add(1)
			w.WriteHeader(http.StatusOK)
		})
	}
}

// TestLoopbackBindHostAndOrigin drives the server on a real 127.0.0.1
// listener: every route refuses a Host that is not loopback (a DNS-rebound
// page), /ws accepts loopback origins on any port (a Vite dev server on
// :5173 proxying /ws, with or without rewriting Host), and cross-site
// origins are still refused.
func TestLoopbackBindHostAndOrigin(t *testing.T) {
	var calls atomic.Int32
	f := newFixture(t, admittedWS(&calls))
	addr := serveOn(t, f, "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(addr)
	rebound := "rebind.evil.example:" + port
	cases := []struct {
		name, path, host, origin string
		code                     int
		reason                   string
	}{
		{"health rebound host", "/health", rebound, "", http.StatusForbidden, "host"},
		{"health rebound host same origin", "/health", rebound, "http://" + rebound, http.StatusForbidden, "host"},
		{"api rebound host", "/api/expected-schema", rebound, "", http.StatusForbidden, "host"},
		{"ui rebound host", "/", rebound, "", http.StatusForbidden, "host"},
		{"version rebound host", "/version", rebound, "", http.StatusForbidden, "host"},
		{"metrics rebound host", "/metrics", rebound, "", http.StatusForbidden, "host"},
		{"ws rebound host same origin", "/ws", rebound, "http://" + rebound, http.StatusForbidden, "host"},
		{"ws localhost subdomain", "/ws", "app.localhost:" + port, "", http.StatusForbidden, "host"},
		{"health localhost", "/health", "localhost:" + port, "", http.StatusOK, ""},
		{"health 127.0.0.1", "/health", addr, "", http.StatusOK, ""},
		{"health ipv6 loopback", "/health", "[::1]:" + port, "", http.StatusOK, ""},
		{"ws vite proxy rewriting host", "/ws", "localhost:" + port, "http://localhost:5173", http.StatusOK, ""},
		{"ws vite proxy keeping host", "/ws", "localhost:5173", "http://localhost:5173", http.StatusOK, ""},
		{"ws loopback ip origin", "/ws", addr, "http://127.0.0.1:5173", http.StatusOK, ""},
		{"ws cross site", "/ws", addr, "https://evil.example", http.StatusForbidden, metrics.RejectOrigin},
		{"ws no origin", "/ws", addr, "", http.StatusOK, ""},
	}
	wantCalls, wantRejected := 0, 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, reason := hostRequest(t, addr, tc.path, tc.host, tc.origin)
			if code != tc.code || reason != tc.reason {
				t.Fatalf("HTTP %d reason %q, want %d %q", code, reason, tc.code, tc.reason)
			}
		})
		if tc.path == "/ws" && tc.code == http.StatusOK {
			wantCalls++
		}
		if tc.path == "/ws" && tc.code == http.StatusForbidden {
			wantRejected++
		}
	}
	if got := int(calls.Load()); got != wantCalls {
		t.Errorf("WebSocket handler ran %d times, want %d (a refused request must not reach it)", got, wantCalls)
	}
	if got := rejected(f, metrics.RejectOrigin); got != float64(wantRejected) {
		t.Errorf("rejected{origin} = %v, want %d", got, wantRejected)
	}
}

// TestPublicBindKeepsStrictOrigin: on a wildcard bind the Host is not
// checked (authentication guards a public bind) and loopback origins get no
// exemption: a page on localhost:5173 is cross-origin to the server.
func TestPublicBindKeepsStrictOrigin(t *testing.T) {
	f := newFixture(t, admittedWS(new(atomic.Int32)))
	addr := serveOn(t, f, "0.0.0.0:0")
	cases := []struct {
		name, path, host, origin string
		code                     int
	}{
		{"health any host", "/health", "dash.example.com", "", http.StatusOK},
		{"ws same origin", "/ws", "dash.example.com", "https://dash.example.com", http.StatusOK},
		{"ws loopback origin", "/ws", addr, "http://localhost:5173", http.StatusForbidden},
	}
	for _, tc := range cases {
		if code, _ := hostRequest(t, addr, tc.path, tc.host, tc.origin); code != tc.code {
			t.Errorf("%s: HTTP %d, want %d", tc.name, code, tc.code)
		}
	}
}

// TestHandlerWithoutListenerIsNotLoopback: the bare Handler (no listener,
// as embedded or in unit tests) applies the non-loopback rules.
func TestHandlerWithoutListenerIsNotLoopback(t *testing.T) {
	f := newFixture(t, nil)
	w := f.do(t, "GET", "/ws", "", map[string]string{"Origin": "http://localhost:5173"})
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), metrics.RejectOrigin) {
		t.Fatalf("HTTP %d %s, want 403 origin", w.Code, w.Body)
	}
}
