package httpserver

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/limits"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
)

const (
	wsToken  = "ws-static-token"
	wsSecret = "ws-jwt-secret"
)

// authFixture is a fixture whose /ws requires auth; its WS handler records
// the Identity it was handed.
func authFixture(t *testing.T, limiter *limits.ConnLimiter) (*fixture, *[]auth.Identity) {
	t.Helper()
	authn, err := auth.NewAuthenticator(auth.AuthConfig{Token: wsToken, JWTSecret: wsSecret, TenantClaim: "tenant"})
	if err != nil {
		t.Fatal(err)
	}
	var seen []auth.Identity
	f := newFixture(t, func(d *Deps) {
		d.Auth = authn
		if limiter != nil {
			d.Limiter = limiter
		}
		d.WS = WSHandlerFunc(func(w http.ResponseWriter, _ *http.Request, id auth.Identity, _ *limits.Slot) {
			seen = append(seen, id)
			w.WriteHeader(http.StatusSwitchingProtocols)
		})
	})
	return f, &seen
}

func tenantJWT(t *testing.T, tenant string, exp time.Time) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"tenant": tenant, "exp": exp.Unix()}).
		SignedString([]byte(wsSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWSAuthAdmitted(t *testing.T) {
	exp := time.Unix(time.Now().Add(time.Hour).Unix(), 0) // the connection expires with the JWT (no leeway here)
	good := tenantJWT(t, "acme", exp)
	cases := []struct {
		name   string
		target string
		hdr    map[string]string
		want   auth.Identity
	}{
		{"static header", "/ws", map[string]string{"Authorization": "Bearer " + wsToken}, auth.Identity{}},
		{"static query", "/ws?token=" + wsToken, nil, auth.Identity{}},
		{"static subprotocol", "/ws", map[string]string{"Sec-WebSocket-Protocol": "bearer, " + wsToken}, auth.Identity{Subprotocol: "bearer"}},
		{"jwt header", "/ws", map[string]string{"Authorization": "Bearer " + good}, auth.Identity{Tenant: "acme", Expires: exp}},
		{"jwt query", "/ws?token=" + good, nil, auth.Identity{Tenant: "acme", Expires: exp}},
		{"jwt subprotocol", "/ws", map[string]string{"Sec-WebSocket-Protocol": "bearer, " + good}, auth.Identity{Tenant: "acme", Subprotocol: "bearer", Expires: exp}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, seen := authFixture(t, nil)
			w := f.do(t, "GET", tc.target, "", tc.hdr)
			if w.Code != http.StatusSwitchingProtocols || len(*seen) != 1 {
				t.Fatalf("code %d, handler calls %d", w.Code, len(*seen))
			}
			if got := (*seen)[0]; got.Tenant != tc.want.Tenant || got.Subprotocol != tc.want.Subprotocol || !got.Expires.Equal(tc.want.Expires) {
				t.Fatalf("identity %+v, want %+v", (*seen)[0], tc.want)
			}
			if rejected(f, metrics.RejectAuth) != 0 || f.limiter.Tracked() != 0 {
				t.Fatal("counted as rejected, or slot not released")
			}
		})
	}
}

func TestWSAuthRejected(t *testing.T) {
	cases := []struct {
		name   string
		target string
		hdr    map[string]string
	}{
		{"no credentials", "/ws", nil},
		{"wrong header", "/ws", map[string]string{"Authorization": "Bearer nope"}},
		{"wrong query", "/ws?token=nope", nil},
		{"wrong subprotocol", "/ws", map[string]string{"Sec-WebSocket-Protocol": "bearer, nope"}},
		{"expired jwt", "/ws", map[string]string{"Authorization": "Bearer " + tenantJWT(t, "acme", time.Now().Add(-time.Hour))}},
		{"jwt without tenant", "/ws?token=" + tenantJWT(t, "", time.Now().Add(time.Hour)), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A burst of one: a 401 that took the slot or a token would
			// make the valid request below fail with 429.
			limiter := limits.NewConnLimiter(limits.LimiterConfig{MaxPerIP: 1, RatePerIP: 0.001, BurstPerIP: 1})
			f, seen := authFixture(t, limiter)
			for i := 1; i <= 2; i++ {
				w := f.do(t, "GET", tc.target, "", tc.hdr)
				if w.Code != http.StatusUnauthorized || len(*seen) != 0 {
					t.Fatalf("code %d, handler calls %d", w.Code, len(*seen))
				}
				if body := decode(t, w); body["reason"] != metrics.RejectAuth || body["error"] == "" {
					t.Fatalf("body %s", w.Body)
				}
				if w.Header().Get("WWW-Authenticate") == "" || rejected(f, metrics.RejectAuth) != float64(i) {
					t.Fatalf("no challenge, or rejected = %v", rejected(f, metrics.RejectAuth))
				}
			}
			if limiter.Tracked() != 0 {
				t.Fatal("a refused request took a per-IP slot")
			}
			w := f.do(t, "GET", "/ws", "", map[string]string{"Authorization": "Bearer " + wsToken})
			if w.Code != http.StatusSwitchingProtocols {
				t.Fatalf("valid request after 401s: %d", w.Code)
			}
		})
	}
}

// TestWSOriginBeforeAuth: a cross-site request is refused for its origin
// whatever its credentials, and auth is not even tried.
func TestWSOriginBeforeAuth(t *testing.T) {
	f, _ := authFixture(t, nil)
	w := f.do(t, "GET", "/ws?token="+wsToken, "", map[string]string{"Origin": "https://evil.example"})
	if w.Code != http.StatusForbidden || rejected(f, metrics.RejectOrigin) != 1 || rejected(f, metrics.RejectAuth) != 0 {
		t.Fatalf("code %d", w.Code)
	}
}

// TestWSAuthOffPassesIdentity: without an Authenticator every request is
// admitted, unrestricted, and the bearer idiom is still echoed.
func TestWSAuthOffPassesIdentity(t *testing.T) {
	var got auth.Identity
	f := newFixture(t, func(d *Deps) {
		d.WS = WSHandlerFunc(func(_ http.ResponseWriter, _ *http.Request, id auth.Identity, _ *limits.Slot) {
			got = id
		})
	})
	r := httptest.NewRequest("GET", "/ws", nil)
	r.Header.Set("Sec-WebSocket-Protocol", "bearer, whatever")
	f.srv.Handler().ServeHTTP(httptest.NewRecorder(), r)
	if got != (auth.Identity{Subprotocol: "bearer"}) {
		t.Fatalf("identity %+v", got)
	}
}
