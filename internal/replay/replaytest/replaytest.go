// Package replaytest is the conformance suite every writable replay store
// (replay.Store) must pass: ordering, exact int64 offsets and uint64
// sequences, bounds, idempotent writes, paging, covered semantics, skipped
// markers, the thread index, Clear, expiry and concurrency under -race.
//
// A store's test calls Run with a constructor that returns a fresh, empty
// store per subtest. Asynchronous stores provide Options.Flush.
//
// WindowKafka stands in for the Kafka tier in tests that run without a
// broker.
package replaytest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// Options describe the store under test.
type Options struct {
	// PerPartition is the store's per-partition record bound, at least 16.
	// Zero skips the bound test (and concurrency tests assume no bound).
	PerPartition int
	// Flush waits until s holds everything appended to it so far. Nil for a
	// store whose Append is synchronous.
	Flush func(t *testing.T, s replay.Store)
	// Peer returns a second store over the same data as s, as another
	// gateway instance would open it. Nil: s itself is shared by the
	// concurrent writers.
	Peer func(t *testing.T, s replay.Store) replay.Store
	// TTL is the store's configured expiry after the last write; zero for a
	// store without expiry.
	TTL time.Duration
	// Expire checks that everything s holds expires within TTL and then
	// makes it expire (by waiting, or by forcing it). Nil skips the expiry
	// test.
	Expire func(t *testing.T, s replay.Store)
}

// Run runs the suite; newStore returns a fresh, empty store for one subtest
// and registers its cleanup on t.
func Run(t *testing.T, newStore func(t *testing.T) replay.Store, opts Options) {
	cases := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"Ordering", testOrdering},
		{"FieldsRoundTrip", testFieldsRoundTrip},
		{"OffsetsExact", testOffsetsExact},
		{"PerPartitionBound", testPerPartitionBound},
		{"DuplicateWrites", testDuplicateWrites},
		{"ConcurrentDuplicateWriters", testConcurrentDuplicateWriters},
		{"OlderThanNewestIgnored", testOlderIgnored},
		{"PagingRecords", testPagingRecords},
		{"PagingBytes", testPagingBytes},
		{"CoveredEmpty", testCoveredEmpty},
		{"CoveredMarkerHoles", testCoveredMarkerHoles},
		{"CoveredRealHole", testCoveredRealHole},
		{"CoveredUnknownPrev", testCoveredUnknownPrev},
		{"SkippedMarkers", testSkipped},
		{"ThreadsRoundTrip", testThreadsRoundTrip},
		{"ThreadRefsExact", testThreadRefsExact},
		{"ThreadRefsPaging", testThreadRefsPaging},
		{"ThreadRefsAcrossPartitions", testThreadRefsPartitions},
		{"Bounds", testBounds},
		{"Clear", testClear},
		{"Expiry", testExpiry},
		{"ConcurrentWritersReaders", testConcurrent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, &env{t: t, s: newStore(t), opts: opts})
		})
	}
}

