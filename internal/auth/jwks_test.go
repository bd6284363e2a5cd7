package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/testenv"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/dashflow/dashstream-gateway/internal/auth/oidctest"
)

// jwtClock is the test's time (at testNow): the key source's rate limit
// reads it, so a test moves past the 10 s refresh interval without sleeping.
func jwtClock() *testenv.Clock { return testenv.NewClock(testNow) }

func clockedAuth(t *testing.T, cfg AuthConfig, clk *testenv.Clock) *Authenticator {
	t.Helper()
	a, err := NewAuthenticator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.now = clk.Now
	return a
}

// accepts authenticates token in a header and reports success; an error
// must be ErrUnauthorized.
func accepts(t *testing.T, a *Authenticator, token string) (Identity, bool) {
	t.Helper()
	id, err := a.Authenticate(via("header", token))
	if err != nil && !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err %v is not ErrUnauthorized", err)
	}
	return id, err == nil
}

// runAuth runs a.Run until the test ends and waits for it to return.
func runAuth(t *testing.T, a *Authenticator) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestJWKSAlgorithms(t *testing.T) {
	rs := oidctest.NewKey(t, "rs", jwt.SigningMethodRS256)
	pinned := rs.WithMethod("rs-pinned", jwt.SigningMethodRS256)
	pinned.PublishAlg = true
	ec256 := oidctest.NewKey(t, "ec256", jwt.SigningMethodES256)
	ec384 := oidctest.NewKey(t, "ec384", jwt.SigningMethodES384)
	ec521 := oidctest.NewKey(t, "ec521", jwt.SigningMethodES512)
	ed := oidctest.NewKey(t, "ed", jwt.SigningMethodEdDSA)
	p := oidctest.New(t, rs, pinned, ec256, ec384, ec521, ed)
	const secret = "configured-hmac-secret"
	a := clockedAuth(t, AuthConfig{JWKSURL: p.JWKSURL(), HTTPClient: p.Client(), Leeway: testLeeway,
		JWTSecret: secret, TenantClaim: "tenant"}, jwtClock())

	der, err := x509.MarshalPKIXPublicKey(rs.Public())
	if err != nil {
		t.Fatal(err)
	}
	rsPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	confused := func(secret []byte) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil))
		tok.Header["kid"] = "rs"
		return mustSign(t, tok, secret)
	}
	impostor := oidctest.NewKey(t, "rs", jwt.SigningMethodRS256) // same kid, other key
	noneTok := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil))
	noneTok.Header["kid"] = "rs"
	huge := rs.Sign(t, claims(jwt.MapClaims{"pad": strings.Repeat("x", MaxTokenBytes)}))

	cases := []struct {
		name  string
		token string
		ok    bool
	}{
		{"RS256", rs.Sign(t, claims(nil)), true},
		{"RS384", rs.WithMethod("rs", jwt.SigningMethodRS384).Sign(t, claims(nil)), true},
		{"RS512", rs.WithMethod("rs", jwt.SigningMethodRS512).Sign(t, claims(nil)), true},
		{"PS256", rs.WithMethod("rs", jwt.SigningMethodPS256).Sign(t, claims(nil)), true},
		{"ES256", ec256.Sign(t, claims(nil)), true},
		{"ES384", ec384.Sign(t, claims(nil)), true},
		{"ES512", ec521.Sign(t, claims(nil)), true},
		{"EdDSA", ed.Sign(t, claims(nil)), true},
		{"HS256 with the configured secret", sign(t, jwt.SigningMethodHS256, []byte(secret), claims(nil)), true},
		{"no kid: every key of the alg is tried", rs.WithMethod("", jwt.SigningMethodRS256).Sign(t, claims(nil)), true},
		{"jwk alg pins RS256", pinned.Sign(t, claims(nil)), true},
		{"jwk alg pins RS256: RS512 refused", pinned.WithMethod("rs-pinned", jwt.SigningMethodRS512).Sign(t, claims(nil)), false},
		{"ES256 under an RSA kid", ec256.WithMethod("rs", jwt.SigningMethodES256).Sign(t, claims(nil)), false},
		{"EdDSA under an EC kid", ed.WithMethod("ec256", jwt.SigningMethodEdDSA).Sign(t, claims(nil)), false},
		{"alg none", mustSign(t, noneTok, jwt.UnsafeAllowNoneSignatureType), false},
		{"alg confusion: HS256 keyed with the RSA public key PEM", confused(rsPEM), false},
		{"alg confusion: HS256 keyed with the RSA public key DER", confused(der), false},
		{"known kid, other key", impostor.Sign(t, claims(nil)), false},
		{"crit header", rs.SignHeader(t, map[string]any{"crit": []string{"exp"}}, claims(nil)), false},
		{"oversize token", huge, false},
		{"expired", rs.Sign(t, claims(jwt.MapClaims{"exp": testNow.Add(-2 * testLeeway).Unix()})), false},
		{"expired within leeway", rs.Sign(t, claims(jwt.MapClaims{"exp": testNow.Add(-testLeeway / 2).Unix()})), true},
		{"not yet valid", ec256.Sign(t, claims(jwt.MapClaims{"nbf": testNow.Add(2 * testLeeway).Unix()})), false},
		{"not yet valid within leeway", ec256.Sign(t, claims(jwt.MapClaims{"nbf": testNow.Add(testLeeway / 2).Unix()})), true},
		{"no exp", ed.Sign(t, claims(jwt.MapClaims{"exp": nil})), false},
		{"no tenant claim", ed.Sign(t, claims(jwt.MapClaims{"tenant": nil})), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, ok := accepts(t, a, tc.token)
			if ok != tc.ok {
				t.Fatalf("accepted %v, want %v", ok, tc.ok)
			}
			if ok && id.Tenant != "acme" {
				t.Fatalf("tenant %q, want acme", id.Tenant)
			}
		})
	}
	if len(huge) <= MaxTokenBytes {
		t.Fatalf("oversize token is %d bytes", len(huge))
	}
}

