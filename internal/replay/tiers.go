package replay

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// Tier names (Page.Tier), for hit accounting.
const (
	TierMemory = "memory"
	TierRedis  = "redis"
	TierKafka  = "kafka"
)

// DeepReader reads old records straight from Kafka (the kafka package
// implements it). Its records carry encoded frames and may be shared.
type DeepReader interface {
	// ReadAfter returns up to max records of p with offset > after and the
	// partition's log start offset as Kafka reported it for this read (the
	// fetch response, or a fresh ListOffsets after an offset-out-of-range
	// fetch): offsets below it are gone from Kafka.
	ReadAfter(ctx context.Context, p int32, after int64, limit int) ([]*Record, int64, error)
	// LogStart is the partition's log start offset as Kafka reported it at
	// most maxAge ago: an older cached answer is asked for again.
	LogStart(ctx context.Context, p int32, maxAge time.Duration) (int64, error)
}

// ProofMaxAge is how old a cached log start may be and still prove that the
// records below it are gone (docs/PROTOCOL.md §3.4, "A gap needs proof").
const ProofMaxAge = 5 * time.Second

// Tiers reads a partition from the replay tiers in order — memory, then
// Redis, then Kafka — merging them by offset ranges so that no range is ever
// jumped over: what a tier does not hold is asked of the next one, and only
// what Kafka itself says it no longer holds becomes a Gap. The memory and
// Redis windows never prove a loss: without an answer from Kafka (no Kafka
// tier, or Kafka unreachable) a range that they miss is ErrUnavailable.
// Safe for concurrent use.
type Tiers struct {
	memory *Memory
	shared *deepShare               // the records Redis and Kafka returned lately, shared by their readers
	redis  atomic.Pointer[storeRef] // set once Redis is configured and named
	kafka  atomic.Pointer[deepRef]  // set once the brokers are known
}

type (
	storeRef struct{ Store }
	deepRef  struct{ DeepReader }
)

// NewTiers returns the tiers over memory; kafka may be nil (SetKafka adds it
// later).
func NewTiers(memory *Memory, kafka DeepReader) *Tiers {
	t := &Tiers{memory: memory, shared: newDeepShare(deepShareBytes)}
	if kafka != nil {
		t.SetKafka(kafka)
	}
	return t
}

// Forget drops the records read from Redis and Kafka that readers share
// (deepShare): the topic's identity changed (its offsets name other
// records now), or the replay store was cleared.
func (t *Tiers) Forget() { t.shared.forget() }

// SetKafka adds the Kafka deep-read tier.
func (t *Tiers) SetKafka(d DeepReader) { t.kafka.Store(&deepRef{d}) }

func (t *Tiers) deep() DeepReader {
	if d := t.kafka.Load(); d != nil {
		return d.DeepReader
	}
	return nil
}

// SetRedis adds the Redis tier (its namespace is known only once Kafka
// answered, after start).
func (t *Tiers) SetRedis(s Store) { t.redis.Store(&storeRef{s}) }

func (t *Tiers) redisStore() Store {
	if r := t.redis.Load(); r != nil {
		return r.Store
	}
	return nil
}

// Append adds records to memory and hands them to Redis (asynchronously:
// it never blocks). It returns how many memory added.
func (t *Tiers) Append(recs []*Record) int {
	n := t.memory.add(recs)
	if r := t.redisStore(); r != nil {
		_ = r.Append(context.Background(), recs) // failures are counted by the store
	}
	return n
}

// Page returns records of p with offset > after. Records served by the
// memory tier are appended to buf[:0] when buf is not nil (the caller's
// reused storage: it must be done with the previous page). A page whose
// Tier is TierMemory holds that slice (maybe grown); any other page's
// Records belong to another tier, may be shared and must not be reused, and
// what memory wrote into buf has been cleared (so buf pins no record).
// A page's Gap is always backed by a log start Kafka reported for this read;
// when Kafka cannot be asked the error wraps ErrUnavailable.
func (t *Tiers) Page(ctx context.Context, p int32, after int64, lim Limit, buf []*Record) (Page, error) {
	recs, covered, newest := t.memory.readInto(p, after, lim.Records, lim.Bytes, buf)
	if covered {
		return Page{Records: recs, Tier: TierMemory}, nil
	}
	end := newest // memory misses (after, end]
	if len(recs) > 0 {
		end = recs[0].Offset - 1
	}
	if end <= after { // a Prev that is not below its offset: nothing can be missing
		return Page{Records: recs, Tier: TierMemory}, nil
	}
	if page, ok := t.fromRedis(ctx, p, after, end, lim); ok {
		clear(recs)
		return page, nil
	}
	d := t.deep()
	if d == nil {
		clear(recs)
		return Page{}, fmt.Errorf("replay: p%d after %d: %w: no Kafka tier to read %d..%d from", p, after, ErrUnavailable, after+1, end)
	}
	page, err := t.fromKafka(ctx, d, p, after, end, lim, recs)
	if page.Tier != TierMemory {
		clear(recs)
	}
	return page, err
}

// fromRedis serves the start of (after, end] from Redis when Redis holds it
// contiguously from after.
func (t *Tiers) fromRedis(ctx context.Context, p int32, after, end int64, lim Limit) (Page, bool) {
	r := t.redisStore()
	if r == nil {
		return Page{}, false
	}
	recs, covered, err := r.Read(ctx, p, after, lim)
	if err != nil || !covered {
		return Page{}, false
	}
	recs = upTo(recs, end)
	if len(recs) == 0 {
		return Page{}, false
	}
	t.shared.share(recs)
	return Page{Records: recs, Tier: TierRedis}, true
}

