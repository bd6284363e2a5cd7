package replay

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
)

// Redis key layout (docs/ARCHITECTURE.md, "Replay tiers and the planner").
// Every key of one partition shares the hash tag {<namespace>:p<partition>},
// every key of one thread {<namespace>:t:<id>}, so a Redis Cluster spreads
// partitions and threads over its nodes and each Lua script touches a
// single slot.
//
//	dashstream-replay:{<ns>:p<partition>}:log   stream, entry ID <offset>-1
//	dashstream-replay:{<ns>:t:<base64url(thread)>}:seq   sorted set, scores 0
const keyRoot = "dashstream-replay:"

var (
	//go:embed redis_append.lua
	appendLua    string
	appendScript = redis.NewScript(appendLua)

	//go:embed redis_thread_index.lua
	threadIndexLua    string
	threadIndexScript = redis.NewScript(threadIndexLua)
)

// Operation labels of dashstream_websocket_redis_latency_ms.
const (
	opAppend     = "append"
	opRead       = "read"
	opBounds     = "bounds"
	opThreadRefs = "thread_refs"
	opClear      = "clear"
	opPing       = "ping"
)

// defaultPage is the page size of a Read whose Limit.Records is not positive.
const defaultPage = 1000

// RedisConfig configures the Redis tier. Zero values mean the defaults given
// per field; negative values are invalid.
type RedisConfig struct {
	// Namespace is the resume namespace the keys belong to; required. Only
	// [A-Za-z0-9._-], at most 128 bytes, so that no namespace's keys match
	// another's key pattern and hash tags stay intact.
	Namespace string
	// TTL: every key expires TTL after its last write
	// (REDIS_MESSAGE_TTL_SECS). Zero means 1 h.
	TTL time.Duration
	// MaxPerPartition is the records kept per partition, trimmed atomically
	// with each write (REDIS_MAX_SEQUENCES). Zero means 10 000.
	MaxPerPartition int
	// MaxPerThread is the references kept per thread (the highest
	// sequences). Zero means MaxPerPartition.
	MaxPerThread int
	// MaxConcurrentWrites bounds the write pipelines in flight
	// (REDIS_MAX_CONCURRENT_WRITES). Zero means 100.
	MaxConcurrentWrites int
	// WriteTimeout bounds one write pipeline. Zero means 5 s.
	WriteTimeout time.Duration
	// ReadTimeout bounds one read command (and one Clear batch). Zero means 2 s.
	ReadTimeout time.Duration
	// QueueRecords bounds the records waiting to be written; a record that
	// does not fit is dropped and counted. Zero means 50 000.
	QueueRecords int
	// BreakerFailures is the number of consecutive failures that open the
	// circuit breaker. Zero means 5.
	BreakerFailures int
	// ProbeInterval is the PING period while the breaker is open. Zero
	// means 1 s.
	ProbeInterval time.Duration
	// MaxPayload caps the payload of a value decoded for its facts (an
	// entry of the previous format, see legacyFacts): the consumer's cap
	// (WEBSOCKET_MAX_PAYLOAD_BYTES). Zero means dashstream.DefaultMaxPayload.
	MaxPayload int
}

func (c *RedisConfig) validate() error {
	if err := checkNamespace(c.Namespace); err != nil {
		return err
	}
	if c.TTL < 0 || c.MaxPerPartition < 0 || c.MaxPerThread < 0 || c.MaxConcurrentWrites < 0 ||
		c.WriteTimeout < 0 || c.ReadTimeout < 0 || c.QueueRecords < 0 || c.BreakerFailures < 0 ||
		c.ProbeInterval < 0 || c.MaxPayload < 0 {
		return errors.New("negative setting")
	}
	c.TTL = cmp.Or(c.TTL, time.Hour)
	c.MaxPerPartition = cmp.Or(c.MaxPerPartition, 10000)
	c.MaxPerThread = cmp.Or(c.MaxPerThread, c.MaxPerPartition)
	c.MaxConcurrentWrites = cmp.Or(c.MaxConcurrentWrites, 100)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, 5*time.Second)
	c.ReadTimeout = cmp.Or(c.ReadTimeout, 2*time.Second)
	c.QueueRecords = cmp.Or(c.QueueRecords, 50000)
	c.BreakerFailures = cmp.Or(c.BreakerFailures, 5)
	c.ProbeInterval = cmp.Or(c.ProbeInterval, time.Second)
	c.MaxPayload = cmp.Or(c.MaxPayload, dashstream.DefaultMaxPayload)
	return nil
}

