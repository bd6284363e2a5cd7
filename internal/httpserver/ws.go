package httpserver

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/limits"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
)

// serveWS admits a WebSocket request (see admit) and hands it to Deps.WS
// with the client's auth.Identity. A refused request is never upgraded and
// holds neither a session place nor a per-IP slot; both are one
// limits.Slot, released on every exit path of the handler, panics
// included, unless the WebSocket handler took it over (Slot.Take) to
// release it when its connection ends.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	id, release, ok := s.admit(w, r, "websocket")
	if !ok {
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
	s.deps.WS.ServeWS(w, r, id, slot)
}

// admit is the admission both /ws and /sse pass (docs/PROTOCOL.md §7):
// shutdown, origin, authentication, the global session cap and the per-IP
// limits, in that order. A refusal is written as a JSON error and ok is
// false; otherwise the caller owns release, which frees the session place
// and the per-IP slot. kind names the transport
// ("websocket" or "sse") in the debug log.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, kind string) (id auth.Identity, release func(), ok bool) {
	if s.status().ShuttingDown {
		s.reject(w, r, http.StatusServiceUnavailable, metrics.RejectShutdown, "server is shutting down")
		return id, nil, false
	}
	if !limits.OriginAllowed(r, s.deps.AllowedOrigins, onLoopbackBind(r)) {
		s.reject(w, r, http.StatusForbidden, metrics.RejectOrigin, "origin not allowed")
		return id, nil, false
	}
	id, err := s.deps.Auth.Authenticate(r)
	if err != nil {
		s.log.Debug("authentication failed", "transport", kind, "err", err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="dashstream"`)
		s.reject(w, r, http.StatusUnauthorized, metrics.RejectAuth, "missing or invalid credentials")
		return id, nil, false
	}
	release, err = s.acquire(r)
	if err != nil {
		code, reason, retryAfter := rejection(err)
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		s.reject(w, r, code, reason, err.Error())
		return id, nil, false
	}
	return id, release, true
}

// acquire takes a session place, then a per-IP slot (so a full gateway
// spends no client's rate tokens); the release function frees both.
func (s *Server) acquire(r *http.Request) (func(), error) {
	releaseSession, err := s.sessions.Acquire()
	if err != nil || s.deps.Limiter == nil {
		return releaseSession, err
	}
	releaseIP, err := s.deps.Limiter.Acquire(limits.ClientIP(r, s.deps.Trusted))
	if err != nil {
		releaseSession()
		return nil, err
	}
	return func() { releaseIP(); releaseSession() }, nil
}

// rejection maps an admission error to its status, metric reason and
// Retry-After seconds.
func rejection(err error) (code int, reason string, retryAfter int) {
	switch {
	case errors.Is(err, limits.ErrServerFull):
		return http.StatusServiceUnavailable, metrics.RejectMaxConnections, retryAfterFull
	case errors.Is(err, limits.ErrRateLimited):
		return http.StatusTooManyRequests, metrics.RejectRateLimit, 1
	}
	return http.StatusTooManyRequests, metrics.RejectIPLimit, 1
}

// reject answers a refused WebSocket request, closes its connection (a
// WebSocket client does not reuse it, and its descriptor is wanted back)
// and counts it.
func (s *Server) reject(w http.ResponseWriter, r *http.Request, code int, reason, msg string) {
	if s.deps.Metrics != nil {
		s.deps.Metrics.Rejected(reason)
	}
	w.Header().Set("Connection", "close")
	s.log.Debug("websocket rejected", "reason", reason,
		"client_ip", limits.ClientIP(r, s.deps.Trusted).String())
	writeJSON(w, code, map[string]string{"error": msg, "reason": reason})
}
