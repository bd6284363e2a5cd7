package replay

import (
	"context"
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
	// partition's log start offset (offsets below it are gone from Kafka).
	ReadAfter(ctx context.Context, p int32, after int64, max int) ([]*Record, int64, error)
	// LogStart is the partition's log start offset (recently cached).
	LogStart(ctx context.Context, p int32) (int64, error)
}

// Tiers reads a partition from the replay tiers in order — memory, then
// Redis, then Kafka — merging them by offset ranges so that no range is ever
// jumped over: what a tier does not hold is asked of the next one, and only
// what no tier holds becomes a Gap. Safe for concurrent use.
type Tiers struct {
	memory *Memory
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
	t := &Tiers{memory: memory}
	if kafka != nil {
		t.SetKafka(kafka)
	}
	return t
}

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
	n := t.memory.Append(recs)
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
func (t *Tiers) Page(ctx context.Context, p int32, after int64, lim Limit, buf []*Record) (Page, error) {
	recs, covered, newest := t.memory.read(p, after, lim.Records, lim.Bytes, buf)
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
	if d := t.deep(); d != nil {
		page, err := t.fromKafka(ctx, d, p, after, end, lim, recs)
		if page.Tier != TierMemory {
			clear(recs)
		}
		return page, err
	}
	return Page{Gap: &Gap{From: after + 1, To: end}, Records: recs, Tier: TierMemory}, nil
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
	for _, rec := range recs {
		rec.EncodeFrames()
	}
	return Page{Records: recs, Tier: TierRedis}, true
}

// fromKafka serves (after, end] from Kafka; what Kafka no longer retains is
// the only true gap.
func (t *Tiers) fromKafka(ctx context.Context, d DeepReader, p int32, after, end int64, lim Limit, mem []*Record) (Page, error) {
	recs, logStart, err := d.ReadAfter(ctx, p, after, max(lim.Records, 1))
	if err != nil {
		return Page{}, err
	}
	if after+1 < logStart {
		return Page{Gap: &Gap{From: after + 1, To: min(logStart-1, end)}}, nil
	}
	if recs = upTo(recs, end); len(recs) > 0 {
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

// Oldest returns the oldest offset of p's replay window (memory and Redis):
// where a client without a cursor for p starts.
func (t *Tiers) Oldest(p int32) (int64, bool) {
	oldest, _, ok := t.memory.Bounds(p)
	if r := t.redisStore(); r != nil {
		ctx, cancel := context.WithTimeout(context.Background(), boundsTimeout)
		defer cancel()
		if ro, _, rok, err := r.Bounds(ctx, p); err == nil && rok && (!ok || ro < oldest) {
			oldest, ok = ro, true
		}
	}
	return oldest, ok
}

// Retained returns the oldest offset of p that any tier, Kafka included,
// still holds: a cursor below it is stale.
func (t *Tiers) Retained(p int32) (int64, bool) {
	oldest, ok := t.Oldest(p)
	if d := t.deep(); d != nil {
		ctx, cancel := context.WithTimeout(context.Background(), boundsTimeout)
		defer cancel()
		if ls, err := d.LogStart(ctx, p); err == nil && (!ok || ls < oldest) {
			oldest, ok = ls, true
		}
	}
	return oldest, ok
}

// Stale reports whether a cursor 'after' of p is older than anything any
// tier retains (after+1 < oldest, and memory does not hold the records right
// after it either, as when only transaction markers lie between), and the
// oldest retained offset. One look-up of every tier serves both answers.
func (t *Tiers) Stale(p int32, after int64) (oldest int64, stale bool) {
	oldest, ok := t.Retained(p)
	if !ok || after+1 >= oldest {
		return oldest, false
	}
	_, covered := t.memory.Read(p, after, 1, 1)
	return oldest, !covered
}

// Backlog returns the bytes of p held in memory after 'after' and whether
// some of them are no longer in memory.
func (t *Tiers) Backlog(p int32, after int64) (int64, bool) {
	return t.memory.Backlog(p, after)
}
