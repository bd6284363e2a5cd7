package httpserver

import (
	"net/http"
	"strconv"

	"github.com/dashflow/dashstream-gateway/internal/limits"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
)

// serveSSE admits a GET /sse request exactly as serveWS admits a WebSocket
// (docs/PROTOCOL.md §3.9, §7): shutdown, origin, authentication (bearer
// header or ?token=), the global session cap and the per-IP limits, each
// refusal a JSON error before any event. An SSE stream is a session like a
// WebSocket: it holds a session place and its per-IP slot until it ends,
// which is when Deps.SSE returns (the handler goroutine carries the
// stream).
func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request) {
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
		s.log.Debug("sse authentication failed", "err", err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="dashstream"`)
		s.reject(w, r, http.StatusUnauthorized, metrics.RejectAuth, "missing or invalid credentials")
		return
	}
	release, err := s.acquire(r)
	if err != nil {
		code, reason, retryAfter := rejection(err)
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		s.reject(w, r, code, reason, err.Error())
		return
	}
	defer release()
	if s.deps.SSE == nil {
		writeError(w, http.StatusServiceUnavailable, "server-sent events not available")
		return
	}
	s.deps.SSE.ServeSSE(w, r, id)
}
