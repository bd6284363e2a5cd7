package httpserver

import (
	"context"
	"net"
	"net/http"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/limits"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
)

// bindKey carries, in every request's context, whether the listener that
// accepted the request is bound to a loopback address.
type bindKey struct{}

// listenerContext is the http.Server's BaseContext: it records the bind of
// the listener being served, so the loopback rules follow each listener
// (a server serving several listeners applies them per listener).
func listenerContext(ln net.Listener) context.Context {
	return context.WithValue(context.Background(), bindKey{}, limits.IsLoopbackAddr(ln.Addr()))
}

// onLoopbackBind reports whether r arrived on a loopback listener. Requests
// that did not come through ListenAndServe (Handler used directly) count as
// non-loopback.
func onLoopbackBind(r *http.Request) bool {
	v, _ := r.Context().Value(bindKey{}).(bool)
	return v
}

// withLoopbackHost refuses, on a loopback bind, every request whose Host is
// not a loopback host (403): a page whose DNS name was rebound to 127.0.0.1
// must not read /health, /api or the UI, nor open /ws (docs/PROTOCOL.md §7).
func (s *Server) withLoopbackHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !limits.HostAllowed(r, onLoopbackBind(r)) {
			// A refused /ws counts as an origin rejection: DNS rebinding is
			// a cross-origin attack that passed the Origin check.
			if r.URL.Path == "/ws" && s.deps.Metrics != nil {
				s.deps.Metrics.Rejected(metrics.RejectOrigin)
			}
			s.log.Debug("request refused: host is not loopback on a loopback bind",
				"host", dashstream.TruncateID(r.Host, dashstream.LogIDMax),
				"path", dashstream.TruncateID(r.URL.Path, dashstream.LogIDMax))
			writeJSON(w, http.StatusForbidden, map[string]string{
				"error": "host not allowed: this server only answers to localhost", "reason": "host"})
			return
		}
		next.ServeHTTP(w, r)
	})
}