// env is one subtest's store with helpers that fail the test on error.
type env struct {
	t    *testing.T
	s    replay.Store
	opts Options
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// appendRecs appends and flushes.
func (e *env) appendRecs(recs ...*replay.Record) {
	e.t.Helper()
	e.appendTo(e.s, recs...)
	e.flush(e.s)
}

func (e *env) appendTo(s replay.Store, recs ...*replay.Record) {
	e.t.Helper()
	if err := s.Append(ctx(e.t), recs); err != nil {
		e.t.Fatalf("Append: %v", err)
	}
}

func (e *env) flush(s replay.Store) {
	e.t.Helper()
	if e.opts.Flush != nil {
		e.opts.Flush(e.t, s)
	}
}

func (e *env) read(p int32, after int64, lim replay.Limit) ([]*replay.Record, bool) {
	e.t.Helper()
	recs, covered, err := e.s.Read(ctx(e.t), p, after, lim)
	if err != nil {
		e.t.Fatalf("Read(p%d, after %d, %+v): %v", p, after, lim, err)
	}
	checkPage(e.t, recs, p, after, lim)
	return recs, covered
}

// readAll pages through p from after with lim until a page is empty.
func (e *env) readAll(p int32, after int64, lim replay.Limit) []*replay.Record {
	e.t.Helper()
	var all []*replay.Record
	for range 100000 {
		recs, _ := e.read(p, after, lim)
		if len(recs) == 0 {
			return all
		}
		all = append(all, recs...)
		after = recs[len(recs)-1].Offset
	}
	e.t.Fatalf("readAll p%d: does not end", p)
	return nil
}

// checkPage checks what every page must satisfy.
func checkPage(t *testing.T, recs []*replay.Record, p int32, after int64, lim replay.Limit) {
	t.Helper()
	if lim.Records > 0 && len(recs) > lim.Records {
		t.Fatalf("page of %d records, limit %d", len(recs), lim.Records)
	}
	last := after
	for _, r := range recs {
		if r.Partition != p || r.Offset <= last {
			t.Fatalf("page after %d: record p%d/%d follows %d (want p%d, ascending)", after, r.Partition, r.Offset, last, p)
		}
		last = r.Offset
	}
}

func (e *env) bounds(p int32) (int64, int64, bool) {
	e.t.Helper()
	o, n, ok, err := e.s.Bounds(ctx(e.t), p)
	if err != nil {
		e.t.Fatalf("Bounds(p%d): %v", p, err)
	}
	return o, n, ok
}

func (e *env) wantBounds(p int32, oldest, newest int64) {
	e.t.Helper()
	o, n, ok := e.bounds(p)
	if !ok || o != oldest || n != newest {
		e.t.Fatalf("Bounds(p%d) = %d..%d ok=%v, want %d..%d", p, o, n, ok, oldest, newest)
	}
}

func (e *env) refs(thread string, after uint64, limit int) []replay.Ref {
	e.t.Helper()
	refs, err := e.s.ThreadRefs(ctx(e.t), thread, after, limit)
	if err != nil {
		e.t.Fatalf("ThreadRefs(after %d, limit %d): %v", after, limit, err)
	}
	return refs
}

// oldestKept is the oldest offset a partition holds after offsets 0..n-1
// were written.
func (e *env) oldestKept(n int64) int64 {
	if e.opts.PerPartition == 0 {
		return 0
	}
	return max(0, n-int64(e.opts.PerPartition))
}

// rec builds a record of p at offset o after prev, with a value and a frame
// derived from both.
func rec(p int32, o, prev int64) *replay.Record {
	v := fmt.Appendf(nil, "value p%d o%d", p, o)
	return &replay.Record{
		Partition: p, Offset: o, Prev: prev, Value: v, TimestampUs: o*1000 + 7,
		Frame: append([]byte("frame:"), v...),
	}
}

// chain builds contiguous records from..to of p.
func chain(p int32, from, to int64) []*replay.Record {
	var out []*replay.Record
	for o := from; o <= to; o++ {
		out = append(out, rec(p, o, o-1))
	}
	return out
}

func offsets(recs []*replay.Record) []int64 {
	out := make([]int64, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Offset)
	}
	return out
}

func span(from, to int64) []int64 {
	var out []int64
	for o := from; o <= to; o++ {
		out = append(out, o)
	}
	return out
}

func wantOffsets(t *testing.T, what string, recs []*replay.Record, want []int64) {
	t.Helper()
	if got := offsets(recs); !slices.Equal(got, want) {
		t.Fatalf("%s: offsets %v, want %v", what, got, want)
	}
}

// sameRecord compares everything a store keeps (not Frame, which the
// caller encodes again).
func sameRecord(t *testing.T, got, want *replay.Record) {
	t.Helper()
	ok := got.Partition == want.Partition && got.Offset == want.Offset && got.Prev == want.Prev &&
		bytes.Equal(got.Value, want.Value) && got.Skipped == want.Skipped &&
		got.TimestampUs == want.TimestampUs && sameThreads(got.Threads, want.Threads) && got.Tenant == want.Tenant
	if !ok {
		t.Fatalf("record p%d/%d:\n got  %+v\n want %+v", want.Partition, want.Offset, got, want)
	}
}

func sameThreads(a, b []replay.ThreadSeq) bool {
	return len(a) == len(b) && (len(a) == 0 || slices.Equal(a, b))
}