func checkNamespace(ns string) error {
	if ns == "" || len(ns) > 128 {
		return fmt.Errorf("namespace must be 1 to 128 bytes, got %d", len(ns))
	}
	for _, c := range []byte(ns) {
		if !namespaceByte(c) {
			return fmt.Errorf("namespace %q: only [A-Za-z0-9._-] allowed", dashstream.TruncateID(ns, 64))
		}
	}
	return nil
}

// Redis is the Redis replay tier: one stream per partition and one sorted
// set per thread, shared by every gateway instance of the namespace. Reads
// are synchronous; writes are queued and done by Run. A circuit breaker
// stops both while Redis fails. Safe for concurrent use.
type Redis struct {
	client redis.UniversalClient
	cfg    RedisConfig
	m      *metrics.Metrics
	log    *slog.Logger
	tag    string // keyRoot + "{" + namespace + ":"
	lat    map[string]prometheus.Observer
	brk    *breaker
	wake   chan struct{} // writer wake-up, capacity 1
	probe  chan struct{} // prober wake-up, capacity 1
	q      writeQueue
	// decoder reads the facts of entries of the previous format
	// (legacyFacts), made on first use: a Redis without them never needs
	// one.
	decoder func() *dashstream.Decoder
}

var _ Store = (*Redis)(nil)

// NewRedis returns the Redis tier over client. It does no I/O and never
// fails because Redis is down: the breaker starts in a probing state (reads
// fail fast with ErrUnavailable, appends wait in the queue) until Run's first
// PING answers, and Run keeps probing in the background while Redis is
// unreachable. A nil m or log is replaced by a throw-away one.
func NewRedis(client redis.UniversalClient, cfg RedisConfig, m *metrics.Metrics, log *slog.Logger) (*Redis, error) {
	if client == nil {
		return nil, errors.New("replay: redis: nil client")
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("replay: redis config: %w", err)
	}
	if m == nil {
		m = metrics.New(nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Redis{
		client: client, cfg: cfg, m: m, log: log.With("component", "replay-redis"),
		tag:  keyRoot + "{" + cfg.Namespace + ":",
		lat:  map[string]prometheus.Observer{},
		wake: make(chan struct{}, 1), probe: make(chan struct{}, 1),
		decoder: sync.OnceValue(func() *dashstream.Decoder {
			return dashstream.NewDecoder(dashstream.DecoderConfig{MaxPayload: cfg.MaxPayload})
		}),
	}
	for _, op := range []string{opAppend, opRead, opBounds, opThreadRefs, opClear, opPing} {
		r.lat[op] = m.RedisLatencyMs.WithLabelValues(op)
	}
	r.brk = newBreaker(cfg.BreakerFailures, r.breakerChanged)
	r.q.init()
	return r, nil
}

func (r *Redis) logKey(p int32) string {
	return r.tag + "p" + strconv.FormatInt(int64(p), 10) + "}:log"
}

func (r *Redis) threadKey(thread string) string {
	return r.tag + "t:" + dashstream.KeyID(thread) + "}:seq"
}

// Healthy reports whether the breaker is closed (Redis answers).
func (r *Redis) Healthy() bool { return r.brk.closed() }

// Read returns up to lim records of p with offset > after (see Store). The
// page stops in front of a missing range (a record whose Prev is above the
// previous record's offset), so a page never jumps over a hole. Records
// count Size() bytes against lim.Bytes; Bytes <= 0 means no byte bound and
// Records <= 0 means a page of 1000.
func (r *Redis) Read(ctx context.Context, p int32, after int64, lim Limit) ([]*Record, bool, error) {
	n := lim.Records
	if n <= 0 {
		n = defaultPage
	}
	var msgs []redis.XMessage
	err := r.do(ctx, opRead, func(ctx context.Context) (err error) {
		msgs, err = r.client.XRangeN(ctx, r.logKey(p), afterID(after), "+", int64(n)).Result()
		return err
	})
	if err != nil {
		r.m.ReplayRedisMiss()
		return nil, false, fmt.Errorf("replay: redis read p%d: %w", p, err)
	}
	recs, err := r.decodePage(p, msgs, lim.Bytes)
	if err != nil {
		return nil, false, fmt.Errorf("replay: redis read p%d: %w", p, err)
	}
	return recs, len(recs) == 0 || prevOf(recs[0]) <= max(after, -1), nil
}

// decodePage decodes entries until the byte bound or a missing range. An
// entry of the previous format (no facts field, see decodeFields) gets its
// message type and event types from its value, so every record a read
// returns carries them, whichever format wrote it.
func (r *Redis) decodePage(p int32, msgs []redis.XMessage, maxBytes int) ([]*Record, error) {
	recs := make([]*Record, 0, len(msgs))
	size := 0
	for _, m := range msgs {
		rec, legacy, err := decodeEntry(p, m)
		if err != nil {
			return nil, err
		}
		if n := len(recs); n > 0 && ((maxBytes > 0 && size >= maxBytes) || prevOf(rec) > recs[n-1].Offset) {
			break
		}
		if legacy {
			r.legacyFacts(rec)
		}
		recs = append(recs, rec)
		size += rec.Size()
	}
	return recs, nil
}

// legacyFacts sets Type and EventTypes of a record read from an entry of
// the previous format by decoding its value (the consumer decoded it under
// the same cap before writing it). A value that does not decode keeps
// Type 0: a filter on types then refuses it, as for any unknown type.
// Entries of that format are written only by an older gateway (before an
// upgrade, or during a rolling one) and expire with the TTL.
func (r *Redis) legacyFacts(rec *Record) {
	if dec, err := r.decoder().Decode(rec.Value); err == nil {
		rec.Type, rec.EventTypes = uint8(dec.Type()), dec.EventTypes()
	}
}

// Bounds returns the oldest and newest offsets held for p.
func (r *Redis) Bounds(ctx context.Context, p int32) (oldest, newest int64, ok bool, err error) {
	var first, last *redis.XMessageSliceCmd
	err = r.do(ctx, opBounds, func(ctx context.Context) error {
		_, err := r.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			first = pipe.XRangeN(ctx, r.logKey(p), "-", "+", 1)
			last = pipe.XRevRangeN(ctx, r.logKey(p), "+", "-", 1)
			return nil
		})
		return err
	})
	if err != nil {
		return 0, 0, false, fmt.Errorf("replay: redis bounds p%d: %w", p, err)
	}
	if len(first.Val()) == 0 || len(last.Val()) == 0 {
		return 0, 0, false, nil
	}
	o, _, err1 := decodeEntry(p, first.Val()[0])
	n, _, err2 := decodeEntry(p, last.Val()[0])
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, false, fmt.Errorf("replay: redis bounds p%d: %w", p, err)
	}
	return o.Offset, n.Offset, true, nil
}

