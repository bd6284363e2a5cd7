package auth

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// MaxTokenBytes bounds a credential; a longer one is refused before it
	// is compared or parsed.
	MaxTokenBytes = 8 << 10
	// BearerProtocol is the subprotocol of the browser token idiom
	// "Sec-WebSocket-Protocol: bearer, <token>". The upgrade must select it:
	// a browser fails a handshake that selects none of the offered ones.
	BearerProtocol = "bearer"

	maxKeyFileBytes = 64 << 10
	minRSABits      = 2048
)

// AuthConfig configures client authentication. The zero value turns it off.
type AuthConfig struct {
	// Token is a static bearer token (WEBSOCKET_AUTH_TOKEN). It grants an
	// unrestricted stream (no tenant). Empty: no static token.
	Token string
	// JWTSecret is the HMAC key of client JWTs (HS256, HS384, HS512).
	// Empty: HS* refused.
	JWTSecret string
	// JWTPublicKeyFile is a PEM file with an RSA (at least 2048 bits), ECDSA
	// (P-256, P-384, P-521) or Ed25519 public key (PKIX, PKCS#1 or a
	// certificate). Its type decides the algorithms it verifies. Empty: none.
	JWTPublicKeyFile string
	// JWKSURL is a JSON Web Key Set of the provider's public keys
	// (WEBSOCKET_JWT_JWKS_URL): https, or http to a loopback host. Empty:
	// none, unless OIDCIssuerURL discovers one.
	JWKSURL string
	// OIDCIssuerURL is an OpenID Connect issuer (WEBSOCKET_OIDC_ISSUER_URL)
	// whose discovery document names the JWKS URL. It is also the expected
	// iss unless Issuer is set. Empty: no discovery.
	OIDCIssuerURL string
	// Issuer is the required iss claim (WEBSOCKET_JWT_ISSUER). Empty:
	// OIDCIssuerURL, or iss not checked.
	Issuer string
	// Audience lists accepted aud values; a JWT must name one of them
	// (WEBSOCKET_JWT_AUDIENCE). Empty: aud not checked.
	Audience []string
	// Leeway is the tolerated clock skew on exp and nbf. Zero: none.
	Leeway time.Duration
	// JWKSRefresh is how often the key set is fetched again. Zero:
	// DefaultJWKSRefresh.
	JWKSRefresh time.Duration
	// JWKSMinRefresh is the least time between two fetches caused by
	// tokens with an unknown kid. Zero: DefaultJWKSMinRefresh.
	JWKSMinRefresh time.Duration
	// HTTPClient fetches discovery documents and key sets. Nil: a client
	// with a 10 s timeout.
	HTTPClient *http.Client
	// Logger reports key set loads and fetch failures. Nil: discarded.
	Logger *slog.Logger
	// TenantClaim names the JWT claim that restricts a client to one
	// tenant's records; a JWT without it (or with a non-string or empty
	// value) is refused. Empty: JWT clients are unrestricted.
	TenantClaim string
}

// jwtConfigured reports whether any JWT key source is set.
func (c AuthConfig) jwtConfigured() bool {
	return c.JWTSecret != "" || c.JWTPublicKeyFile != "" || c.JWKSURL != "" || c.OIDCIssuerURL != ""
}

// Identity is what authentication established about a client.
type Identity struct {
	// Tenant restricts the client to records of this tenant. Empty:
	// unrestricted.
	Tenant string
	// Subprotocol is the one the upgrade must select (BearerProtocol when
	// the client offered the token idiom). Empty: none.
	Subprotocol string
	// Expires is when the credentials stop being valid: a JWT's exp plus
	// the configured leeway. Zero: never (a static token, or auth off).
	Expires time.Time
}

// Authenticator checks the credentials of WebSocket requests. A nil or
// disabled Authenticator lets every request through, unrestricted. Safe for
// concurrent use.
type Authenticator struct {
	tokenHash   *[sha256.Size]byte // of AuthConfig.Token; nil: none
	secret      []byte             // HMAC key; nil: none
	static      *verifyKey         // from JWTPublicKeyFile; nil: none
	jwks        *keySource         // nil without JWKSURL or OIDCIssuerURL
	tenantClaim string
	leeway      time.Duration
	parser      *jwt.Parser // nil without a JWT key source
	now         func() time.Time
}

