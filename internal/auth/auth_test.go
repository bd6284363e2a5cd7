package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testLeeway = 10 * time.Second

var (
	testNow   = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	keysOnce  sync.Once
	rsaKey    *rsa.PrivateKey
	rsaOther  *rsa.PrivateKey
	keysError error
)

// testKeys generates the RSA keys once (2048-bit generation is slow).
func testKeys(t *testing.T) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	keysOnce.Do(func() {
		if rsaKey, keysError = rsa.GenerateKey(rand.Reader, 2048); keysError == nil {
			rsaOther, keysError = rsa.GenerateKey(rand.Reader, 2048)
		}
	})
	if keysError != nil {
		t.Fatal(keysError)
	}
	return rsaKey, rsaOther
}

// writePEM writes a PEM block to a temp file and returns its path.
func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// selfSigned returns a DER certificate for key's public half.
func selfSigned(t *testing.T, key *rsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: testNow, NotAfter: testNow.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func pkixFile(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, "PUBLIC KEY", der)
}

func sign(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims returns valid claims (exp in an hour) plus extra; a nil value in
// extra deletes the claim.
func claims(extra jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "alice", "exp": testNow.Add(time.Hour).Unix(), "tenant": "acme"}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func newAuth(t *testing.T, cfg AuthConfig) *Authenticator {
	t.Helper()
	a, err := NewAuthenticator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return testNow }
	return a
}

// via builds a /ws request carrying token the given way.
func via(transport, token string) *http.Request {
	r := httptest.NewRequest("GET", "/ws", nil)
	switch transport {
	case "header":
		r.Header.Set("Authorization", "Bearer "+token)
	case "query":
		r.URL.RawQuery = url.Values{"token": {token}}.Encode()
	case "subprotocol":
		r.Header.Set("Sec-WebSocket-Protocol", "bearer, "+token)
	}
	return r
}

func TestNewAuthenticator(t *testing.T) {
	key, _ := testKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	bigFile := filepath.Join(t.TempDir(), "big.pem")
	text := filepath.Join(t.TempDir(), "text.pem")
	if os.WriteFile(bigFile, make([]byte, maxKeyFileBytes+1), 0o600) != nil || os.WriteFile(text, []byte("not a key"), 0o600) != nil {
		t.Fatal("writing key files")
	}
	cases := []struct {
		name    string
		cfg     AuthConfig
		enabled bool
		wantErr bool
	}{
		{"zero is off", AuthConfig{}, false, false},
		{"static token", AuthConfig{Token: "t"}, true, false},
		{"secret", AuthConfig{JWTSecret: "s"}, true, false},
		{"pkix key", AuthConfig{JWTPublicKeyFile: pkixFile(t, &key.PublicKey)}, true, false},
		{"pkcs1 key", AuthConfig{JWTPublicKeyFile: writePEM(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&key.PublicKey))}, true, false},
		{"tenant claim with secret", AuthConfig{JWTSecret: "s", TenantClaim: "tenant"}, true, false},
		{"tenant claim without jwt", AuthConfig{Token: "t", TenantClaim: "tenant"}, false, true},
		{"missing key file", AuthConfig{JWTPublicKeyFile: filepath.Join(t.TempDir(), "none.pem")}, false, true},
		{"not pem", AuthConfig{JWTPublicKeyFile: text}, false, true},
		{"garbage pem", AuthConfig{JWTPublicKeyFile: writePEM(t, "PUBLIC KEY", []byte("junk"))}, false, true},
		{"ec p256 key", AuthConfig{JWTPublicKeyFile: pkixFile(t, &ec.PublicKey)}, true, false},
		{"ec p224 key", AuthConfig{JWTPublicKeyFile: pkixFile(t, &ec224.PublicKey)}, false, true},
		{"ed25519 key", AuthConfig{JWTPublicKeyFile: pkixFile(t, edPub)}, true, false},
		{"certificate", AuthConfig{JWTPublicKeyFile: writePEM(t, "CERTIFICATE", selfSigned(t, key))}, true, false},
		{"private key pem", AuthConfig{JWTPublicKeyFile: writePEM(t, "PRIVATE KEY", []byte("x"))}, false, true},
		{"tenant claim with jwks", AuthConfig{JWKSURL: "https://idp.example.com/jwks", TenantClaim: "tenant"}, true, false},
		{"tenant claim with oidc", AuthConfig{OIDCIssuerURL: "https://idp.example.com/realms/r", TenantClaim: "tenant"}, true, false},
		{"jwks over plain http", AuthConfig{JWKSURL: "http://idp.example.com/jwks"}, false, true},
		{"jwks over loopback http", AuthConfig{JWKSURL: "http://127.0.0.1:8080/jwks"}, true, false},
		{"oidc not a url", AuthConfig{OIDCIssuerURL: "idp.example.com"}, false, true},
		{"audience without a key", AuthConfig{Token: "t", Audience: []string{"dashstream"}}, false, true},
		{"rsa 1024", AuthConfig{JWTPublicKeyFile: pkixFile(t, &small.PublicKey)}, false, true},
		{"oversized file", AuthConfig{JWTPublicKeyFile: bigFile}, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewAuthenticator(tc.cfg)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && a.Enabled() != tc.enabled {
				t.Fatalf("Enabled = %v, want %v", a.Enabled(), tc.enabled)
			}
		})
	}
	var none *Authenticator
	if none.Enabled() {
		t.Fatal("nil authenticator enabled")
	}
	if id, err := none.Authenticate(via("subprotocol", "x")); err != nil || id != (Identity{Subprotocol: "bearer"}) {
		t.Fatalf("nil authenticator: %+v %v", id, err)
	}
}

