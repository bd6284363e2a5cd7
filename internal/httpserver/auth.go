package httpserver

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// bearerStatus checks "Authorization: Bearer <token>" against token in
// constant time: 0 when it matches, 401 when the header is missing or
// malformed, 403 when the token is wrong.
func bearerStatus(r *http.Request, token string) int {
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(got) == "" {
		return http.StatusUnauthorized
	}
	// Hashing first makes the comparison independent of the lengths.
	a, b := sha256.Sum256([]byte(strings.TrimSpace(got))), sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		return http.StatusForbidden
	}
	return 0
}

// authorize answers and returns false unless r carries the admin token.
// required refuses with 403 when no token is configured; otherwise an
// unconfigured token lets everyone through.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, required bool) bool {
	token := s.deps.AdminToken
	if token == "" {
		if required {
			writeError(w, http.StatusForbidden, "admin endpoints are disabled: set ADMIN_TOKEN")
		}
		return !required
	}
	switch code := bearerStatus(r, token); code {
	case 0:
		return true
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="dashstream"`)
		writeError(w, code, "missing bearer token")
	default:
		writeError(w, code, "invalid bearer token")
	}
	return false
}
