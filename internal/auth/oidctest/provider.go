// Package oidctest is an in-process OpenID Connect provider for tests: a
// real HTTP server publishing a discovery document and a JSON Web Key Set
// of keys generated in the test, with switches for key rotation, outages and
// a wrong discovery issuer. Safe for concurrent use.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// RealmPath is where the issuer lives on the server, as with Keycloak.
const RealmPath = "/realms/test"

// Key is a signing key of the provider.
type Key struct {
	KID    string
	Method jwt.SigningMethod
	// PublishAlg puts the algorithm into the published JWK ("alg").
	PublishAlg bool
	priv       crypto.Signer
}

// NewKey generates a key for method (RS*/PS*: 2048-bit RSA, ES256/384/512:
// the matching curve, EdDSA: Ed25519).
func NewKey(t testing.TB, kid string, method jwt.SigningMethod) *Key {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch method.Alg() {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("oidctest: no key type for %s", method.Alg())
	}
	if err != nil {
		t.Fatal(err)
	}
	return &Key{KID: kid, Method: method, priv: priv}
}

// WithMethod returns the same key material under another kid and method
// (e.g. the RSA key signing RS512).
func (k *Key) WithMethod(kid string, method jwt.SigningMethod) *Key {
	return &Key{KID: kid, Method: method, priv: k.priv}
}

// Public is the public key.
func (k *Key) Public() crypto.PublicKey { return k.priv.Public() }

// Sign returns a JWT of claims signed with k, its kid in the header (none
// when KID is empty).
func (k *Key) Sign(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	return k.SignHeader(t, nil, claims)
}

// SignHeader is Sign with extra header fields.
func (k *Key) SignHeader(t testing.TB, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.Method, claims)
	if k.KID != "" {
		tok.Header["kid"] = k.KID
	}
	for name, v := range header {
		tok.Header[name] = v
	}
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Provider is the running provider.
type Provider struct {
	// URL is the server's base URL; Issuer is URL+RealmPath.
	URL, Issuer string

	srv            *httptest.Server
	jwksHits       atomic.Int64
	discoveryHits  atomic.Int64
	mu             sync.Mutex
	published      []*Key
	down           bool
	documentIssuer string // "": Issuer
}

// New starts a provider publishing keys; it stops at test cleanup.
func New(t testing.TB, keys ...*Key) *Provider {
	t.Helper()
	p := &Provider{published: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+RealmPath+"/.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET "+RealmPath+"/jwks", p.jwks)
	p.srv = httptest.NewServer(mux)
	p.URL, p.Issuer = p.srv.URL, p.srv.URL+RealmPath
	t.Cleanup(p.srv.Close)
	return p
}

// JWKSURL is the key set's URL.
func (p *Provider) JWKSURL() string { return p.Issuer + "/jwks" }

// Client is an HTTP client whose idle connections the server closes.
func (p *Provider) Client() *http.Client { return p.srv.Client() }

// Publish replaces the published keys (rotation).
func (p *Provider) Publish(keys ...*Key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published = keys
}

// SetDown makes every endpoint answer 503 (an outage) or serve again.
func (p *Provider) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

// SetDocumentIssuer makes the discovery document claim another issuer.
func (p *Provider) SetDocumentIssuer(iss string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.documentIssuer = iss
}

// JWKSFetches counts key set requests served or refused.
func (p *Provider) JWKSFetches() int64 { return p.jwksHits.Load() }

// DiscoveryFetches counts discovery requests served or refused.
func (p *Provider) DiscoveryFetches() int64 { return p.discoveryHits.Load() }

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	p.discoveryHits.Add(1)
	p.mu.Lock()
	down, iss := p.down, p.documentIssuer
	p.mu.Unlock()
	if down {
		http.Error(w, "provider down", http.StatusServiceUnavailable)
		return
	}
	if iss == "" {
		iss = p.Issuer
	}
	writeJSON(w, map[string]any{"issuer": iss, "jwks_uri": p.JWKSURL(),
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"}})
}

func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	p.jwksHits.Add(1)
	p.mu.Lock()
	down, keys := p.down, p.published
	p.mu.Unlock()
	if down {
		http.Error(w, "provider down", http.StatusServiceUnavailable)
		return
	}
	set := jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{}}
	for _, k := range keys {
		meta := jwkset.JWKMetadataOptions{KID: k.KID, USE: jwkset.UseSig}
		if k.PublishAlg {
			meta.ALG = jwkset.ALG(k.Method.Alg())
		}
		jwk, err := jwkset.NewJWKFromKey(k.Public(), jwkset.JWKOptions{Metadata: meta})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	writeJSON(w, set)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
