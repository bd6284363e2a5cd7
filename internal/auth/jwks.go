package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"

	"github.com/dashflow/dashstream-gateway/internal/limits"
)

const (
	// DefaultJWKSRefresh is how often the key set is fetched again while the
	// provider answers.
	DefaultJWKSRefresh = 15 * time.Minute
	// DefaultJWKSMinRefresh bounds fetches caused by tokens: an unknown kid
	// (or no keys yet) fetches at most once per interval, so random kids
	// cannot turn clients into a flood against the provider.
	DefaultJWKSMinRefresh = 10 * time.Second

	fetchTimeout   = 10 * time.Second
	maxFetchBytes  = 1 << 20
	retryFirst     = time.Second
	discoveryPath  = "/.well-known/openid-configuration"
	maxLoggedKeyID = 8
)

var errRefreshTooSoon = errors.New("key refresh rate-limited")

// keySource holds the signing keys of a JWKS endpoint, found directly or
// through OIDC discovery, and refreshes them. It keeps the last good set
// through any provider failure: a fetch replaces the keys only when it
// succeeds with at least one usable key. Safe for concurrent use.
type keySource struct {
	client     *http.Client
	issuerURL  string // OIDC issuer to discover; empty: jwksURL is configured
	refreshGap time.Duration
	minGap     time.Duration
	now        func() time.Time
	log        *slog.Logger

	mu       sync.Mutex
	jwksURL  string        // configured or discovered; empty until discovered
	keys     []verifyKey   // last good set; nil until the first success
	lastTry  time.Time     // start of the last fetch, for minGap
	inflight chan struct{} // closed when the running fetch ends; nil: none
	lastErr  error         // of the last finished fetch
}

// keysFor returns the cached keys that may verify a token with this kid and
// alg (every key of the alg when kid is empty). When none match it fetches
// the set again, at most once per minGap over all callers, and looks again.
func (s *keySource) keysFor(ctx context.Context, kid, alg string) ([]verifyKey, error) {
	if keys := s.lookup(kid, alg); len(keys) > 0 {
		return keys, nil
	}
	err := s.refresh(ctx, false)
	// Look again even when refresh refused: a fetch that ended between the
	// first look and the refresh may have brought the key.
	if keys := s.lookup(kid, alg); len(keys) > 0 {
		return keys, nil
	}
	if err != nil {
		return nil, fmt.Errorf("no key for kid %q alg %s: %w", kid, alg, err)
	}
	return nil, fmt.Errorf("no key for kid %q alg %s", kid, alg)
}

func (s *keySource) lookup(kid, alg string) []verifyKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []verifyKey
	for _, k := range s.keys {
		if (kid == "" || k.kid == kid) && k.allows(alg) {
			out = append(out, k)
		}
	}
	return out
}

// count is the number of cached keys.
func (s *keySource) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

// refresh fetches the set once. A caller arriving during a fetch waits for
// it instead of starting another; without force, a fetch started less than
// minGap ago makes it return errRefreshTooSoon.
func (s *keySource) refresh(ctx context.Context, force bool) error {
	s.mu.Lock()
	if ch := s.inflight; ch != nil {
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.lastErr
	}
	now := s.now()
	if !force && !s.lastTry.IsZero() && now.Sub(s.lastTry) < s.minGap {
		s.mu.Unlock()
		return errRefreshTooSoon
	}
	s.lastTry = now
	ch := make(chan struct{})
	s.inflight = ch
	s.mu.Unlock()

	err := s.fetch(ctx)

	s.mu.Lock()
	s.lastErr, s.inflight = err, nil
	s.mu.Unlock()
	close(ch)
	return err
}