func mustSign(t *testing.T, tok *jwt.Token, key any) string {
	t.Helper()
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestJWKSRotation: a new kid is fetched on demand (at most once per
// interval over all clients) and a removed one stops verifying, without a
// restart.
func TestJWKSRotation(t *testing.T) {
	keyA := oidctest.NewKey(t, "a", jwt.SigningMethodES256)
	keyB := oidctest.NewKey(t, "b", jwt.SigningMethodES256)
	p := oidctest.New(t, keyA)
	clk := jwtClock()
	a := clockedAuth(t, AuthConfig{JWKSURL: p.JWKSURL(), HTTPClient: p.Client()}, clk)
	tokA, tokB := keyA.Sign(t, claims(nil)), keyB.Sign(t, claims(nil))
	step := func(what, token string, wantOK bool, wantFetches int64) {
		t.Helper()
		if _, ok := accepts(t, a, token); ok != wantOK {
			t.Fatalf("%s: accepted %v, want %v", what, ok, wantOK)
		}
		if got := p.JWKSFetches(); got != wantFetches {
			t.Fatalf("%s: %d JWKS fetches, want %d", what, got, wantFetches)
		}
	}
	step("first token fetches the set", tokA, true, 1)
	step("cached", tokA, true, 1)
	p.Publish(keyB)
	step("new kid within the interval", tokB, false, 1)
	for i := range 50 {
		tok := keyB.WithMethod("random-"+strconv.Itoa(i), jwt.SigningMethodES256).Sign(t, claims(nil))
		step("random kid", tok, false, 1)
	}
	clk.Advance(DefaultJWKSMinRefresh - time.Second)
	step("new kid 9 s later", tokB, false, 1)
	clk.Advance(time.Second)
	step("new kid 10 s later is fetched", tokB, true, 2)
	step("removed kid", tokA, false, 2)
	clk.Advance(DefaultJWKSMinRefresh)
	step("removed kid after another interval", tokA, false, 3)
	step("rotated key still good", tokB, true, 3)
}

// TestJWKSOutage: while the provider fails, the cached keys keep verifying,
// and the periodic refresh picks up a rotation once it is back.
func TestJWKSOutage(t *testing.T) {
	keyA := oidctest.NewKey(t, "a", jwt.SigningMethodEdDSA)
	keyB := oidctest.NewKey(t, "b", jwt.SigningMethodEdDSA)
	p := oidctest.New(t, keyA)
	clk := jwtClock()
	a := clockedAuth(t, AuthConfig{JWKSURL: p.JWKSURL(), HTTPClient: p.Client(), JWKSRefresh: 10 * time.Millisecond}, clk)
	tokA, tokB := keyA.Sign(t, claims(nil)), keyB.Sign(t, claims(nil))
	if _, ok := accepts(t, a, tokA); !ok {
		t.Fatal("token refused before the outage")
	}
	p.SetDown(true)
	clk.Advance(DefaultJWKSMinRefresh)
	if _, ok := accepts(t, a, tokB); ok {
		t.Fatal("unknown kid accepted during the outage")
	}
	if p.JWKSFetches() != 2 {
		t.Fatalf("%d fetches, want the on-demand one to have been tried", p.JWKSFetches())
	}
	runAuth(t, a)
	before := p.JWKSFetches()
	eventually(t, "periodic refreshes fail", func() bool { return p.JWKSFetches() >= before+3 })
	if _, ok := accepts(t, a, tokA); !ok {
		t.Fatal("cached key refused during the outage")
	}
	p.Publish(keyA, keyB)
	p.SetDown(false)
	// The clock stands still, so tokB's unknown kid cannot fetch on demand:
	// only the background refresh can make it verify.
	eventually(t, "rotated key verifies after the outage", func() bool { _, ok := accepts(t, a, tokB); return ok })
	if _, ok := accepts(t, a, tokA); !ok {
		t.Fatal("key A refused after the outage")
	}
}

// TestOIDCStartupOutage: the authenticator builds without the provider,
// refuses tokens until discovery and keys succeed, then accepts them.
func TestOIDCStartupOutage(t *testing.T) {
	key := oidctest.NewKey(t, "k1", jwt.SigningMethodRS256)
	p := oidctest.New(t, key)
	p.SetDown(true)
	a := clockedAuth(t, AuthConfig{OIDCIssuerURL: p.Issuer, HTTPClient: p.Client(), JWKSRefresh: 20 * time.Millisecond}, jwtClock())
	tok := key.Sign(t, claims(jwt.MapClaims{"iss": p.Issuer}))
	runAuth(t, a)
	eventually(t, "discovery retried", func() bool { return p.DiscoveryFetches() >= 3 })
	if _, ok := accepts(t, a, tok); ok {
		t.Fatal("token accepted before any key was known")
	}
	p.SetDown(false)
	eventually(t, "token accepted once the provider is up", func() bool { _, ok := accepts(t, a, tok); return ok })
	if p.DiscoveryFetches() < 4 || p.JWKSFetches() < 1 {
		t.Fatalf("discovery %d, jwks %d fetches", p.DiscoveryFetches(), p.JWKSFetches())
	}
}

func TestOIDCIssuerAndAudience(t *testing.T) {
	key := oidctest.NewKey(t, "k1", jwt.SigningMethodES384)
	p := oidctest.New(t, key)
	const override = "https://tokens.example.com/"
	discovered := clockedAuth(t, AuthConfig{OIDCIssuerURL: p.Issuer, HTTPClient: p.Client(),
		Audience: []string{"dashstream", "dashstream-ui"}, TenantClaim: "tenant"}, jwtClock())
	overridden := clockedAuth(t, AuthConfig{OIDCIssuerURL: p.Issuer, HTTPClient: p.Client(), Issuer: override}, jwtClock())
	direct := clockedAuth(t, AuthConfig{JWKSURL: p.JWKSURL(), HTTPClient: p.Client(), Issuer: override,
		Audience: []string{"https://api.example.com"}}, jwtClock())
	tok := func(iss, aud any) string {
		return key.Sign(t, claims(jwt.MapClaims{"iss": iss, "aud": aud}))
	}
	cases := []struct {
		name  string
		a     *Authenticator
		token string
		ok    bool
	}{
		{"issuer and audience", discovered, tok(p.Issuer, "dashstream"), true},
		{"audience among several", discovered, tok(p.Issuer, []string{"other", "dashstream-ui"}), true},
		{"wrong audience", discovered, tok(p.Issuer, "other"), false},
		{"no audience", discovered, tok(p.Issuer, nil), false},
		{"wrong issuer", discovered, tok("https://evil.example.com/realms/test", "dashstream"), false},
		{"issuer with a trailing slash", discovered, tok(p.Issuer+"/", "dashstream"), false},
		{"no issuer", discovered, tok(nil, "dashstream"), false},
		{"override: configured issuer", overridden, tok(override, nil), true},
		{"override: discovered issuer refused", overridden, tok(p.Issuer, nil), false},
		{"jwks url: issuer and audience", direct, tok(override, "https://api.example.com"), true},
		{"jwks url: wrong audience", direct, tok(override, "dashstream"), false},
		{"jwks url: wrong issuer", direct, tok(p.Issuer, "https://api.example.com"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := accepts(t, tc.a, tc.token); ok != tc.ok {
				t.Fatalf("accepted %v, want %v", ok, tc.ok)
			}
		})
	}
}

// TestOIDCDocumentIssuerMismatch: a discovery document naming another
// issuer is not trusted, so its keys are never fetched.
func TestOIDCDocumentIssuerMismatch(t *testing.T) {
	key := oidctest.NewKey(t, "k1", jwt.SigningMethodES256)
	p := oidctest.New(t, key)
	p.SetDocumentIssuer("https://evil.example.com/realms/test")
	clk := jwtClock()
	a := clockedAuth(t, AuthConfig{OIDCIssuerURL: p.Issuer, HTTPClient: p.Client()}, clk)
	tok := key.Sign(t, claims(jwt.MapClaims{"iss": p.Issuer}))
	if _, ok := accepts(t, a, tok); ok {
		t.Fatal("token accepted through a foreign discovery document")
	}
	if p.DiscoveryFetches() != 1 || p.JWKSFetches() != 0 {
		t.Fatalf("discovery %d, jwks %d fetches; want 1 and 0", p.DiscoveryFetches(), p.JWKSFetches())
	}
	p.SetDocumentIssuer("")
	clk.Advance(DefaultJWKSMinRefresh)
	if _, ok := accepts(t, a, tok); !ok {
		t.Fatal("token refused once the document is right")
	}
}

func TestParseJWKS(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallJWK, err := jwkset.NewJWKFromKey(&small.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "small"}})
	if err != nil {
		t.Fatal(err)
	}
	smallJSON, _ := json.Marshal(smallJWK.Marshal())
	const x, y = `"x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"`, `"y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"`
	raw := []string{
		`{"kty":"oct","kid":"hmac","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}`,
		string(smallJSON),
		`{"kty":"EC","kid":"enc","use":"enc","crv":"P-256",` + x + `,` + y + `}`,
		`{"kty":"EC","kid":"sig","crv":"P-256",` + x + `,` + y + `}`,
		`{"kty":"EC","kid":"wrong-alg","alg":"RS256","crv":"P-256",` + x + `,` + y + `}`,
		`{"kty":"EC","kid":"off-curve","crv":"P-256",` + x + `,"y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5b0"}`,
		`{"kty":"OKP","kid":"x25519","crv":"X25519","x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}`,
		`{"kty":"EC","kid":"garbage"`,
	}
	msgs := make([]json.RawMessage, len(raw))
	for i, r := range raw {
		msgs[i] = json.RawMessage(r)
	}
	keys, skipped := parseJWKS(msgs)
	if len(keys) != 1 || keys[0].kid != "sig" || !keys[0].allows("ES256") || keys[0].allows("ES384") {
		t.Fatalf("kept %+v", keys)
	}
	if skipped != len(raw)-1 {
		t.Fatalf("skipped %d, want %d", skipped, len(raw)-1)
	}
}

