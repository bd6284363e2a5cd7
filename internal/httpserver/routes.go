package httpserver

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxJSONBody bounds request bodies of the JSON API.
const maxJSONBody = 64 << 10

// routes is the explicit mux of docs/PROTOCOL.md §5 on the public listener. With an
// internal listener, the probes, /metrics and the admin API answer 404
// here: client traffic must not reach them.
func (s *Server) routes(ui http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", s.serveWS)
	mux.HandleFunc("GET /health", s.serveHealth)
	mux.HandleFunc("GET /version", s.serveVersion)
	mux.HandleFunc("GET /api/expected-schema", s.listSchemas)
	mux.HandleFunc("GET /api/expected-schema/{graph_name}", s.getSchema)
	mux.HandleFunc("PUT /api/expected-schema/{graph_name}", s.putSchema)
	mux.HandleFunc("DELETE /api/expected-schema/{graph_name}", s.deleteSchema)
	mux.HandleFunc("GET /api/threads", s.listThreads)
	mux.HandleFunc("GET /api/threads/{thread_id}/records", s.threadRecords)
	if s.cfg.Internal {
		for _, p := range []string{"/healthz", "/readyz", "/metrics", "/api/admin/"} {
			mux.HandleFunc(p, servedInternally)
		}
	} else {
		s.operatorRoutes(mux)
	}
	mux.Handle("/", fallback(ui))
	return mux
}

// internalRoutes is the mux of the internal listener (INTERNAL_ADDR).
func (s *Server) internalRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.serveHealth)
	mux.HandleFunc("GET /version", s.serveVersion)
	s.operatorRoutes(mux)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint on the internal listener")
	})
	return mux
}

// operatorRoutes are the probes, /metrics and the admin API.
func (s *Server) operatorRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", s.serveHealthz)
	mux.HandleFunc("GET /readyz", s.serveReadyz)
	mux.Handle("GET /metrics", s.metricsHandler())
	mux.HandleFunc("POST /api/admin/replay/clear", s.clearReplay)
	mux.HandleFunc("POST /api/admin/partitions/{partition}/resume", s.resumePartition)
}

// servedInternally answers operator routes on the public listener when the
// internal listener serves them.
func servedInternally(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusNotFound, "served on the internal listener (INTERNAL_ADDR)")
}

// fallback serves what no route above matched: JSON 404 under /api/, the UI
// for GET and HEAD, 405 otherwise. (A method-less pattern is needed because
// "GET /" would conflict with the method-less "/api/".)
func fallback(ui http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/api/"):
			writeError(w, http.StatusNotFound, "no such API endpoint or method")
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method not allowed")
		default:
			ui.ServeHTTP(w, r)
		}
	})
}

func (s *Server) metricsHandler() http.Handler {
	if s.deps.Gatherer == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(s.deps.Gatherer, promhttp.HandlerOpts{
		ErrorLog:            promLogger{s},
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// promLogger adapts promhttp's logger to slog.
type promLogger struct{ s *Server }

func (l promLogger) Println(v ...any) { l.s.log.Warn("metrics scrape", "err", v) }

// withDeadlines bounds reading and writing of every request but those under
// exempt (an exact path, or a prefix when it ends in "/"): /ws, whose
// connection lives on after the handshake, and the internal listener's
// /debug/pprof/, whose profiles run as long as asked.
func (s *Server) withDeadlines(next http.Handler, exempt string) http.Handler {
	matches := func(p string) bool {
		if strings.HasSuffix(exempt, "/") {
			return strings.HasPrefix(p, exempt)
		}
		return p == exempt
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if matches(r.URL.Path) {
			// A kept-alive connection may carry an earlier request's deadline.
			_ = rc.SetReadDeadline(time.Time{})
			_ = rc.SetWriteDeadline(time.Time{})
		} else {
			deadline := time.Now().Add(s.cfg.RequestTimeout)
			_ = rc.SetReadDeadline(deadline)
			_ = rc.SetWriteDeadline(deadline)
		}
		next.ServeHTTP(w, r)
	})
}

// writeJSON writes v with status code; encoding errors only mean the client
// went away.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes {"error": msg}.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