func TestAuthenticate(t *testing.T) {
	key, other := testKeys(t)
	pubFile := pkixFile(t, &key.PublicKey)
	pubPEM, _ := os.ReadFile(pubFile)
	const secret = "hs256-secret"
	static := newAuth(t, AuthConfig{Token: "static-token"})
	hs := newAuth(t, AuthConfig{JWTSecret: secret, Leeway: testLeeway})
	rs := newAuth(t, AuthConfig{JWTPublicKeyFile: pubFile})
	both := newAuth(t, AuthConfig{Token: "static-token", JWTSecret: secret, JWTPublicKeyFile: pubFile, TenantClaim: "tenant"})
	tenant := newAuth(t, AuthConfig{JWTSecret: secret, TenantClaim: "tenant"})
	off := newAuth(t, AuthConfig{})

	good := sign(t, jwt.SigningMethodHS256, []byte(secret), claims(nil))
	noneTok := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil))
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cases := []struct {
		name   string
		a      *Authenticator
		r      *http.Request
		tenant string
		proto  string
		ok     bool
	}{
		{"off without credentials", off, via("", ""), "", "", true},
		{"off echoes the idiom", off, via("subprotocol", "x"), "", "bearer", true},
		{"static header", static, via("header", "static-token"), "", "", true},
		{"static query", static, via("query", "static-token"), "", "", true},
		{"static subprotocol", static, via("subprotocol", "static-token"), "", "bearer", true},
		{"static lower-case scheme", static, withHeader(via("", ""), "Authorization", "bearer static-token"), "", "", true},
		{"static missing", static, via("", ""), "", "", false},
		{"static wrong", static, via("header", "static-tokeN"), "", "", false},
		{"static prefix", static, via("header", "static-toke"), "", "", false},
		{"static longer", static, via("query", "static-token!"), "", "", false},
		{"basic scheme ignored", static, withHeader(via("", ""), "Authorization", "Basic c3RhdGljLXRva2Vu"), "", "", false},
		{"empty bearer", static, withHeader(via("", ""), "Authorization", "Bearer "), "", "", false},
		{"subprotocol without token", static, withHeader(via("", ""), "Sec-WebSocket-Protocol", "bearer"), "", "bearer", false},
		{"malformed subprotocol list", static, withHeader(via("", ""), "Sec-WebSocket-Protocol", "bearer, static-token, a b"), "", "", false},
		{"header wins over query", static, withQuery(via("header", "wrong"), "static-token"), "", "", false},
		{"oversized token", static, via("header", strings.Repeat("a", MaxTokenBytes+1)), "", "", false},
		{"hs256 header", hs, via("header", good), "", "", true},
		{"hs256 query", hs, via("query", good), "", "", true},
		{"hs256 subprotocol", hs, via("subprotocol", good), "", "bearer", true},
		{"hs256 wrong secret", hs, via("header", sign(t, jwt.SigningMethodHS256, []byte("other"), claims(nil))), "", "", false},
		{"hs384", hs, via("header", sign(t, jwt.SigningMethodHS384, []byte(secret), claims(nil))), "", "", true},
		{"hs512", hs, via("header", sign(t, jwt.SigningMethodHS512, []byte(secret), claims(nil))), "", "", true},
		{"expired beyond leeway", hs, via("header", sign(t, jwt.SigningMethodHS256, []byte(secret), claims(jwt.MapClaims{"exp": testNow.Add(-2 * testLeeway).Unix()}))), "", "", false},
		{"nbf within leeway", hs, via("header", sign(t, jwt.SigningMethodHS256, []byte(secret), claims(jwt.MapClaims{"nbf": testNow.Add(testLeeway / 2).Unix()}))), "", "", true},
		{"alg none refused", hs, via("header", noneTok), "", "", false},
		{"expired", hs, via("header", sign(t, jwt.SigningMethodHS256, []byte(secret), claims(jwt.MapClaims{"exp": testNow.Add(-time.Minute).Unix()}))), "", "", false},
		{"expired within leeway", hs, via("header", sign(t, jwt.SigningMethodHS256, []byte(secret), claims(jwt.MapClaims{"exp": testNow.Add(-testLeeway / 2).Unix()}))), "", "", true},
		{"exp missing", hs, via("header", sign(t, jwt.SigningMethodHS256, []byte(secret), claims(jwt.MapClaims{"exp": nil}))), "", "", false},
		{"exp not a number", hs, via("header", sign(t, jwt.SigningMethodHS256, []byte(secret), claims(jwt.MapClaims{"exp": "soon"}))), "", "", false},
		{"nbf in the future", hs, via("header", sign(t, jwt.SigningMethodHS256, []byte(secret), claims(jwt.MapClaims{"nbf": testNow.Add(time.Minute).Unix()}))), "", "", false},
		{"nbf passed", hs, via("header", sign(t, jwt.SigningMethodHS256, []byte(secret), claims(jwt.MapClaims{"nbf": testNow.Add(-time.Minute).Unix()}))), "", "", true},
		{"garbage jwt", hs, via("header", "a.b.c"), "", "", false},
		{"static token not configured", hs, via("header", "static-token"), "", "", false},
		{"rs256", rs, via("header", sign(t, jwt.SigningMethodRS256, key, claims(nil))), "", "", true},
		{"rs256 wrong key", rs, via("header", sign(t, jwt.SigningMethodRS256, other, claims(nil))), "", "", false},
		{"rs512", rs, via("header", sign(t, jwt.SigningMethodRS512, key, claims(nil))), "", "", true},
		{"ps256", rs, via("header", sign(t, jwt.SigningMethodPS256, key, claims(nil))), "", "", true},
		{"hs256 refused without secret", rs, via("header", good), "", "", false},
		{"alg confusion refused", rs, via("header", sign(t, jwt.SigningMethodHS256, pubPEM, claims(nil))), "", "", false},
		{"es256 refused", rs, via("header", sign(t, jwt.SigningMethodES256, ec, claims(nil))), "", "", false},
		{"tenant from claim", tenant, via("subprotocol", good), "acme", "bearer", true},
		{"tenant missing", tenant, via("header", sign(t, jwt.SigningMethodHS256, []byte(secret), claims(jwt.MapClaims{"tenant": nil}))), "", "", false},
		{"tenant empty", tenant, via("header", sign(t, jwt.SigningMethodHS256, []byte(secret), claims(jwt.MapClaims{"tenant": ""}))), "", "", false},
		{"tenant not a string", tenant, via("header", sign(t, jwt.SigningMethodHS256, []byte(secret), claims(jwt.MapClaims{"tenant": 7}))), "", "", false},
		{"both: static is unrestricted", both, via("query", "static-token"), "", "", true},
		{"both: hs256 tenant", both, via("header", good), "acme", "", true},
		{"both: rs256 tenant", both, via("header", sign(t, jwt.SigningMethodRS256, key, claims(jwt.MapClaims{"tenant": "globex"}))), "globex", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := tc.a.Authenticate(tc.r)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrUnauthorized) {
					t.Fatalf("err %v is not ErrUnauthorized", err)
				}
				if id != (Identity{}) {
					t.Fatalf("identity %+v with an error", id)
				}
				return
			}
			if id.Tenant != tc.tenant || id.Subprotocol != tc.proto {
				t.Fatalf("identity %+v, want tenant %q subprotocol %q", id, tc.tenant, tc.proto)
			}
		})
	}
}