// TestJWKSConcurrentUnknownKid: clients arriving together with a new kid
// share one fetch.
func TestJWKSConcurrentUnknownKid(t *testing.T) {
	keyA := oidctest.NewKey(t, "a", jwt.SigningMethodES256)
	keyB := oidctest.NewKey(t, "b", jwt.SigningMethodES256)
	p := oidctest.New(t, keyA)
	clk := jwtClock()
	a := clockedAuth(t, AuthConfig{JWKSURL: p.JWKSURL(), HTTPClient: p.Client()}, clk)
	if _, ok := accepts(t, a, keyA.Sign(t, claims(nil))); !ok {
		t.Fatal("first token refused")
	}
	p.Publish(keyA, keyB)
	clk.Advance(DefaultJWKSMinRefresh)
	tokB := keyB.Sign(t, claims(nil))
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for range 32 {
		wg.Go(func() {
			if _, err := a.Authenticate(via("header", tokB)); err == nil {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if p.JWKSFetches() != 2 {
		t.Fatalf("%d JWKS fetches, want 2 (one shared by the new kid's clients)", p.JWKSFetches())
	}
	// Clients that arrived after the fetch finished found the key cached or
	// shared the fetch; none may have been told "too soon" while the key
	// was already there.
	if admitted != 32 {
		t.Fatalf("%d of 32 clients admitted", admitted)
	}
}

func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","kid":"sig","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","alg":"EdDSA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA"},{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if json.Unmarshal(data, &set) != nil {
			return
		}
		keys, skipped := parseJWKS(set.Keys)
		if len(keys)+skipped != len(set.Keys) {
			t.Fatalf("%d kept + %d skipped of %d", len(keys), skipped, len(set.Keys))
		}
		for _, k := range keys {
			if len(k.algs) == 0 {
				t.Fatalf("key %q verifies nothing", k.kid)
			}
			for _, alg := range k.algs {
				if !slices.Contains(asymmetricAlgs, alg) {
					t.Fatalf("key %q allows %s", k.kid, alg)
				}
			}
		}
	})
}
