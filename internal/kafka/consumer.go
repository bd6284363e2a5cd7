// Package kafka reads the DashStream topic and hands its records to a Sink.
//
// Every instance reads every partition by direct assignment (no consumer
// group membership: any client may resume on any instance, docs/PROTOCOL.md §1). Each
// record is validated by the dashstream decoder; valid records are published
// with their replay metadata (offset, previous offset, threads, timestamp),
// failures are counted, dead-lettered to the DLQ topic and published as
// "skipped" markers, or pause their partition under the pause policy.
// Progress (the next offset of every partition) is saved under the group
// "<GroupID>.<InstanceID>" so a restart continues exactly where it stopped;
// a lag loop, a partition check and the DLQ producer run beside the
// consumer goroutine.
//
// Goroutines: Run owns them all. The consumer goroutine alone polls, decodes,
// tracks sequences, calls Sink.Publish and changes partition state; control
// requests (ResumePartition, new partitions) are queued to it. The lag,
// progress and partition loops only read a mutex-guarded view and talk to
// Kafka. The exported accessors are safe for concurrent use.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// Sink receives the records of every partition. Publish is called from the
// consumer goroutine only, once per poll, with records in offset order per
// partition; it must be fast and must not block. The records and the slice
// are the sink's from then on (Value aliases the fetched bytes, not copied).
type Sink interface {
	Publish(recs []*replay.Record)
}

// Connection backoff: capped and jittered, so that consumption starts
// within about backoffMax of the broker coming up.
const (
	backoffBase = 250 * time.Millisecond
	backoffMax  = 5 * time.Second
	dialTimeout = 10 * time.Second
)

// Consumer reads every partition of the topic. Build it with New and run it
// with Run; the accessors may be called from any goroutine at any time.
type Consumer struct {
	cfg   Config
	sink  Sink
	m     *metrics.Metrics
	log   *slog.Logger
	dec   *dashstream.Decoder
	opts  []kgo.Opt // common options of every client
	group string    // progress group
	now   func() time.Time
	e2e   prometheus.Observer
	seq   *sequenceTracker // consumer goroutine only
	// tracer traces consumed batches; nil when tracing is off.
	tracer trace.Tracer

	view         view
	reachable    atomic.Bool
	lastMessage  atomic.Int64 // unix nanoseconds of the last valid record, 0 none
	namespace    atomic.Pointer[string]
	topicProblem atomic.Pointer[string] // see TopicProblem; nil: none
	failing      failClock              // polls or re-connects failing while Kafka answers
	logs         *logLimiter            // conditions logged at most once per logEvery
	lastRead     atomic.Int64           // unix nanos of the last response any client read

	ctrl    chan func(*clusterConn) // requests run by the consumer goroutine
	wakeMu  sync.Mutex
	wake    context.CancelFunc // interrupts the poll in progress; guarded by wakeMu
	started atomic.Bool
	running atomic.Bool
	done    chan struct{} // closed when Run returns
}

// clusterConn is one connection to the Kafka cluster, from connect to its
// end: its clients and the consumer goroutine's partition state. (Not a
// client's session: those are the hub's.)
type clusterConn struct {
	cl        *kgo.Client // consumer
	admCl     *kgo.Client
	adm       *kadm.Client
	dlqCl     *kgo.Client
	dlq       *deadLetters
	parts     map[int32]*partState // consumer goroutine only
	touched   []*partState         // consumer goroutine only: partitions of the current poll
	committed map[int32]int64      // progress loop only: last offsets saved
	// decodeFailures counts the current poll's decode failures (consumer
	// goroutine only), for its span.
	decodeFailures int
}

func (s *clusterConn) close() {
	for _, cl := range []*kgo.Client{s.cl, s.dlqCl, s.admCl} {
		if cl != nil {
			cl.Close()
		}
	}
}

