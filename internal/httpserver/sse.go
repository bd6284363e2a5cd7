package httpserver

import "net/http"

// serveSSE admits a GET /sse request as serveWS admits a WebSocket
// (Server.admit, docs/PROTOCOL.md §3.9, §7): shutdown, origin, authentication (bearer
// header or ?token=), the global session cap and the per-IP limits, each
// refusal a JSON error before any event. An SSE stream is a session like a
// WebSocket: it holds a session place and its per-IP slot until it ends,
// which is when Deps.SSE returns (the handler goroutine carries the
// stream).
func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request) {
	id, release, ok := s.admit(w, r, "sse")
	if !ok {
		return
	}
	defer release()
	if s.deps.SSE == nil {
		writeError(w, http.StatusServiceUnavailable, "server-sent events not available")
		return
	}
	s.deps.SSE.ServeSSE(w, r, id)
}
