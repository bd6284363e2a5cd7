// Package app wires the gateway together and owns its lifecycle: it builds
// every component from the configuration, starts them in order (HTTP first,
// so /readyz answers 503 within a second while Kafka is still connecting),
// and stops them in one ordered, bounded sequence (stop; docs/PROTOCOL.md §9).
// It holds no business logic.
//
// An App is started once with Run; its accessors are safe for concurrent use.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/buildinfo"
	"github.com/dashflow/dashstream-gateway/internal/config"
	"github.com/dashflow/dashstream-gateway/internal/devbroker"
	"github.com/dashflow/dashstream-gateway/internal/httpserver"
	"github.com/dashflow/dashstream-gateway/internal/hub"
	"github.com/dashflow/dashstream-gateway/internal/kafka"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/tracing"
)

// Options changes what Run starts besides the gateway.
type Options struct {
	// Demo also produces a synthetic DashFlow workload into the topic.
	Demo bool
	// Registry receives every metric. Nil: a new registry.
	Registry *prometheus.Registry
}

// App is one gateway instance.
type App struct {
	cfg      *config.Config
	log      *slog.Logger
	opts     Options
	reg      *prometheus.Registry
	m        *metrics.Metrics
	kmetrics *kafka.ClientMetrics // franz-go client metrics, shared by every client
	mem      *replay.Memory
	tiers    *replay.Tiers
	up       *upstream // what Run learns from Kafka: consumer, deep reader, namespace, Redis store
	hub      *hub.Hub
	auth     *auth.Authenticator
	tracing  *tracing.Provider // set by Run; nil: tracing off

	ready    chan struct{}
	stopping atomic.Bool
	maxConns atomic.Int64 // the WebSocket session budget, once the server exists

	mu           sync.Mutex // guards the listeners' addresses, set while starting
	httpAddr     string
	internalAddr string
}

// New builds the parts that need no network. It fails on configuration that
// cannot work.
func New(cfg *config.Config, log *slog.Logger, opts Options) (*App, error) {
	if cfg.Tracing.Enabled {
		log = slog.New(tracing.LogHandler(log.Handler())) // trace ids in the lines of traced operations
	}
	a := &App{cfg: cfg, log: log, opts: opts, reg: opts.Registry, ready: make(chan struct{})}
	if a.reg == nil {
		a.reg = prometheus.NewRegistry()
		if err := metrics.RegisterRuntime(a.reg); err != nil {
			return nil, fmt.Errorf("app: runtime metrics: %w", err)
		}
	}
	a.m = metrics.New(a.reg)
	if err := metrics.RegisterState(a.reg, metrics.StateFuncs{RedisBreakerOpen: a.breakerOpen,
		MaxConnections: func() float64 { return float64(a.maxConns.Load()) }}); err != nil {
		return nil, fmt.Errorf("app: state metrics: %w", err)
	}
	km, err := kafka.NewClientMetrics(a.reg)
	if err != nil {
		return nil, err
	}
	a.kmetrics = km
	a.mem = replay.NewMemory(replay.MemoryConfig{PerPartition: cfg.Replay.MemorySize, MaxBytes: int(cfg.Replay.MemoryBytes)})
	a.tiers = replay.NewTiers(a.mem, nil) // memory only until upstream adds Kafka and Redis
	a.up = &upstream{tiers: a.tiers}
	if a.auth, err = auth.NewAuthenticator(a.authConfig()); err != nil {
		return nil, fmt.Errorf("app: client auth: %w", err)
	}
	a.hub = hub.New(a.hubConfig(), a.tiers, a.up, a.m, log) // after auth: refresh frames verify with it
	if cfg.Redis.Enabled() {
		routeRedisLog(log)
		client, err := newRedisClient(cfg.Redis)
		if err != nil {
			return nil, err
		}
		a.up.redis = &redisTier{client: client, done: make(chan struct{})}
	}
	return a, nil
}