// NewAuthenticator validates cfg and loads the public key file. It does no
// network I/O: JWKS keys are fetched by Run and on demand.
func NewAuthenticator(cfg AuthConfig) (*Authenticator, error) {
	a := &Authenticator{tenantClaim: cfg.TenantClaim, leeway: cfg.Leeway, now: time.Now}
	if cfg.Token != "" {
		h := sha256.Sum256([]byte(cfg.Token))
		a.tokenHash = &h
	}
	if cfg.TenantClaim != "" && !cfg.jwtConfigured() {
		return nil, errors.New("auth: a tenant claim needs a JWT secret, public key, JWKS or OIDC issuer")
	}
	if !cfg.jwtConfigured() {
		if cfg.Issuer != "" || len(cfg.Audience) > 0 {
			return nil, errors.New("auth: iss and aud checks need a JWT secret, public key, JWKS or OIDC issuer")
		}
		return a, nil
	}
	var methods []string
	if cfg.JWTSecret != "" {
		a.secret = []byte(cfg.JWTSecret)
		methods = append(methods, hmacAlgs...)
	}
	if cfg.JWTPublicKeyFile != "" {
		k, err := loadPublicKey(cfg.JWTPublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("auth: jwt public key %s: %w", cfg.JWTPublicKeyFile, err)
		}
		a.static = &k
		methods = append(methods, k.algs...)
	}
	if cfg.JWKSURL != "" || cfg.OIDCIssuerURL != "" {
		src, err := newKeySource(cfg, a)
		if err != nil {
			return nil, err
		}
		a.jwks = src
		methods = append(methods, asymmetricAlgs...)
	}
	a.parser = jwt.NewParser(a.parserOptions(cfg, methods)...)
	return a, nil
}

func (a *Authenticator) parserOptions(cfg AuthConfig, methods []string) []jwt.ParserOption {
	slices.Sort(methods)
	opts := []jwt.ParserOption{jwt.WithValidMethods(slices.Compact(methods)), jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway), jwt.WithTimeFunc(func() time.Time { return a.now() })}
	if iss := cmp.Or(cfg.Issuer, cfg.OIDCIssuerURL); iss != "" {
		opts = append(opts, jwt.WithIssuer(iss))
	}
	if len(cfg.Audience) > 0 {
		opts = append(opts, jwt.WithAudience(cfg.Audience...))
	}
	return opts
}

func newKeySource(cfg AuthConfig, a *Authenticator) (*keySource, error) {
	for name, u := range map[string]string{"jwks url": cfg.JWKSURL, "oidc issuer url": cfg.OIDCIssuerURL} {
		if u == "" {
			continue
		}
		if err := CheckProviderURL(u); err != nil {
			return nil, fmt.Errorf("auth: %s: %w", name, err)
		}
	}
	src := &keySource{
		client: cfg.HTTPClient, issuerURL: cfg.OIDCIssuerURL, jwksURL: cfg.JWKSURL,
		refreshGap: cmp.Or(cfg.JWKSRefresh, DefaultJWKSRefresh),
		minGap:     cmp.Or(cfg.JWKSMinRefresh, DefaultJWKSMinRefresh),
		now:        func() time.Time { return a.now() }, log: cfg.Logger,
	}
	if src.client == nil {
		src.client = &http.Client{Timeout: fetchTimeout}
	}
	if src.log == nil {
		src.log = slog.New(slog.DiscardHandler)
	}
	return src, nil
}

// Run keeps the JWKS keys fresh until ctx is done: it fetches them at once,
// retries a failing provider with backoff and refreshes them periodically.
// Without a JWKS it returns at once. Tokens are refused until the first
// fetch succeeds; after that the cached keys stay in use through any
// provider outage.
func (a *Authenticator) Run(ctx context.Context) error {
	if a == nil || a.jwks == nil {
		return nil
	}
	return a.jwks.run(ctx)
}

// Enabled reports whether requests must authenticate.
func (a *Authenticator) Enabled() bool {
	return a != nil && (a.tokenHash != nil || a.parser != nil)
}

// Authenticate checks r's credentials: "Authorization: Bearer <t>", else
// the "Sec-WebSocket-Protocol: bearer, <t>" idiom, else "?token=<t>". A
// static token is compared in constant time; any other token must be a JWT
// that verifies with a configured key of its algorithm, with a valid exp
// (nbf honoured) and the configured iss and aud. Errors wrap
// ErrUnauthorized. When auth is off it succeeds with an unrestricted
// Identity (still echoing the bearer subprotocol if offered).
func (a *Authenticator) Authenticate(r *http.Request) (Identity, error) {
	token, proto := credentials(r)
	id, err := a.VerifyToken(r.Context(), token)
	if err != nil {
		return Identity{}, err
	}
	id.Subprotocol = proto
	return id, nil
}

