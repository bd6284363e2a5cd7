package limits

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
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

	clockLeeway     = 10 * time.Second // tolerated clock skew on exp and nbf
	maxKeyFileBytes = 64 << 10
	minRSABits      = 2048
)

// AuthConfig configures client authentication. The zero value turns it off.
type AuthConfig struct {
	// Token is a static bearer token (WEBSOCKET_AUTH_TOKEN). It grants an
	// unrestricted stream (no tenant). Empty: no static token.
	Token string
	// JWTSecret is the HS256 key of client JWTs. Empty: HS256 refused.
	JWTSecret string
	// JWTPublicKeyFile is a PEM file with the RS256 public key (PKIX,
	// PKCS#1 or a certificate, at least 2048 bits). Empty: RS256 refused.
	JWTPublicKeyFile string
	// TenantClaim names the JWT claim that restricts a client to one
	// tenant's records; a JWT without it (or with a non-string or empty
	// value) is refused. Empty: JWT clients are unrestricted.
	TenantClaim string
}

// Identity is what authentication established about a client.
type Identity struct {
	// Tenant restricts the client to records of this tenant. Empty:
	// unrestricted.
	Tenant string
	// Subprotocol is the one the upgrade must select (BearerProtocol when
	// the client offered the token idiom). Empty: none.
	Subprotocol string
}

// Authenticator checks the credentials of WebSocket requests. A nil or
// disabled Authenticator lets every request through, unrestricted.
type Authenticator struct {
	tokenHash   *[sha256.Size]byte // of AuthConfig.Token; nil: none
	secret      []byte             // HS256 key; nil: none
	pub         *rsa.PublicKey     // RS256 key; nil: none
	tenantClaim string
	parser      *jwt.Parser // nil without a JWT key
	now         func() time.Time
}

// NewAuthenticator validates cfg and loads the RS256 public key.
func NewAuthenticator(cfg AuthConfig) (*Authenticator, error) {
	a := &Authenticator{tenantClaim: cfg.TenantClaim, now: time.Now}
	if cfg.Token != "" {
		h := sha256.Sum256([]byte(cfg.Token))
		a.tokenHash = &h
	}
	var methods []string
	if cfg.JWTSecret != "" {
		a.secret = []byte(cfg.JWTSecret)
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if cfg.JWTPublicKeyFile != "" {
		pub, err := loadRSAKey(cfg.JWTPublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("limits: jwt public key %s: %w", cfg.JWTPublicKeyFile, err)
		}
		a.pub = pub
		methods = append(methods, jwt.SigningMethodRS256.Alg())
	}
	if cfg.TenantClaim != "" && methods == nil {
		return nil, errors.New("limits: a tenant claim needs a JWT secret or public key")
	}
	if methods != nil {
		a.parser = jwt.NewParser(jwt.WithValidMethods(methods), jwt.WithExpirationRequired(),
			jwt.WithLeeway(clockLeeway), jwt.WithTimeFunc(func() time.Time { return a.now() }))
	}
	return a, nil
}

// loadRSAKey reads a bounded PEM file holding an RSA public key.
func loadRSAKey(path string) (*rsa.PublicKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxKeyFileBytes)
	}
	pub, err := jwt.ParseRSAPublicKeyFromPEM(data)
	if err != nil {
		return nil, err
	}
	if pub.N.BitLen() < minRSABits {
		return nil, fmt.Errorf("RSA key of %d bits, need at least %d", pub.N.BitLen(), minRSABits)
	}
	return pub, nil
}

// Enabled reports whether requests must authenticate.
func (a *Authenticator) Enabled() bool {
	return a != nil && (a.tokenHash != nil || a.parser != nil)
}

// Authenticate checks r's credentials: "Authorization: Bearer <t>", else
// the "Sec-WebSocket-Protocol: bearer, <t>" idiom, else "?token=<t>". A
// static token is compared in constant time; any other token must be a JWT
// signed HS256 or RS256 with the configured key, with a valid exp (nbf
// honoured). Errors wrap ErrUnauthorized. When auth is off it succeeds with
// an unrestricted Identity (still echoing the bearer subprotocol if offered).
func (a *Authenticator) Authenticate(r *http.Request) (Identity, error) {
	token, proto := credentials(r)
	id := Identity{Subprotocol: proto}
	if !a.Enabled() {
		return id, nil
	}
	switch {
	case token == "":
		return Identity{}, fmt.Errorf("%w: no credentials", ErrUnauthorized)
	case len(token) > MaxTokenBytes:
		return Identity{}, fmt.Errorf("%w: token longer than %d bytes", ErrUnauthorized, MaxTokenBytes)
	}
	if a.tokenHash != nil && tokenEqual(token, a.tokenHash) {
		return id, nil
	}
	tenant, err := a.verifyJWT(token)
	if err != nil {
		return Identity{}, err
	}
	id.Tenant = tenant
	return id, nil
}

// tokenEqual compares the hashes, so that the time taken depends neither
// on where the token differs nor on its length.
func tokenEqual(token string, want *[sha256.Size]byte) bool {
	got := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// verifyJWT checks a JWT and returns its tenant.
func (a *Authenticator) verifyJWT(token string) (string, error) {
	if a.parser == nil {
		return "", fmt.Errorf("%w: wrong token", ErrUnauthorized)
	}
	claims := jwt.MapClaims{}
	if _, err := a.parser.ParseWithClaims(token, claims, a.key); err != nil {
		return "", fmt.Errorf("%w: jwt: %w", ErrUnauthorized, err)
	}
	if a.tenantClaim == "" {
		return "", nil
	}
	tenant, _ := claims[a.tenantClaim].(string)
	if tenant == "" {
		return "", fmt.Errorf("%w: jwt: claim %q missing, empty or not a string", ErrUnauthorized, a.tenantClaim)
	}
	return tenant, nil
}

// key picks the verification key by algorithm; the method's type is checked
// too, so that an RSA key can never serve as an HMAC secret.
func (a *Authenticator) key(t *jwt.Token) (any, error) {
	switch m := t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if m.Alg() == jwt.SigningMethodHS256.Alg() && a.secret != nil {
			return a.secret, nil
		}
	case *jwt.SigningMethodRSA:
		if m.Alg() == jwt.SigningMethodRS256.Alg() && a.pub != nil {
			return a.pub, nil
		}
	}
	return nil, fmt.Errorf("algorithm %q not accepted", t.Method.Alg())
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

type identityKey struct{}

// WithIdentity returns ctx carrying id (from the admission check to the
// WebSocket handler).
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the Identity stored by WithIdentity; ok is false
// when there is none (then the zero Identity: unrestricted, no subprotocol).
func IdentityFrom(ctx context.Context) (id Identity, ok bool) {
	id, ok = ctx.Value(identityKey{}).(Identity)
	return id, ok
}