// fetch discovers the JWKS URL if needed, then loads the key set.
func (s *keySource) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	s.mu.Lock()
	jwksURL := s.jwksURL
	s.mu.Unlock()
	if jwksURL == "" {
		u, err := s.discover(ctx)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.jwksURL, jwksURL = u, u
		s.mu.Unlock()
		s.log.Info("oidc discovery done", "issuer", s.issuerURL, "jwks_uri", u)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := s.getJSON(ctx, jwksURL, &set); err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	keys, skipped := parseJWKS(set.Keys)
	if len(keys) == 0 {
		return fmt.Errorf("jwks %s: no usable signature key (%d skipped)", jwksURL, skipped)
	}
	s.mu.Lock()
	changed := !sameKeyIDs(s.keys, keys)
	s.keys = keys
	s.mu.Unlock()
	if changed {
		s.log.Info("jwks keys loaded", "url", jwksURL, "keys", len(keys), "skipped", skipped, "kids", keyIDs(keys))
	}
	return nil
}

// discover reads the issuer's OIDC discovery document. Its issuer must be
// the configured one exactly (OpenID Connect Discovery §4.3), else a
// document from elsewhere could vouch for foreign keys.
func (s *keySource) discover(ctx context.Context) (string, error) {
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := s.getJSON(ctx, strings.TrimSuffix(s.issuerURL, "/")+discoveryPath, &doc); err != nil {
		return "", fmt.Errorf("oidc discovery: %w", err)
	}
	if doc.Issuer != s.issuerURL {
		return "", fmt.Errorf("oidc discovery: document issuer %q is not %q", doc.Issuer, s.issuerURL)
	}
	if err := CheckProviderURL(doc.JWKSURI); err != nil {
		return "", fmt.Errorf("oidc discovery: jwks_uri: %w", err)
	}
	return doc.JWKSURI, nil
}

// getJSON GETs u and decodes a bounded JSON body into v.
func (s *keySource) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchBytes+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxFetchBytes {
		return fmt.Errorf("GET %s: body larger than %d bytes", u, maxFetchBytes)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// run fetches the set at once, retries failures with backoff (1 s doubling
// up to the refresh interval) and refreshes it every refresh interval, until
// ctx is done. Failures are logged here; the cached keys stay in use.
func (s *keySource) run(ctx context.Context) error {
	backoff := retryFirst
	for {
		wait := s.refreshGap
		if err := s.refresh(ctx, true); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			wait = min(backoff, s.refreshGap)
			backoff = min(2*backoff, s.refreshGap)
			if s.count() == 0 {
				s.log.Warn("jwks not loaded yet; tokens are refused until it is", "err", err, "retry_in", wait)
			} else {
				s.log.Warn("jwks refresh failed; cached keys stay in use", "err", err, "cached_keys", s.count(), "retry_in", wait)
			}
		} else {
			backoff = retryFirst
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// parseJWKS keeps the signature keys that jwkset accepts as valid public
// keys of a supported type and strength. A key naming its "alg" verifies
// only that algorithm, and only if it fits the key type. Symmetric ("oct")
// keys are never taken from a JWKS.
func parseJWKS(raw []json.RawMessage) (keys []verifyKey, skipped int) {
	for _, r := range raw {
		jwk, err := jwkset.NewJWKFromRawJSON(r, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			skipped++
			continue
		}
		m := jwk.Marshal()
		k, err := newVerifyKey(m.KID, jwk.Key())
		if err != nil || (m.USE != "" && m.USE != jwkset.UseSig) {
			skipped++
			continue
		}
		if alg := string(m.ALG); alg != "" {
			if !k.allows(alg) {
				skipped++
				continue
			}
			k.algs = []string{alg}
		}
		keys = append(keys, k)
	}
	return keys, skipped
}

func keyIDs(keys []verifyKey) []string {
	ids := make([]string, 0, min(len(keys), maxLoggedKeyID))
	for _, k := range keys[:min(len(keys), maxLoggedKeyID)] {
		ids = append(ids, k.kid)
	}
	return ids
}

func sameKeyIDs(a, b []verifyKey) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].kid != b[i].kid {
			return false
		}
	}
	return true
}

// CheckProviderURL accepts an absolute https URL, or an http one to a
// loopback host: keys fetched over plain HTTP from elsewhere could be
// swapped by anyone on the path.
func CheckProviderURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%q is not an absolute URL", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if limits.IsLoopbackHost(u.Host) {
			return nil
		}
		return fmt.Errorf("%q: plain http only to a loopback host; use https", s)
	}
	return fmt.Errorf("%q: scheme must be https", s)
}