func withHeader(r *http.Request, k, v string) *http.Request {
	r.Header.Set(k, v)
	return r
}

func withQuery(r *http.Request, token string) *http.Request {
	r.URL.RawQuery = url.Values{"token": {token}}.Encode()
	return r
}

// TestTokenEqual covers the constant-time path: equality is decided on
// fixed-size hashes, whatever the lengths and wherever the tokens differ.
func TestTokenEqual(t *testing.T) {
	want := sha256.Sum256([]byte("s3cret-token"))
	for token, eq := range map[string]bool{
		"s3cret-token": true, "s3cret-tokem": false, "s3cret-toke": false, "s3cret-token\x00": false,
		"": false, "S3cret-token": false, strings.Repeat("s3cret-token", 100): false,
	} {
		if got := tokenEqual(token, &want); got != eq {
			t.Errorf("tokenEqual(%q) = %v", token, got)
		}
	}
	a := newAuth(t, AuthConfig{Token: "s3cret-token"})
	if a.tokenHash == nil || *a.tokenHash != want {
		t.Fatal("the static token is not kept as its hash")
	}
}

func TestProtocolToken(t *testing.T) {
	cases := []struct {
		values  []string
		token   string
		offered bool
	}{
		{nil, "", false},
		{[]string{"bearer, abc.def-ghi_"}, "abc.def-ghi_", true},
		{[]string{"chat", "bearer,abc"}, "abc", true},
		{[]string{"bearer"}, "", true},
		{[]string{"Bearer, abc"}, "", false}, // subprotocols are case-sensitive
		{[]string{"bearer, a=b"}, "", false}, // '=' is not a token character
		{[]string{"bearer,, abc"}, "", false},
		{[]string{"chat, superchat"}, "", false},
	}
	for _, tc := range cases {
		token, offered := protocolToken(tc.values)
		if token != tc.token || offered != tc.offered {
			t.Errorf("protocolToken(%q) = %q %v, want %q %v", tc.values, token, offered, tc.token, tc.offered)
		}
	}
}