// fromKafka serves (after, end] from Kafka. Only Kafka's own answer makes a
// gap: offsets below the log start it reported for this read, or a range in
// which the records it returned show it holds nothing any more.
func (t *Tiers) fromKafka(ctx context.Context, d DeepReader, p int32, after, end int64, lim Limit, mem []*Record) (Page, error) {
	recs, logStart, err := d.ReadAfter(ctx, p, after, max(lim.Records, 1))
	if err != nil {
		return Page{}, fmt.Errorf("replay: p%d after %d: %w: %w", p, after, ErrUnavailable, err)
	}
	if after+1 < logStart {
		g := &Gap{From: after + 1, To: min(logStart-1, end)}
		if g.To == end && len(mem) > 0 { // memory continues right after the gap
			return Page{Gap: g, Records: mem, Tier: TierMemory}, nil
		}
		return Page{Gap: g}, nil
	}
	if len(recs) == 0 {
		// Kafka retains after+1 yet returned nothing, although the consumer
		// saw a record in (after, end]: an answer that proves nothing.
		return Page{}, fmt.Errorf("replay: p%d after %d: %w: Kafka returned no record up to %d", p, after, ErrUnavailable, end)
	}
	if recs = upTo(recs, end); len(recs) > 0 {
		// The deep reader hands one slice to every reader of a coalesced
		// fetch: share swaps records in a copy of it.
		recs = slices.Clone(recs)
		t.shared.share(recs)
		return Page{Records: recs, Tier: TierKafka}, nil
	}
	if len(mem) > 0 { // Kafka holds no record in (after, end]: memory continues
		return Page{Records: mem, Tier: TierMemory}, nil
	}
	return Page{Gap: &Gap{From: after + 1, To: end}}, nil
}

// upTo keeps the records with offsets <= end.
func upTo(recs []*Record, end int64) []*Record {
	for i, r := range recs {
		if r.Offset > end {
			return recs[:i]
		}
	}
	return recs
}

// boundsTimeout bounds the Redis look-ups made while positioning a resume.
const boundsTimeout = time.Second

// WindowStart returns the oldest offset of p's replay window (memory and
// Redis): where a client without a cursor for p starts. It proves nothing
// about what Kafka still holds; Redis failing only narrows the window to
// memory.
func (t *Tiers) WindowStart(ctx context.Context, p int32) (int64, bool) {
	oldest, _, ok := t.memory.bounds(p)
	if r := t.redisStore(); r != nil {
		ctx, cancel := context.WithTimeout(ctx, boundsTimeout)
		defer cancel()
		if ro, _, rok, err := r.Bounds(ctx, p); err == nil && rok && (!ok || ro < oldest) {
			oldest, ok = ro, true
		}
	}
	return oldest, ok
}

// ProveStale reports whether a cursor 'after' of p is older than anything any
// tier retains (after+1 < oldest), and that oldest retained offset. A cursor
// the replay window covers (memory holds the records right after it, as when
// only transaction markers lie between, or the window starts at or before
// after+1) is answered without asking Kafka. Otherwise only Kafka's log
// start, reported at most ProofMaxAge ago, decides: when Kafka cannot be
// asked the error wraps ErrUnavailable and nothing is stale.
func (t *Tiers) ProveStale(ctx context.Context, p int32, after int64) (oldest int64, stale bool, err error) {
	if _, covered, _ := t.memory.readInto(p, after, 1, 1, nil); covered {
		return after + 1, false, nil
	}
	oldest, ok := t.WindowStart(ctx, p)
	if ok && after+1 >= oldest {
		return oldest, false, nil
	}
	d := t.deep()
	if d == nil {
		return 0, false, fmt.Errorf("replay: log start of p%d: %w: no Kafka tier", p, ErrUnavailable)
	}
	ls, err := d.LogStart(ctx, p, ProofMaxAge)
	if err != nil {
		return 0, false, fmt.Errorf("replay: log start of p%d: %w: %w", p, ErrUnavailable, err)
	}
	if !ok || ls < oldest {
		oldest = ls
	}
	return oldest, after+1 < oldest, nil
}

// Backlog returns the bytes of p after 'after' (what memory evicted of
// them estimated at its mean record size) and whether memory holds nothing
// to estimate them by (Memory.Backlog).
func (t *Tiers) Backlog(p int32, after int64) (int64, bool) {
	return t.memory.Backlog(p, after)
}

// ReadThreads reads p's records of threads after 'after' through the memory
// tier's thread index (Memory.ReadThreads): when covered, up to through
// nothing else of those threads exists; when not, read p with Page and
// filter.
func (t *Tiers) ReadThreads(p int32, after int64, threads []string, lim Limit, buf []*Record) (recs []*Record, through int64, covered bool) {
	return t.memory.ReadThreads(p, after, threads, lim, buf)
}

// ReadTypes reads p's records of the message types and event types q
// selects after 'after' through the memory tier's type index
// (Memory.ReadTypes), with ReadThreads' coverage rule.
func (t *Tiers) ReadTypes(p int32, after int64, q TypeQuery, lim Limit, buf []*Record) (recs []*Record, through int64, covered bool) {
	return t.memory.ReadTypes(p, after, q, lim, buf)
}

// Runs answers the run index from the memory tier (Memory.Runs).
func (t *Tiers) Runs(q RunQuery) (runs []Run, more bool) { return t.memory.Runs(q) }

// RunOf returns one thread's run-index entry (Memory.RunOf).
func (t *Tiers) RunOf(thread string) (Run, bool) { return t.memory.RunOf(thread) }
