package hub

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// expiringHub serves a hub whose refresh frames verify with the same
// authenticator as its upgrades (HS256, tenant claim, static token "admin").
func expiringHub(t *testing.T, leeway time.Duration) (*testHub, string) {
	t.Helper()
	authn, err := auth.NewAuthenticator(auth.AuthConfig{Token: "admin", JWTSecret: tenantSecret,
		TenantClaim: "tenant", Leeway: leeway})
	if err != nil {
		t.Fatal(err)
	}
	th := newTestHub(t, Config{PingInterval: time.Hour, Tokens: authn}, replay.MemoryConfig{})
	return th, th.authURL(t, authn)
}

// tokenUntil is a JWT of tenant expiring at exp (whole seconds).
func tokenUntil(t *testing.T, tenant string, exp time.Time) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"tenant": tenant,
		"exp": exp.Unix()}).SignedString([]byte(tenantSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// expSoon is an exp between 2 and 3 s from now, on a whole second.
func expSoon() time.Time { return time.Unix(time.Now().Add(2*time.Second).Unix()+1, 0) }

// expectExpired reads until the close and checks error TOKEN_EXPIRED, close
// 1008, and that it came at expiry (exp plus leeway) and within 1 s of it
// (the idle sweep runs every 250 ms; 500 ms of margin for a busy machine).
func expectExpired(t *testing.T, c *client, expiry time.Time) {
	t.Helper()
	code, ctrl := c.expectClose(time.Until(expiry) + 5*time.Second)
	at := time.Now()
	if code != websocket.StatusPolicyViolation {
		t.Fatalf("close %d, want 1008 (controls %v)", code, ctrl)
	}
	if len(ctrl) == 0 || ctrl[len(ctrl)-1]["code"] != wsproto.CodeTokenExpired {
		t.Fatalf("controls %v: want error TOKEN_EXPIRED right before the close", ctrl)
	}
	if at.Before(expiry) || at.After(expiry.Add(1500*time.Millisecond)) {
		t.Fatalf("closed at %v, expiry %v: want within 1 s after it", at.Format(time.StampMilli), expiry.Format(time.StampMilli))
	}
}

func TestTokenExpiryCloses(t *testing.T) {
	t.Parallel()
	t.Run("parked idle session", func(t *testing.T) {
		t.Parallel()
		const leeway = time.Second
		th, url := expiringHub(t, leeway)
		exp := expSoon()
		c := dialBearer(t, url, tokenUntil(t, "A", exp))
		c.send(map[string]any{"type": "resume", "from": "latest"})
		c.readUntil(isType("replay_complete"))
		th.waitParked(t, 1)
		if time.Now().After(exp) {
			t.Fatal("the session parked too late for the test to mean anything")
		}
		expectExpired(t, c, exp.Add(leeway))
	})
	t.Run("session receiving records", func(t *testing.T) {
		t.Parallel()
		th, url := expiringHub(t, 0)
		exp := expSoon()
		c := dialBearer(t, url, tokenUntil(t, "A", exp))
		done := make(chan struct{})
		defer close(done)
		go func() { // keeps the writer busy: it never parks
			for o := int64(0); ; o++ {
				select {
				case <-done:
					return
				case <-time.After(20 * time.Millisecond):
					th.publishTenants(0, o, "A")
				}
			}
		}()
		c.send(map[string]any{"type": "resume", "from": "latest"})
		expectExpired(t, c, exp)
	})
}

// A refresh before expiry extends the connection in place: it keeps
// receiving, past the first token's expiry, everything published.
func TestRefreshExtends(t *testing.T) {
	t.Parallel()
	th, url := expiringHub(t, 0)
	exp := expSoon()
	c := dialBearer(t, url, tokenUntil(t, "A", exp))
	c.send(map[string]any{"type": "resume", "from": "earliest"})
	c.readUntil(isType("replay_complete"))
	later := time.Unix(time.Now().Add(time.Hour).Unix(), 0)
	c.send(map[string]any{"type": "refresh", "token": tokenUntil(t, "A", later)})
	_, ctrl := c.readUntil(isType("refresh_complete"))
	if got := ctrl[len(ctrl)-1]["expiresAt"]; got != later.UTC().Format(time.RFC3339) {
		t.Fatalf("refresh_complete expiresAt %v, want %s", got, later.UTC().Format(time.RFC3339))
	}
	th.waitParked(t, 1) // a parked session is past the sweep that would close it
	time.Sleep(time.Until(exp) + 600*time.Millisecond)
	th.publishTenants(0, 0, "A", "A", "A")
	got, _ := c.readRecords(3)
	checkExact(t, got, map[int32][]int64{0: {0, 1, 2}})
	c.send(map[string]any{"type": "ping"})
	c.readUntil(isType("pong"))
}

// A refused refresh: a bad or expired token changes nothing (the old
// credentials expire on time); a token of another tenant, or an
// unrestricted one, closes the connection 1008.
func TestRefreshRefused(t *testing.T) {
	t.Parallel()
	t.Run("invalid tokens keep the old credentials", func(t *testing.T) {
		t.Parallel()
		_, url := expiringHub(t, 0)
		exp := expSoon()
		c := dialBearer(t, url, tokenUntil(t, "A", exp))
		c.send(map[string]any{"type": "resume", "from": "latest"})
		c.readUntil(isType("replay_complete"))
		for _, tok := range []string{"garbage", tokenUntil(t, "A", time.Now().Add(-time.Minute)), ""} {
			c.send(map[string]any{"type": "refresh", "token": tok})
			_, ctrl := c.readUntil(isType("error"))
			if code := ctrl[len(ctrl)-1]["code"]; code != wsproto.CodeTokenInvalid {
				t.Fatalf("refresh %.12q answered %v, want TOKEN_INVALID", tok, ctrl[len(ctrl)-1])
			}
		}
		c.send(map[string]any{"type": "ping"})
		c.readUntil(isType("pong"))
		expectExpired(t, c, exp)
	})
	for name, tok := range map[string]func(t *testing.T) string{
		"another tenant":       func(t *testing.T) string { return tokenUntil(t, "B", time.Now().Add(time.Hour)) },
		"unrestricted static":  func(*testing.T) string { return "admin" },
		"unrestricted upgrade": nil, // an unrestricted connection refreshing with a tenant's token
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, url := expiringHub(t, 0)
			first, refresh := tokenUntil(t, "A", time.Now().Add(time.Hour)), ""
			if tok == nil {
				first, refresh = "admin", tokenUntil(t, "A", time.Now().Add(time.Hour))
			} else {
				refresh = tok(t)
			}
			c := dialBearer(t, url, first)
			c.send(map[string]any{"type": "resume", "from": "latest"})
			c.readUntil(isType("replay_complete"))
			c.send(map[string]any{"type": "refresh", "token": refresh})
			code, ctrl := c.expectClose(5 * time.Second)
			if code != websocket.StatusPolicyViolation || len(ctrl) == 0 || ctrl[len(ctrl)-1]["code"] != wsproto.CodeTokenTenantMismatch {
				t.Fatalf("close %d after %v, want TOKEN_TENANT_MISMATCH and 1008", code, ctrl)
			}
		})
	}
	t.Run("no verifier", func(t *testing.T) {
		t.Parallel()
		th := newTestHub(t, Config{}, replay.MemoryConfig{})
		c := th.dial(t)
		c.send(map[string]any{"type": "refresh", "token": "x"})
		_, ctrl := c.readUntil(isType("error"))
		if code := ctrl[len(ctrl)-1]["code"]; code != wsproto.CodeTokenInvalid {
			t.Fatalf("answer %v, want TOKEN_INVALID", ctrl[len(ctrl)-1])
		}
	})
}