// Run serves until ctx is done or a part failed, then shuts down (stop)
// within SHUTDOWN_TIMEOUT_SECS. It returns an error when a part failed or a
// shutdown step did not finish within its bound.
func (a *App) Run(ctx context.Context) error {
	a.log.Info("starting dashstream gateway", "config", a.cfg.Redacted(), "tracing", a.cfg.Tracing.Enabled)
	tp, err := tracing.Setup(ctx, tracing.Config{Enabled: a.cfg.Tracing.Enabled,
		ServiceVersion: buildinfo.Get().GitSHA}, a.log.With("component", "tracing"))
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	a.tracing = tp
	serving := false // from then on, stop flushes the spans (its last step)
	defer func() {
		if !serving {
			ctx, cancel := context.WithTimeout(context.Background(), a.share(shareTracing))
			defer cancel()
			a.stopTracing(ctx)
		}
	}()
	ln, err := net.Listen("tcp", a.cfg.Server.Addr())
	if err != nil {
		return fmt.Errorf("app: listen on %s: %w", a.cfg.Server.Addr(), err)
	}
	a.setHTTPAddr(ln.Addr().String())
	iln, err := a.listenInternal()
	if err != nil {
		ln.Close()
		return err
	}
	srv, err := httpserver.New(a.httpConfig(), a.httpDeps())
	if err != nil {
		ln.Close()
		if iln != nil {
			iln.Close()
		}
		return fmt.Errorf("app: http: %w", err)
	}
	a.maxConns.Store(int64(srv.Budget().WebSockets))
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHTTP()
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Serve(httpCtx, ln, iln) }()
	a.log.Info("http listening", "addr", ln.Addr().String(), "url", a.URL())

	serving = true
	p, runErr := a.startPipeline(ctx)
	if runErr == nil {
		select {
		case <-p.gctx.Done(): // ctx done or a part failed
		case <-p.consumerDone:
		}
	}
	return errors.Join(runErr, a.stop(p, srv, stopHTTP, httpDone))
}

// stopTracing exports the spans still queued, bounded by ctx. A collector
// that cannot be reached costs spans, not a failed shutdown: it is logged.
func (a *App) stopTracing(ctx context.Context) {
	if err := a.tracing.Shutdown(ctx); err != nil {
		a.log.Warn("tracing: spans not flushed at shutdown", "err", err)
	}
}

// listenInternal opens the internal listener (INTERNAL_ADDR) for probes,
// metrics, pprof and admin; nil when it is not configured.
func (a *App) listenInternal() (net.Listener, error) {
	addr := a.cfg.Server.InternalAddr
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("app: listen on INTERNAL_ADDR %s: %w", addr, err)
	}
	a.mu.Lock()
	a.internalAddr = ln.Addr().String()
	a.mu.Unlock()
	a.log.Info("internal listening", "addr", ln.Addr().String())
	return ln, nil
}

// InternalAddr is the address of the internal listener ("" when off or
// before Run listened).
func (a *App) InternalAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.internalAddr
}

// pipeline is what startPipeline started; stop takes it down in order.
// Fields stay zero for the parts that did not start.
type pipeline struct {
	g            *errgroup.Group
	gctx         context.Context    // done when Run's ctx is, or a part failed
	cancel       context.CancelFunc // ends the parts that run under gctx (watchdog, pprof, JWKS, demo, readiness)
	stopConsumer context.CancelFunc
	consumerDone chan struct{} // closed when consumer.Run returned
	stopRedis    context.CancelFunc
	closers      []func() // the embedded broker, then deep reads: closed in reverse
}