// VerifyToken checks a bare token exactly as Authenticate checks the
// upgrade's (a WebSocket refresh frame uses it). The Identity has no
// Subprotocol.
func (a *Authenticator) VerifyToken(ctx context.Context, token string) (Identity, error) {
	if !a.Enabled() {
		return Identity{}, nil
	}
	switch {
	case token == "":
		return Identity{}, fmt.Errorf("%w: no credentials", ErrUnauthorized)
	case len(token) > MaxTokenBytes:
		return Identity{}, fmt.Errorf("%w: token longer than %d bytes", ErrUnauthorized, MaxTokenBytes)
	}
	if a.tokenHash != nil && tokenEqual(token, a.tokenHash) {
		return Identity{}, nil
	}
	return a.verifyJWT(ctx, token)
}

// tokenEqual compares the hashes, so that the time taken depends neither
// on where the token differs nor on its length.
func tokenEqual(token string, want *[sha256.Size]byte) bool {
	got := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// verifyJWT checks a JWT and returns its tenant and expiry.
func (a *Authenticator) verifyJWT(ctx context.Context, token string) (Identity, error) {
	if a.parser == nil {
		return Identity{}, fmt.Errorf("%w: wrong token", ErrUnauthorized)
	}
	claims := jwt.MapClaims{}
	keyFunc := func(t *jwt.Token) (any, error) { return a.key(ctx, t) }
	if _, err := a.parser.ParseWithClaims(token, claims, keyFunc); err != nil {
		return Identity{}, fmt.Errorf("%w: jwt: %w", ErrUnauthorized, err)
	}
	var id Identity
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil { // required: the parser checked it
		id.Expires = exp.Add(a.leeway)
	}
	if a.tenantClaim == "" {
		return id, nil
	}
	id.Tenant, _ = claims[a.tenantClaim].(string)
	if id.Tenant == "" {
		return Identity{}, fmt.Errorf("%w: jwt: claim %q missing, empty or not a string", ErrUnauthorized, a.tenantClaim)
	}
	return id, nil
}

// key returns the keys that may verify t. The parser already refused
// algorithms outside the configured set (alg "none" is never in it); here
// an HMAC algorithm gets only the secret and any other only public keys
// whose type allows it (see verifyKey), so no key serves another
// algorithm family. URLs in the header (jku, x5u) are never followed.
func (a *Authenticator) key(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if _, ok := t.Header["crit"]; ok {
		return nil, errors.New("critical header extensions are not supported")
	}
	if _, ok := t.Method.(*jwt.SigningMethodHMAC); ok {
		if a.secret == nil || !slices.Contains(hmacAlgs, alg) {
			return nil, fmt.Errorf("algorithm %q not accepted", alg)
		}
		return a.secret, nil
	}
	var set jwt.VerificationKeySet
	if a.static != nil && a.static.allows(alg) {
		set.Keys = append(set.Keys, a.static.key)
	}
	var jwksErr error
	if a.jwks != nil {
		kid, _ := t.Header["kid"].(string)
		keys, err := a.jwks.keysFor(ctx, kid, alg)
		for _, k := range keys {
			set.Keys = append(set.Keys, k.key)
		}
		jwksErr = err
	}
	switch len(set.Keys) {
	case 0:
		return nil, cmp.Or(jwksErr, fmt.Errorf("algorithm %q not accepted", alg))
	case 1:
		return set.Keys[0], nil
	}
	return set, nil
}

// credentials returns the token r offers (header, subprotocol idiom, query,
// in that order) and the subprotocol the upgrade must select.
func credentials(r *http.Request) (token, subprotocol string) {
	protoToken, offered := protocolToken(r.Header.Values("Sec-WebSocket-Protocol"))
	if offered {
		subprotocol = BearerProtocol
	}
	if t, ok := bearerHeader(r.Header.Get("Authorization")); ok {
		return t, subprotocol
	}
	if protoToken != "" {
		return protoToken, subprotocol
	}
	return r.URL.Query().Get("token"), subprotocol
}

// bearerHeader reads "Bearer <token>" (scheme case-insensitive).
func bearerHeader(h string) (string, bool) {
	scheme, t, ok := strings.Cut(strings.TrimSpace(h), " ")
	t = strings.TrimSpace(t)
	return t, ok && strings.EqualFold(scheme, "Bearer") && t != ""
}

// protocolToken reads the browser idiom: offered reports that "bearer" is
// among the offered subprotocols of a well-formed list (one the upgrader
// parses too); token is the entry right after it.
func protocolToken(values []string) (token string, offered bool) {
	var list []string
	for _, v := range values {
		for p := range strings.SplitSeq(v, ",") {
			p = strings.TrimSpace(p)
			if !isToken(p) {
				return "", false
			}
			list = append(list, p)
		}
	}
	i := slices.Index(list, BearerProtocol)
	if i < 0 {
		return "", false
	}
	if i+1 < len(list) {
		token = list[i+1]
	}
	return token, true
}

// isToken reports whether s is an RFC 9110 token (what a subprotocol is).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alnum && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}