// hangingVerifier is an identity provider that never answers. A fake: the
// case is a provider that holds the key fetch open, which the real
// authenticator only shows after its own 10 s fetch timeout.
type hangingVerifier struct{}

func (hangingVerifier) VerifyToken(ctx context.Context, _ string) (auth.Identity, error) {
	<-ctx.Done()
	return auth.Identity{}, ctx.Err()
}

// A refresh whose verification hangs holds the writer for refreshTimeout at
// most: TOKEN_INVALID, and the connection goes on.
func TestRefreshVerificationIsBounded(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, Config{PingInterval: time.Hour, Tokens: hangingVerifier{}}, replay.MemoryConfig{})
	c := th.dial(t)
	c.send(map[string]any{"type": "resume", "from": "latest"})
	c.readUntil(isType("replay_complete"))
	start := time.Now()
	c.send(map[string]any{"type": "refresh", "token": "a.b.c"})
	_, ctrl := c.readUntil(isType("error"))
	if took := time.Since(start); ctrl[len(ctrl)-1]["code"] != wsproto.CodeTokenInvalid || took > refreshTimeout+2*time.Second {
		t.Fatalf("answer %v after %v, want TOKEN_INVALID within %v", ctrl[len(ctrl)-1], took, refreshTimeout)
	}
	th.publish(0, 0, 3)
	got, _ := c.readRecords(3)
	checkExact(t, got, map[int32][]int64{0: {0, 1, 2}})
}