// startPipeline starts the broker (embedded mode), deep reads, the
// consumer, the Redis tier, the demo workload, the watchdog, pprof and the
// JWKS refresher. On error it returns what it started so far (stop closes
// it).
func (a *App) startPipeline(ctx context.Context) (*pipeline, error) {
	p := &pipeline{}
	brokers, closeBroker, err := a.startBroker()
	if err != nil {
		return p, err
	}
	p.closers = append(p.closers, closeBroker)
	deep, err := a.newDeepReader(brokers)
	if err != nil {
		return p, err
	}
	p.closers = append(p.closers, deep.Close)
	consumer, err := kafka.New(a.kafkaConfig(brokers), a.hub, a.m, a.log.With("component", "kafka"))
	if err != nil {
		return p, fmt.Errorf("app: kafka: %w", err)
	}
	a.up.attach(brokers, consumer, deep)
	pctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(pctx)
	// The consumer and the Redis writer outlive ctx: stop ends them in order.
	consumerCtx, stopConsumer := context.WithCancel(context.WithoutCancel(ctx))
	redisCtx, stopRedis := context.WithCancel(context.WithoutCancel(ctx))
	*p = pipeline{g: g, gctx: gctx, cancel: cancel, stopConsumer: stopConsumer,
		consumerDone: make(chan struct{}), stopRedis: stopRedis, closers: p.closers}
	g.Go(func() error { defer close(p.consumerDone); return consumer.Run(consumerCtx) })
	g.Go(func() error { a.awaitReady(gctx, consumer); return nil })
	g.Go(func() error { return a.watchdog(gctx, consumer) })
	g.Go(func() error { return a.servePprof(gctx) })
	g.Go(func() error { return a.auth.Run(gctx) }) // JWKS keys; tokens wait for them, readiness does not
	if a.up.redis != nil {
		g.Go(func() error { return a.runRedis(redisCtx, consumer) })
	}
	if a.opts.Demo {
		g.Go(func() error { return a.runDemo(gctx, brokers) })
	}
	return p, nil
}

// The shutdown budget: each step's share of SHUTDOWN_TIMEOUT_SECS, in
// percent. The shares add up to 100, so every step gets its own bound even
// when the ones before it used theirs in full; each step also ends at the
// overall deadline.
const (
	shareClients  = 40 // a client that does not read holds its close up to WEBSOCKET_SEND_TIMEOUT_SECS
	shareConsumer = 40 // stop fetching, finish in-flight records, DLQ flush, progress save
	// shareConsumerFlush of shareConsumer bounds the DLQ flush and progress
	// save together (kafka.Config.ShutdownTimeout); the rest is for stopping
	// the fetch and finishing the in-flight records.
	shareConsumerFlush = 30
	shareRedis         = 10 // queued Redis writes
	shareHTTP          = 5  // in-flight HTTP requests (probes, metrics)
	shareTracing       = 5  // queued spans
)

// share is pct percent of SHUTDOWN_TIMEOUT_SECS.
func (a *App) share(pct int64) time.Duration {
	return a.cfg.Shutdown.Timeout * time.Duration(pct) / 100
}

// stop is the whole shutdown (docs/PROTOCOL.md §9; the order and why it is
// this one: docs/ARCHITECTURE.md, "Shutdown"). Its steps, in order, each
// bounded by its share of SHUTDOWN_TIMEOUT_SECS and all by the whole:
//
//  1. readiness off (/readyz 503), new WebSocket sessions refused (503),
//     the parts that only serve a running gateway (watchdog, pprof, JWKS
//     refresher, demo) told to stop;
//  2. clients closed with 1001: they resume on another instance from their
//     cursors right away (shareClients);
//  3. the consumer stops fetching, finishes its in-flight records (into the
//     tiers), flushes the DLQ producer and saves progress (shareConsumer);
//  4. queued Redis writes drained, then the writer stopped (shareRedis);
//  5. the parts of step 1 awaited; deep reads and the embedded broker closed;
//  6. HTTP stopped: probes answered until here (shareHTTP);
//  7. the Redis client released, queued spans flushed (shareTracing).
//
// It returns the error of a part that failed and of every step that did not
// finish within its bound.
func (a *App) stop(p *pipeline, srv *httpserver.Server, stopHTTP context.CancelFunc, httpDone <-chan error) error {
	began := time.Now()
	deadline := began.Add(a.cfg.Shutdown.Timeout)
	step := func(pct int64) (context.Context, context.CancelFunc) {
		end := time.Now().Add(a.share(pct))
		if end.After(deadline) {
			end = deadline
		}
		return context.WithDeadline(context.Background(), end)
	}
	done := func(name string, since time.Time) {
		a.log.Info("shutdown step done", "step", name, "took", time.Since(since).Round(time.Millisecond))
	}
	var errs []error

	a.stopping.Store(true) // 1
	srv.BeginShutdown()
	if p.cancel != nil {
		p.cancel()
	}

	t := time.Now() // 2
	ctx, cancel := step(shareClients)
	if err := a.hub.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("app: close clients: %w", err))
	}
	cancel()
	done("clients", t)

	if p.consumerDone != nil { // 3
		t = time.Now()
		p.stopConsumer()
		ctx, cancel = step(shareConsumer)
		select {
		case <-p.consumerDone:
		case <-ctx.Done():
			// Its DLQ flush and progress save are bounded by
			// shareConsumerFlush, so step 5 waits for it briefly.
			errs = append(errs, fmt.Errorf("app: consumer did not stop within %s", a.share(shareConsumer)))
		}
		cancel()
		done("consumer", t)
	}

	if p.stopRedis != nil { // 4
		if a.up.redis != nil {
			t = time.Now()
			ctx, cancel = step(shareRedis)
			if err := a.drainRedis(ctx); err != nil {
				a.log.Warn("redis writes not drained at shutdown", "err", err)
			}
			cancel()
			done("redis", t)
		}
		p.stopRedis()
	}

	if p.g != nil { // 5
		if err := p.g.Wait(); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}

	t = time.Now() // 6
	ctx, cancel = step(shareHTTP)
	if err := srv.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	cancel()
	stopHTTP()
	if err := <-httpDone; err != nil {
		errs = append(errs, err)
	}
	done("http", t)

	a.closeRedis() // 7
	a.log.Info("gateway stopped", "took", time.Since(began).Round(time.Millisecond))
	ctx, cancel = step(shareTracing)
	a.stopTracing(ctx)
	cancel()
	return errors.Join(errs...)
}