// ThreadRefs returns up to max references of thread with sequence > after,
// in ascending (sequence, partition, offset) order.
func (r *Redis) ThreadRefs(ctx context.Context, thread string, after uint64, limit int) ([]Ref, error) {
	if limit <= 0 {
		return nil, nil
	}
	var members []string
	err := r.do(ctx, opThreadRefs, func(ctx context.Context) (err error) {
		by := &redis.ZRangeBy{Min: refsAfter(after), Max: "+", Count: int64(limit)}
		members, err = r.client.ZRangeByLex(ctx, r.threadKey(thread), by).Result()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("replay: redis thread refs: %w", err)
	}
	refs := make([]Ref, 0, len(members))
	for _, m := range members {
		ref, err := parseRef(m)
		if err != nil {
			return nil, fmt.Errorf("replay: redis thread refs: %w", err)
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// do runs one read-side operation through the breaker, bounded by
// ReadTimeout, and records its latency and outcome.
func (r *Redis) do(ctx context.Context, op string, fn func(context.Context) error) error {
	if !r.brk.closed() {
		return ErrUnavailable
	}
	opCtx, cancel := context.WithTimeout(ctx, r.cfg.ReadTimeout)
	defer cancel()
	start := time.Now()
	err := fn(opCtx)
	r.observe(ctx, op, start, err)
	return err
}

// observe records an operation's latency and outcome. An error the caller
// caused (its context ended) is not held against Redis.
func (r *Redis) observe(parent context.Context, op string, start time.Time, err error) {
	r.lat[op].Observe(float64(time.Since(start).Microseconds()) / 1000)
	switch {
	case err == nil || errors.Is(err, redis.Nil):
		r.brk.success()
	case parent.Err() != nil:
	default:
		r.m.RedisErrors.Inc()
		if isOutage(err) && r.brk.failure() {
			r.log.Warn("redis failing, circuit breaker open", "op", op, "err", err)
		}
	}
}

// isOutage reports whether err means Redis cannot serve (as opposed to a
// reply about one command, which proves the server is up).
func isOutage(err error) bool {
	var reply redis.Error
	if !errors.As(err, &reply) {
		return true
	}
	for _, prefix := range []string{"LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "READONLY"} {
		if redis.HasErrorPrefix(err, prefix) {
			return true
		}
	}
	return false
}

// namespaceByte reports whether c may appear in a namespace: [A-Za-z0-9._-].
func namespaceByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}
