// Package httpserver is the gateway's HTTP face: an http.Server with
// timeouts and an explicit mux for /ws (origin, authentication, per-IP and
// global admission in front of the WebSocket handler), /health, /healthz,
// /readyz, /version, /metrics, the pinned expected-schema API, the run index
// and thread history (/api/threads), the admin API and the web UI
// (docs/PROTOCOL.md §5). With an internal listener (INTERNAL_ADDR) the
// probes, /metrics, the admin API and /debug/pprof move to a second
// http.Server that client traffic cannot reach.
//
// Connections are admitted within a file-descriptor budget
// (limits.BudgetFor): live WebSocket sessions are capped (503 before the
// upgrade), and the public listener refuses connections beyond its share at
// once, so the process never runs into EMFILE, where accepting stalls and
// probes time out.
//
// It holds no gateway state of its own beyond the schema store: everything
// else comes from Deps callbacks. A Server is safe for concurrent use.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/limits"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
	"github.com/dashflow/dashstream-gateway/internal/rlimit"
)

// Config holds the HTTP settings. Zero durations take the defaults below.
type Config struct {
	// ReadHeaderTimeout bounds reading request headers. 0: 10 s.
	ReadHeaderTimeout time.Duration
	// RequestTimeout bounds reading and answering a non-WebSocket request.
	// 0: 30 s.
	RequestTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections. 0: 120 s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds request headers. 0: 64 KiB.
	MaxHeaderBytes int
	// TLSCertFile and TLSKeyFile serve HTTPS when both are set (the public
	// listener only; the internal one is plain HTTP).
	TLSCertFile string
	TLSKeyFile  string
	// MaxWebSockets bounds live WebSocket sessions
	// (WEBSOCKET_MAX_CONNECTIONS). 0: derived from FDLimit.
	MaxWebSockets int
	// FDLimit is the open-file limit the connection budget is derived from.
	// 0: the process's soft RLIMIT_NOFILE now (none on Windows).
	FDLimit int
	// Internal moves /healthz, /readyz, /metrics and /api/admin/* to the
	// internal listener and serves /debug/pprof there (INTERNAL_ADDR set);
	// Serve then needs that listener. False: one public listener.
	Internal bool
}

func (c *Config) setDefaults() {
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 120 * time.Second
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = 64 << 10
	}
	if c.FDLimit <= 0 {
		if lim, ok := rlimit.Current(); ok {
			c.FDLimit = int(min(lim.Soft, math.MaxInt32))
		}
	}
}

// WSHandler serves an admitted WebSocket request. id is what
// authentication established about the client; slot is its session place
// and per-IP slot, released when ServeWS returns unless the handler took
// it over (Slot.Take) to release it when its connection ends.
type WSHandler interface {
	ServeWS(w http.ResponseWriter, r *http.Request, id auth.Identity, slot *limits.Slot)
}

// WSHandlerFunc is a function serving as a WSHandler.
type WSHandlerFunc func(w http.ResponseWriter, r *http.Request, id auth.Identity, slot *limits.Slot)

// ServeWS calls f.
func (f WSHandlerFunc) ServeWS(w http.ResponseWriter, r *http.Request, id auth.Identity, slot *limits.Slot) {
	f(w, r, id, slot)
}

// Deps is what the server needs from the rest of the gateway. Nil optional
// fields disable what they serve (noted per field).
type Deps struct {
	Logger *slog.Logger // nil: discard
	// Gatherer is scraped by /metrics. Nil: /metrics answers 404.
	Gatherer prometheus.Gatherer
	// Metrics feeds /health and counts rejected connections. Nil: zeros.
	Metrics *metrics.Metrics
	// WS serves an admitted WebSocket request (it must not check the
	// origin again). Nil: /ws answers 503.
	WS WSHandler
	// Auth authenticates WebSocket requests (401 before any upgrade).
	// Nil: no authentication, every client unrestricted.
	Auth *auth.Authenticator
	// Limiter admits connections per client IP. Nil: no per-IP limits.
	Limiter *limits.ConnLimiter
	// Trusted proxies may set X-Forwarded-For. Nil: nobody.
	Trusted *limits.TrustedProxies
	// AllowedOrigins besides the same origin (and, on a loopback listener,
	// loopback origins); "*" allows every origin.
	AllowedOrigins []string
	// Status reports the gateway's state. Nil: starting, not reachable.
	Status func() Status
	// Version answers /version.
	Version func() VersionInfo
	// AdminToken guards the admin API and schema writes. Empty: admin API
	// refused (403), schema writes open.
	AdminToken string
	// ClearReplay empties the replay store. Nil: 501.
	ClearReplay func(ctx context.Context) error
	// ResumePartition resumes a paused partition. Nil: 501.
	ResumePartition func(ctx context.Context, partition int32) error
	// SchemasPath is the pinned-schema file (EXPECTED_SCHEMAS_PATH).
	SchemasPath string
	// UIDir serves a static build at / instead of UI.
	UIDir string
	// UI is the built-in web UI (package web). Nil and no UIDir: 404 at /.
	UI fs.FS
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Threads serves /api/threads and a thread's records (the replay
	// tiers). Nil: those routes answer 501.
	Threads Threads
	// Decoder decodes records for format=json on the thread routes, with
	// the consumer's payload cap. Nil: a decoder with the default cap.
	Decoder *dashstream.Decoder
}