// New validates cfg and returns a Consumer that publishes to sink. It does
// not connect: Run does, in the background of the caller's choosing.
func New(cfg Config, sink Sink, m *metrics.Metrics, log *slog.Logger) (*Consumer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if sink == nil || m == nil || log == nil {
		return nil, fmt.Errorf("%w: nil sink, metrics or logger", ErrInvalidConfig)
	}
	sec, err := ClientOpts(cfg.Security)
	if err != nil {
		return nil, err
	}
	c := &Consumer{
		cfg: cfg, sink: sink, m: m, log: log,
		dec:   dashstream.NewDecoder(dashstream.DecoderConfig{MaxPayload: cfg.MaxPayload, MaxSchemaVersion: cfg.MaxSchemaVersion}),
		group: cfg.progressGroup(),
		now:   time.Now,
		e2e:   m.E2ELatencyMs.WithLabelValues(metrics.StageProducerToConsumer),
		ctrl:  make(chan func(*clusterConn), 16),
		done:  make(chan struct{}),
		logs:  &logLimiter{log: log},

		tracer: tracerOf(cfg.TracerProvider),
	}
	c.seq = newSequenceTracker(cfg.SequenceTrackerSize, seqCounters{
		gaps: m.SequenceGaps, duplicates: m.SequenceDuplicates, reorders: m.SequenceReorders, gapSize: m.SequenceGapSize,
	})
	c.opts = slices.Concat([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.WithLogger(kgoLogger{c.logs}),
		kgo.WithHooks(readHook{&c.lastRead}),
	}, sec, cfg.ExtraOpts)
	return c, nil
}

// Run connects (retrying with capped, jittered backoff while ctx lives, so
// callers keep serving meanwhile), then consumes until ctx ends. When the
// topic is deleted and re-created under it (docs/PROTOCOL.md §3.7) it drops the old
// connection and connects again: the new topic is read from its log start
// under its new namespace (see Config.BeforeNamespaceChange). On the way
// out it stops fetching, flushes the DLQ producer and saves progress, each
// bounded by Config.ShutdownTimeout. It returns nil when ctx ends (a failed
// final commit is logged: the next start re-reads at most what it missed),
// an error wrapping ErrInvalidConfig when the Kafka client rejects its
// options (retrying cannot help), and ErrAlreadyRunning when called twice.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer close(c.done)
	for {
		s, err := c.connect(ctx)
		if errors.Is(err, ErrInvalidConfig) {
			return err
		}
		if err != nil {
			return nil // ctx ended before Kafka answered
		}
		recreated := c.serve(ctx, s)
		// The offsets of a re-created topic's old connection mean nothing in
		// the new one: no final commit then.
		c.shutdown(s, !recreated)
		s.close()
		if !recreated {
			return nil
		}
	}
}

// serve runs the consumer goroutine (this one) and the background loops
// until ctx ends or the topic's identity changes; it reports the latter.
func (c *Consumer) serve(ctx context.Context, s *clusterConn) (recreated bool) {
	loopCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var changed atomic.Bool
	wg.Go(func() { c.lagLoop(loopCtx, s) })
	wg.Go(func() { c.progressLoop(loopCtx, s) })
	wg.Go(func() { c.partitionLoop(loopCtx, s) })
	wg.Go(func() {
		c.healthLoop(loopCtx, s, func(string) {
			changed.Store(true)
			stop()
		})
	})
	c.running.Store(true)
	c.consume(loopCtx, s)
	c.running.Store(false)
	stop()
	wg.Wait()
	return changed.Load() && ctx.Err() == nil
}

// shutdown stops fetching, then flushes dead letters and, with commit,
// saves progress.
func (c *Consumer) shutdown(s *clusterConn, commit bool) {
	s.cl.Close()
	s.cl = nil
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.dlq.flush(ctx); err != nil {
		c.log.Warn("kafka: DLQ flush at shutdown incomplete", "err", err)
	}
	if !commit {
		return
	}
	if err := c.commit(ctx, s); err != nil {
		c.log.Warn("kafka: final progress commit failed", "group", c.group, "err", err)
	}
}

// connect dials until it succeeds or ctx ends. Each failure is counted;
// it is logged at most once per logEvery.
func (c *Consumer) connect(ctx context.Context) (*clusterConn, error) {
	for attempt := 0; ; attempt++ {
		s, err := c.dial(ctx)
		if err == nil {
			c.setReachable(true)
			c.failing.clear()
			c.log.Info("kafka: consuming", "topic", c.cfg.Topic, "partitions", len(s.parts), "group", c.group, "namespace", c.Namespace())
			return s, nil
		}
		if ctx.Err() != nil || errors.Is(err, ErrInvalidConfig) {
			return nil, err
		}
		c.m.KafkaError("connect")
		if errors.Is(err, ErrTopicNotFound) {
			c.setReachable(true) // Kafka answered; the topic is what is missing
			c.setTopicProblem(topicMissing)
		} else {
			c.setReachable(false)
		}
		if c.Namespace() != "" && c.Reachable() {
			// Adopting a re-created topic keeps failing although Kafka
			// answers: a stall if it lasts (Stalled).
			c.failing.fail(c.now())
		}
		wait := backoff(attempt)
		c.logs.warn("connect", "kafka: not connected, retrying", "attempt", attempt+1, "retry_in", wait, "err", err)
		if !sleep(ctx, wait) {
			return nil, ctx.Err()
		}
	}
}

