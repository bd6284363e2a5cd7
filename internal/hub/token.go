package hub

import (
	"context"
	"time"

	"github.com/gobwas/ws"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// TokenVerifier checks the token of a refresh frame exactly as the upgrade's
// was checked (auth.Authenticator).
type TokenVerifier interface {
	VerifyToken(ctx context.Context, token string) (auth.Identity, error)
}

// refreshTimeout bounds the verification of a refresh token (a JWKS key
// fetch for a new kid): the writer delivers nothing meanwhile.
const refreshTimeout = 2 * time.Second

// setExpiry records when the session's credentials expire; the zero time
// means never.
func (s *session) setExpiry(t time.Time) {
	var n int64
	if !t.IsZero() {
		n = t.UnixNano()
	}
	s.expires.Store(n)
}

// expiredAt reports whether the credentials have expired at now.
func (s *session) expiredAt(now time.Time) bool {
	n := s.expires.Load()
	return n != 0 && now.UnixNano() >= n
}

// markExpired is the pinger's part of the expiry check, at every idle sweep:
// an expired session is woken (a parked one gets a writer) to close itself.
// No timer per session and no work per record.
func (s *session) markExpired(now time.Time) {
	if s.expiredAt(now) && !s.expireDue.Swap(true) {
		s.wake()
	}
}

// checkExpiry closes a session the pinger found expired, unless a refresh
// extended it since: error TOKEN_EXPIRED, then close 1008
// (docs/PROTOCOL.md §3.8).
func (s *session) checkExpiry() *closeReason {
	if !s.expireDue.Load() { // the common case: one atomic load per writer loop
		return nil
	}
	s.expireDue.Store(false)
	if !s.expiredAt(time.Now()) {
		return nil
	}
	return &closeReason{code: ws.StatusPolicyViolation, reason: "token expired",
		frames: [][]byte{wsproto.Frame(wsproto.NewError(wsproto.CodeTokenExpired,
			"the connection's token expired; reconnect with a new token and resume from your cursor"))}}
}

// refresh replaces the session's credentials (docs/PROTOCOL.md §3.8). A
// token that does not verify changes nothing: error TOKEN_INVALID, and the
// current credentials stay until they expire. A token of another tenant
// (or an unrestricted one on a tenant's connection) would change what the
// connection may read: error TOKEN_TENANT_MISMATCH and close 1008.
func (s *session) refresh(ctx context.Context, token string) *closeReason {
	v := s.h.cfg.Tokens
	if v == nil {
		return s.write(wsproto.Frame(wsproto.NewError(wsproto.CodeTokenInvalid, "token refresh is not available")))
	}
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	id, err := v.VerifyToken(ctx, token)
	cancel()
	if err != nil {
		s.h.log.Debug("refresh token refused", "err", err)
		return s.write(wsproto.Frame(wsproto.NewError(wsproto.CodeTokenInvalid,
			"refresh token refused; the current credentials stay in force until they expire")))
	}
	if id.Tenant != s.d.tenant {
		return &closeReason{code: ws.StatusPolicyViolation, reason: "token tenant mismatch",
			frames: [][]byte{wsproto.Frame(wsproto.NewError(wsproto.CodeTokenTenantMismatch,
				"a refresh cannot change the connection's tenant; reconnect with the new token"))}}
	}
	s.setExpiry(id.Expires)
	rc := wsproto.RefreshComplete{Type: wsproto.TypeRefreshComplete}
	if !id.Expires.IsZero() {
		rc.ExpiresAt = id.Expires.UTC().Format(time.RFC3339)
	}
	return s.write(wsproto.Frame(rc))
}