// Server is the HTTP server of the gateway.
type Server struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	budget   limits.Budget
	sessions *limits.Gate // live WebSocket sessions
	decoder  *dashstream.Decoder
	// historyReads holds a token per thread-history request in progress.
	historyReads chan struct{}
	schemas      *SchemaStore
	uiRoot       *os.Root // open while UIDir is served
	handler      http.Handler
	srv          *http.Server
	internal     http.Handler // nil without Config.Internal
	isrv         *http.Server // nil without Config.Internal
	stopping     atomic.Bool  // set by BeginShutdown
	fullLog      atomic.Int64 // unix nanos of the last "listener full" warning
	public       atomic.Pointer[limits.Listener]
	noKeep       atomic.Bool // keep-alives off while the public listener is (nearly) full
}

// New builds the server and its routes. It loads the schema store (a
// corrupt file is moved aside and logged) and opens UIDir.
func New(cfg Config, deps Deps) (*Server, error) {
	cfg.setDefaults()
	s := &Server{cfg: cfg, deps: deps, log: deps.Logger, decoder: deps.Decoder,
		historyReads: make(chan struct{}, maxHistoryReads)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.decoder == nil {
		s.decoder = defaultDecoder()
	}
	if s.deps.Now == nil {
		s.deps.Now = time.Now
	}
	schemas, err := OpenSchemaStore(deps.SchemasPath, s.deps.Now)
	if err != nil {
		s.log.Warn("expected schemas not loaded", "err", err)
	}
	s.schemas = schemas
	ui, err := s.uiHandler()
	if err != nil {
		return nil, err
	}
	s.budget = limits.BudgetFor(cfg.FDLimit, cfg.MaxWebSockets)
	s.sessions = limits.NewGate(s.budget.WebSockets)
	s.handler = s.withDeadlines(s.withLoopbackHost(s.routes(ui)), "/ws")
	s.srv = s.newHTTPServer(s.handler)
	if cfg.Internal {
		s.internal = s.withDeadlines(s.withLoopbackHost(s.internalRoutes()), "/debug/pprof/")
		s.isrv = s.newHTTPServer(s.internal)
	}
	s.logBudget()
	return s, nil
}

// logBudget reports the connection budget once.
func (s *Server) logBudget() {
	b := s.budget
	args := []any{"fd_limit", b.FDLimit, "reserve", b.Reserve, "websocket_max_connections", b.WebSockets,
		"public_max_connections", b.PublicConns, "internal_max_connections", b.InternalConns}
	if b.Overcommitted() {
		s.log.Warn("connection limits exceed the open-file limit: accepting may fail with EMFILE", args...)
		return
	}
	s.log.Info("connection limits", args...)
}

func (s *Server) newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       listenerContext,
	}
}

// Handler is the server's root handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// InternalHandler is the internal listener's root handler; nil without
// Config.Internal.
func (s *Server) InternalHandler() http.Handler { return s.internal }

// Budget is the connection budget in force.
func (s *Server) Budget() limits.Budget { return s.budget }

// WebSockets is the number of live WebSocket sessions admitted (held from
// admission until the session ends).
func (s *Server) WebSockets() int { return s.sessions.Active() }

// Schemas is the pinned-schema store.
func (s *Server) Schemas() *SchemaStore { return s.schemas }

// ListenAndServe serves the public listener alone (Serve without an
// internal listener).
func (s *Server) ListenAndServe(ctx context.Context, ln net.Listener) error {
	return s.Serve(ctx, ln, nil)
}