// backoff is the connection's retry delay (see jittered).
func backoff(attempt int) time.Duration { return jittered(backoffBase, backoffMax, attempt) }

// jittered is an exponential delay with half jitter: d = base·2^attempt
// capped at limit, then a random value in [d/2, d]. The connection, the
// poll loop and the admin client's retries all back off this way.
func jittered(base, limit time.Duration, attempt int) time.Duration {
	d := limit
	if attempt < 20 {
		d = min(limit, base<<attempt)
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// enqueue hands fn to the consumer goroutine and interrupts its poll.
func (c *Consumer) enqueue(ctx context.Context, fn func(*clusterConn)) error {
	select {
	case c.ctrl <- fn:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return ErrNotRunning
	}
	c.wakeMu.Lock()
	if c.wake != nil {
		c.wake()
	}
	c.wakeMu.Unlock()
	return nil
}

// ResumePartition resumes a partition paused by the pause policy: the
// failing record is dead-lettered, its skipped marker published, and
// reading continues after it. It waits until that is done or ctx ends.
func (c *Consumer) ResumePartition(ctx context.Context, p int32) error {
	if !c.running.Load() {
		return ErrNotRunning
	}
	reply := make(chan error, 1)
	if err := c.enqueue(ctx, func(s *clusterConn) { reply <- c.resume(s, p) }); err != nil {
		return fmt.Errorf("kafka: resume p%d: %w", p, err)
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("kafka: resume p%d: %w", p, ctx.Err())
	case <-c.done:
		return fmt.Errorf("kafka: resume p%d: %w", p, ErrNotRunning)
	}
}

// Namespace is the resume namespace derived from the cluster id, topic and
// topic id (docs/PROTOCOL.md §4); empty until the first successful metadata request.
func (c *Consumer) Namespace() string {
	if ns := c.namespace.Load(); ns != nil {
		return *ns
	}
	return ""
}

// Reachable reports whether the last metadata request succeeded (checked
// every second while connected; false until connected).
func (c *Consumer) Reachable() bool { return c.reachable.Load() }

// LastMessage is when the last valid record was read; zero before any.
func (c *Consumer) LastMessage() time.Time {
	if ns := c.lastMessage.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Partitions lists every partition of the topic being read, sorted.
func (c *Consumer) Partitions() []int32 { return c.view.partitions() }

// Paused lists the partitions paused by the pause policy, sorted.
func (c *Consumer) Paused() []int32 { return c.view.paused() }

// HighWatermark is the latest known high watermark of partition p (from the
// lag loop and fetch responses), and whether one is known.
func (c *Consumer) HighWatermark(p int32) (int64, bool) { return c.view.highWatermark(p) }

// Stalled reports a true stall: a partition that is not paused has had
// records waiting (lag > 0) without moving for longer than since, or the
// consumer has kept failing (every poll an error, or re-connecting to a
// re-created topic) for longer than since while Kafka answers metadata
// requests. A quiet topic is never stalled, and neither is a consumer
// waiting for an unreachable Kafka (a dependency outage, shown by
// Reachable).
func (c *Consumer) Stalled(since time.Duration) bool {
	now := c.now()
	return c.view.stalled(now, since) || (c.Reachable() && c.failing.longer(now, since))
}

// kgoLogger forwards franz-go's warnings and errors to slog, each message
// at most once per logEvery (a client retrying an unreachable broker warns
// on every attempt); its info and debug output is too chatty for a service
// log.
type kgoLogger struct{ l *logLimiter }

func (k kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lvl := slog.LevelWarn
	if level == kgo.LogLevelError {
		lvl = slog.LevelError
	}
	k.l.at(lvl, "kgo:"+msg, "kafka client: "+msg, keyvals...)
}