// startBroker starts the embedded development broker when no brokers are
// configured.
func (a *App) startBroker() ([]string, func(), error) {
	if !a.cfg.Kafka.Embedded() {
		return a.cfg.Kafka.Brokers, func() {}, nil
	}
	b, err := devbroker.StartBroker(devbroker.BrokerConfig{Addr: a.cfg.EmbeddedKafka.Addr,
		Partitions: int32(a.cfg.EmbeddedKafka.Partitions),
		Topics:     []string{a.cfg.Kafka.Topic, a.cfg.DLQ.Topic}}, a.log.With("component", "devbroker"))
	if err != nil {
		return nil, nil, fmt.Errorf("app: embedded broker: %w", err)
	}
	return b.Addrs(), b.Close, nil
}

// awaitReady closes Ready once the consumer reached Kafka and found the
// topic (its namespace is known).
func (a *App) awaitReady(ctx context.Context, c *kafka.Consumer) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !c.Reachable() || c.Namespace() == "" {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	close(a.ready)
	a.log.Info("gateway ready", "url", a.URL())
}

// watchdog exits the process (through Run's error) after a true stall, when
// STALL_RESTART_SECS is set: records wait and nothing progresses, or the
// consumer keeps failing while Kafka answers (kafka.Consumer.Stalled).
func (a *App) watchdog(ctx context.Context, c *kafka.Consumer) error {
	d := a.cfg.Shutdown.StallRestart
	if d <= 0 {
		return nil
	}
	t := time.NewTicker(min(d/4, 5*time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if c.Stalled(d) {
				return fmt.Errorf("app: consumer stalled for %s (records waiting without progress, or failing while Kafka answers): exiting so a supervisor restarts it", d)
			}
		}
	}
}

// Ready is closed when HTTP listens and Kafka is reachable.
func (a *App) Ready() <-chan struct{} { return a.ready }

// HTTPAddr is the address HTTP listens on ("" before Run listened).
func (a *App) HTTPAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.httpAddr
}

// URL is the address to open in a browser.
func (a *App) URL() string {
	scheme := "http"
	if a.cfg.Security.TLS() {
		scheme = "https"
	}
	return scheme + "://" + a.HTTPAddr() + "/"
}

// KafkaBrokers are the brokers in use (the embedded broker's in embedded
// mode); nil before Run started them.
func (a *App) KafkaBrokers() []string { return a.up.Brokers() }

// Partitions lists the topic's partitions the consumer reads (none before
// it found the topic; for tests).
func (a *App) Partitions() []int32 { return a.up.Partitions() }

// Hub is the fan-out hub (for tests and the benchmark).
func (a *App) Hub() *hub.Hub { return a.hub }

func (a *App) setHTTPAddr(addr string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.httpAddr = addr
}