// Serve serves the public listener ln and, with Config.Internal, the
// internal listener iln (nil otherwise), until Shutdown is called (then it
// returns nil once Shutdown has stopped the listeners) or ctx is done (then
// every connection is closed at once and it returns nil). Either listener
// failing stops the other. Both are bounded by the connection budget.
func (s *Server) Serve(ctx context.Context, ln, iln net.Listener) error {
	if (s.isrv != nil) != (iln != nil) {
		return fmt.Errorf("httpserver: serve: internal listener given %v, configured %v", iln != nil, s.isrv != nil)
	}
	public := limits.NewListener(ln, limits.ListenerConfig{MaxConns: s.budget.PublicConns,
		Refusal: s.refusal(s.cfg.TLSCertFile == ""), MaxRefusing: s.budget.Refusing, OnRefuse: s.listenerFull})
	s.public.Store(public)
	s.srv.ConnState = s.publicConnState
	if iln == nil {
		return s.serve(ctx, s.srv, public, s.cfg.TLSCertFile != "")
	}
	internal := limits.NewListener(iln, limits.ListenerConfig{MaxConns: s.budget.InternalConns,
		Refusal: s.refusal(true), MaxRefusing: s.budget.Refusing})
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.serve(gctx, s.srv, public, s.cfg.TLSCertFile != "") })
	g.Go(func() error { return s.serve(gctx, s.isrv, internal, false) })
	return g.Wait()
}

func (s *Server) serve(ctx context.Context, srv *http.Server, ln net.Listener, tls bool) error {
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	defer stop()
	var err error
	if tls {
		err = srv.ServeTLS(ln, s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
	} else {
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("httpserver: serve %s: %w", ln.Addr(), err)
}

// retryAfterFull is the Retry-After of a refusal for lack of room, in
// seconds: sessions are long-lived, so a full gateway frees little within a
// second, and spreading retries avoids a reconnect storm.
const retryAfterFull = 5

// refusal is the answer of a full listener to a plain-HTTP connection; nil
// under TLS (the connection is then closed at once).
func (s *Server) refusal(plain bool) []byte {
	if !plain {
		return nil
	}
	body := `{"error":"server at its connection limit","reason":"` + metrics.RejectListenerFull + `"}` + "\n"
	return fmt.Appendf(nil, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"+
		"Cache-Control: no-store\r\nRetry-After: %d\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		retryAfterFull, len(body), body)
}

// listenerFull counts a connection the full public listener refused, and
// warns at most once a minute. Idle keep-alive connections hold places a
// new client could use: they are closed, and keep-alives stay off until the
// listener has room again (publicConnState).
func (s *Server) listenerFull(bool) {
	if s.deps.Metrics != nil {
		s.deps.Metrics.Rejected(metrics.RejectListenerFull)
	}
	if s.noKeep.CompareAndSwap(false, true) {
		s.srv.SetKeepAlivesEnabled(false) // also closes idle connections
	}
	now, last := s.deps.Now().UnixNano(), s.fullLog.Load()
	if now-last >= int64(time.Minute) && s.fullLog.CompareAndSwap(last, now) {
		s.log.Warn("public listener full: refusing connections", "max_connections", s.budget.PublicConns)
	}
}

// publicConnState turns keep-alives back on once the public listener is
// below three quarters of its limit.
func (s *Server) publicConnState(_ net.Conn, state http.ConnState) {
	if state != http.StateNew || !s.noKeep.Load() {
		return
	}
	if ln := s.public.Load(); ln != nil && ln.Active() < s.budget.PublicConns*3/4 && s.noKeep.CompareAndSwap(true, false) {
		s.srv.SetKeepAlivesEnabled(true)
	}
}

// BeginShutdown makes /readyz answer 503 and refuses new WebSocket
// connections (503, counted as rejected "shutdown"), while serving the rest.
func (s *Server) BeginShutdown() { s.stopping.Store(true) }

// Shutdown begins shutdown, stops listening and waits for in-flight HTTP
// requests until ctx is done. Hijacked WebSocket connections are not waited
// for: their owner closes them.
func (s *Server) Shutdown(ctx context.Context) error {
	s.BeginShutdown()
	err := s.srv.Shutdown(ctx)
	if s.isrv != nil { // last: probes answer (readyz 503) while the public side drains
		err = errors.Join(err, s.isrv.Shutdown(ctx))
	}
	if s.uiRoot != nil {
		_ = s.uiRoot.Close()
	}
	if err != nil {
		return fmt.Errorf("httpserver: shutdown: %w", err)
	}
	return nil
}

// status returns the app's status, or "starting" without a callback.
func (s *Server) status() Status {
	if s.deps.Status == nil {
		return Status{Starting: true}
	}
	st := s.deps.Status()
	st.ShuttingDown = st.ShuttingDown || s.stopping.Load()
	return st
}
