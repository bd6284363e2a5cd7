// Package httpserver is the gateway's HTTP face: an http.Server with
// timeouts and an explicit mux for /ws (origin, authentication and per-IP
// admission in front of the WebSocket handler), /health, /healthz, /readyz,
// /version, /metrics, the pinned expected-schema API, the admin API and the
// web UI (SPEC §5).
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
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dashflow/dashstream-gateway/internal/limits"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
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
	// TLSCertFile and TLSKeyFile serve HTTPS when both are set.
	TLSCertFile string
	TLSKeyFile  string
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
}

// Deps is what the server needs from the rest of the gateway. Nil optional
// fields disable what they serve (noted per field).
type Deps struct {
	Logger *slog.Logger // nil: discard
	// Gatherer is scraped by /metrics. Nil: /metrics answers 404.
	Gatherer prometheus.Gatherer
	// Metrics feeds /health and counts rejected connections. Nil: zeros.
	Metrics *metrics.Metrics
	// WS serves an admitted WebSocket request; it blocks for the whole
	// connection and must not check the origin again. The request context
	// carries the client's limits.Identity (limits.IdentityFrom).
	WS http.Handler
	// Auth authenticates WebSocket requests (401 before any upgrade).
	// Nil: no authentication, every client unrestricted.
	Auth *limits.Authenticator
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
}

// Server is the HTTP server of the gateway.
type Server struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	schemas  *SchemaStore
	uiRoot   *os.Root // open while UIDir is served
	handler  http.Handler
	srv      *http.Server
	stopping atomic.Bool // set by BeginShutdown
}

// New builds the server and its routes. It loads the schema store (a
// corrupt file is moved aside and logged) and opens UIDir.
func New(cfg Config, deps Deps) (*Server, error) {
	cfg.setDefaults()
	s := &Server{cfg: cfg, deps: deps, log: deps.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
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
	s.handler = s.withDeadlines(s.withLoopbackHost(s.routes(ui)))
	s.srv = s.newHTTPServer()
	return s, nil
}

func (s *Server) newHTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       listenerContext,
	}
}

// Handler is the server's root handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// Schemas is the pinned-schema store.
func (s *Server) Schemas() *SchemaStore { return s.schemas }

// ListenAndServe serves on ln until Shutdown is called (then it returns nil
// once Shutdown has stopped the listener) or ctx is done (then every
// connection is closed at once and it returns nil).
func (s *Server) ListenAndServe(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { _ = s.srv.Close() })
	defer stop()
	var err error
	if s.cfg.TLSCertFile != "" {
		err = s.srv.ServeTLS(ln, s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
	} else {
		err = s.srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("httpserver: serve: %w", err)
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