func FuzzAuthenticate(f *testing.F) {
	f.Add("Bearer x.y.z", "bearer, abc", "token=abc")
	f.Add("", "bearer", "token=%zz")
	a, err := NewAuthenticator(AuthConfig{Token: "abc", JWTSecret: "s", TenantClaim: "tenant"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, authz, proto, query string) {
		r := httptest.NewRequest("GET", "/ws", nil)
		r.Header.Set("Authorization", authz)
		r.Header.Set("Sec-WebSocket-Protocol", proto)
		r.URL.RawQuery = query
		id, err := a.Authenticate(r)
		if err == nil && id.Tenant != "" {
			t.Fatalf("fuzzed input authenticated as tenant %q", id.Tenant)
		}
	})
}

// TestIdentityExpires checks the expiry a connection is closed at: a JWT's
// exp plus the leeway; never for a static token or with auth off. A bare
// token (a refresh frame's) verifies like the upgrade's.
func TestIdentityExpires(t *testing.T) {
	const secret = "hs256-secret"
	hs := newAuth(t, AuthConfig{Token: "static-token", JWTSecret: secret, Leeway: testLeeway, TenantClaim: "tenant"})
	exp := testNow.Add(time.Hour)
	tok := sign(t, jwt.SigningMethodHS256, []byte(secret), claims(nil))
	cases := []struct {
		name    string
		a       *Authenticator
		token   string
		expires time.Time
		tenant  string
		ok      bool
	}{
		{"jwt: exp plus leeway", hs, tok, exp.Add(testLeeway), "acme", true},
		{"static token never expires", hs, "static-token", time.Time{}, "", true},
		{"auth off never expires", newAuth(t, AuthConfig{}), "", time.Time{}, "", true},
		{"wrong token", hs, "nope", time.Time{}, "", false},
		{"oversized", hs, strings.Repeat("a", MaxTokenBytes+1), time.Time{}, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := tc.a.VerifyToken(context.Background(), tc.token)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
			if !id.Expires.Equal(tc.expires) || id.Tenant != tc.tenant {
				t.Fatalf("identity %+v, want expiry %v tenant %q", id, tc.expires, tc.tenant)
			}
		})
	}
	id, err := hs.Authenticate(via("subprotocol", tok))
	if err != nil || !id.Expires.Equal(exp.Add(testLeeway)) || id.Subprotocol != BearerProtocol {
		t.Fatalf("upgrade identity %+v, %v", id, err)
	}
}
