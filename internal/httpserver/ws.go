package httpserver

import (
	"errors"
	"net/http"

	"github.com/dashflow/dashstream-gateway/internal/limits"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
)

// serveWS admits a WebSocket request (shutdown, origin, authentication,
// per-IP limits) and hands it to Deps.WS with the client's limits.Identity
// in the request context. A refused request is never upgraded and takes no
// per-IP slot; the slot is released on every exit path of the handler,
// panics included, unless the WebSocket handler took it over
// (limits.TakeSlot) to release it when its connection ends.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.status().ShuttingDown {
		s.reject(w, r, http.StatusServiceUnavailable, metrics.RejectShutdown, "server is shutting down")
		return
	}
	if !limits.OriginAllowed(r, s.deps.AllowedOrigins, onLoopbackBind(r)) {
		s.reject(w, r, http.StatusForbidden, metrics.RejectOrigin, "origin not allowed")
		return
	}
	id, err := s.deps.Auth.Authenticate(r)
	if err != nil {
		s.log.Debug("websocket authentication failed", "err", err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="dashstream"`)
		s.reject(w, r, http.StatusUnauthorized, metrics.RejectAuth, "missing or invalid credentials")
		return
	}
	r = r.WithContext(limits.WithIdentity(r.Context(), id))
	release, err := s.acquire(r)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		s.reject(w, r, http.StatusTooManyRequests, rejectReason(err), err.Error())
		return
	}
	slot := limits.NewSlot(release)
	defer func() {
		if !slot.Taken() { // a session that outlives this handler releases it itself
			slot.Release()
		}
	}()
	if s.deps.WS == nil {
		writeError(w, http.StatusServiceUnavailable, "websocket not available")
		return
	}
	s.deps.WS.ServeHTTP(w, r.WithContext(limits.WithSlot(r.Context(), slot)))
}

// acquire takes a per-IP slot; without a limiter it always succeeds.
func (s *Server) acquire(r *http.Request) (func(), error) {
	if s.deps.Limiter == nil {
		return func() {}, nil
	}
	return s.deps.Limiter.Acquire(limits.ClientIP(r, s.deps.Trusted))
}

func rejectReason(err error) string {
	if errors.Is(err, limits.ErrRateLimited) {
		return metrics.RejectRateLimit
	}
	return metrics.RejectIPLimit
}

// reject answers a refused WebSocket request and counts it.
func (s *Server) reject(w http.ResponseWriter, r *http.Request, code int, reason, msg string) {
	if s.deps.Metrics != nil {
		s.deps.Metrics.Rejected(reason)
	}
	s.log.Debug("websocket rejected", "reason", reason,
		"client_ip", limits.ClientIP(r, s.deps.Trusted).String())
	writeJSON(w, code, map[string]string{"error": msg, "reason": reason})
}
