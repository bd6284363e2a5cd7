package replaytest

import (
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/dashflow/dashstream-gateway/internal/replay"
)

var all = replay.Limit{Records: 1000, Bytes: 64 << 20}

func testOrdering(t *testing.T, e *env) {
	p0, p1 := chain(0, 0, 9), chain(1, 100, 109)
	for i := 0; i < 10; i += 5 { // interleaved batches of both partitions
		e.appendTo(e.s, append(append([]*replay.Record{}, p0[i:i+5]...), p1[i:i+5]...)...)
	}
	e.flush(e.s)
	got, covered := e.read(0, -1, all)
	wantOffsets(t, "p0", got, span(0, 9))
	if !covered {
		t.Fatal("p0 from -1: not covered")
	}
	got, _ = e.read(1, 99, all)
	wantOffsets(t, "p1", got, span(100, 109))
	if got, _ := e.read(2, -1, all); len(got) != 0 {
		t.Fatalf("unknown partition: %d records", len(got))
	}
}

func testFieldsRoundTrip(t *testing.T, e *env) {
	want := []*replay.Record{
		{Partition: 3, Offset: 0, Prev: -1, Value: []byte{0, 1, 2, 0xff, 0}, TimestampUs: math.MaxInt64},
		{Partition: 3, Offset: 1, Prev: 0, Value: []byte(strings.Repeat("x", 70000)), TimestampUs: 0, Tenant: "acme"},
		{Partition: 3, Offset: 2, Prev: 1, Value: []byte("v"), TimestampUs: -5, Tenant: "tenant ü {x}:",
			Threads: []replay.ThreadSeq{{Thread: "t-1", Sequence: 1}, {Thread: "t-2", Sequence: math.MaxUint64}}},
	}
	e.appendRecs(want...)
	got, _ := e.read(3, -1, all)
	wantOffsets(t, "p3", got, []int64{0, 1, 2})
	for i := range want {
		sameRecord(t, got[i], want[i])
	}
}

func testOffsetsExact(t *testing.T, e *env) {
	const m = math.MaxInt64
	recs := []*replay.Record{rec(0, 0, -1), rec(0, 1, 0), rec(0, m-2, 1), rec(0, m-1, m-2), rec(0, m, m-1)}
	e.appendRecs(recs...)
	got, covered := e.read(0, -1, all)
	wantOffsets(t, "from -1", got, []int64{0, 1, m - 2, m - 1, m})
	if !covered {
		t.Fatal("from -1: not covered (Prev 1 of offset 2^63-3 is not a hole)")
	}
	for i := range recs {
		sameRecord(t, got[i], recs[i])
	}
	got, _ = e.read(0, 0, all)
	wantOffsets(t, "after 0", got, []int64{1, m - 2, m - 1, m})
	got, _ = e.read(0, m-2, all)
	wantOffsets(t, "after 2^63-3", got, []int64{m - 1, m})
	got, covered = e.read(0, m, all)
	if len(got) != 0 || !covered {
		t.Fatalf("after 2^63-1: %v covered=%v, want nothing, covered", offsets(got), covered)
	}
	e.wantBounds(0, 0, m)
}

func testPerPartitionBound(t *testing.T, e *env) {
	per := int64(e.opts.PerPartition)
	if per == 0 {
		t.Skip("store has no per-partition bound")
	}
	n := 3*per + 5
	for from := int64(0); from < n; from += 7 { // many small writes
		e.appendTo(e.s, chain(0, from, min(from+6, n-1))...)
	}
	e.appendTo(e.s, chain(1, 0, 2)...)
	e.flush(e.s)
	e.wantBounds(0, n-per, n-1)
	e.wantBounds(1, 0, 2)
	got, covered := e.read(0, -1, all)
	wantOffsets(t, "p0", got, span(n-per, n-1))
	if covered {
		t.Fatal("p0 from -1 covered although the oldest records were trimmed")
	}
	if _, covered := e.read(0, n-per-1, all); !covered {
		t.Fatal("p0 from the oldest held record's Prev: not covered")
	}
}

func testDuplicateWrites(t *testing.T, e *env) {
	e.appendRecs(chain(0, 0, 9)...)
	e.appendRecs(chain(0, 0, 9)...)
	e.appendRecs(chain(0, 5, 15)...)
	e.appendRecs(rec(0, 15, 14))
	got := e.readAll(0, -1, replay.Limit{Records: 4, Bytes: 1 << 20})
	wantOffsets(t, "p0", got, span(0, 15))
}

func testConcurrentDuplicateWriters(t *testing.T, e *env) {
	peer := e.s
	if e.opts.Peer != nil {
		peer = e.opts.Peer(t, e.s)
	}
	recs := chain(0, 0, 299)
	var wg sync.WaitGroup
	c := ctx(t)
	for _, s := range []replay.Store{e.s, peer} {
		wg.Go(func() {
			for i := 0; i < len(recs); i += 10 {
				if err := s.Append(c, recs[i:i+10]); err != nil {
					t.Errorf("Append: %v", err)
				}
			}
		})
	}
	wg.Wait()
	e.flush(e.s)
	e.flush(peer)
	oldest := e.oldestKept(300)
	got := e.readAll(0, oldest-1, replay.Limit{Records: 64, Bytes: 1 << 20})
	wantOffsets(t, "p0", got, span(oldest, 299))
	for i := range got {
		sameRecord(t, got[i], recs[oldest+int64(i)])
	}
}

func testOlderIgnored(t *testing.T, e *env) {
	e.appendRecs(chain(0, 10, 19)...)
	e.appendRecs(chain(0, 5, 7)...)
	changed := rec(0, 15, 14)
	changed.Value = []byte("changed")
	e.appendRecs(changed)
	e.wantBounds(0, 10, 19)
	got, _ := e.read(0, -1, all)
	wantOffsets(t, "p0", got, span(10, 19))
	sameRecord(t, got[5], rec(0, 15, 14))
}

func testPagingRecords(t *testing.T, e *env) {
	e.appendRecs(chain(0, 0, 49)...)
	got, _ := e.read(0, 10, replay.Limit{Records: 3, Bytes: 1 << 20})
	wantOffsets(t, "after 10, 3 records", got, []int64{11, 12, 13})
	got, _ = e.read(0, 48, replay.Limit{Records: 3, Bytes: 1 << 20})
	wantOffsets(t, "after 48", got, []int64{49})
	got = e.readAll(0, -1, replay.Limit{Records: 7, Bytes: 1 << 20})
	wantOffsets(t, "pages of 7", got, span(0, 49))
	got, _ = e.read(0, -1, replay.Limit{Records: 1, Bytes: 1 << 20})
	wantOffsets(t, "1 record", got, []int64{0})
}

func testPagingBytes(t *testing.T, e *env) {
	var recs []*replay.Record
	for o := range int64(40) {
		r := rec(0, o, o-1)
		r.Value = []byte(strings.Repeat("v", 200))
		r.Frame = []byte(strings.Repeat("f", 260))
		recs = append(recs, r)
	}
	e.appendRecs(recs...)
	got, _ := e.read(0, -1, replay.Limit{Records: 100, Bytes: 1})
	wantOffsets(t, "1 byte", got, []int64{0})
	got, _ = e.read(0, -1, replay.Limit{Records: 100, Bytes: 1500})
	if len(got) < 2 || len(got) > 10 {
		t.Fatalf("1500 bytes of ~260-byte records: %d records", len(got))
	}
	got = e.readAll(0, -1, replay.Limit{Records: 100, Bytes: 1500})
	wantOffsets(t, "pages of 1500 bytes", got, span(0, 39))
}

func testCoveredEmpty(t *testing.T, e *env) {
	got, covered := e.read(0, -1, all)
	if len(got) != 0 || !covered {
		t.Fatalf("empty store: %d records, covered=%v; want none, covered", len(got), covered)
	}
	e.appendRecs(chain(0, 0, 4)...)
	if got, covered := e.read(0, 4, all); len(got) != 0 || !covered {
		t.Fatalf("after the newest: %d records, covered=%v; want none, covered", len(got), covered)
	}
	if _, covered := e.read(0, -1, all); !covered {
		t.Fatal("from -1 with offset 0 first (Prev -1): not covered")
	}
}

// Offsets the broker never returns (transaction markers) are not holes:
// Prev jumps over them.
func testCoveredMarkerHoles(t *testing.T, e *env) {
	e.appendRecs(rec(0, 0, -1), rec(0, 1, 0), rec(0, 2, 1), rec(0, 5, 2), rec(0, 6, 5), rec(0, 9, 6))
	got, covered := e.read(0, -1, all)
	wantOffsets(t, "from -1", got, []int64{0, 1, 2, 5, 6, 9})
	if !covered {
		t.Fatal("from -1: not covered")
	}
	for _, after := range []int64{2, 3, 4, 7, 8} {
		if _, covered := e.read(0, after, all); !covered {
			t.Fatalf("after %d (a marker offset): not covered", after)
		}
	}
	got = e.readAll(0, -1, replay.Limit{Records: 1, Bytes: 1 << 20})
	wantOffsets(t, "one by one", got, []int64{0, 1, 2, 5, 6, 9})
}

// A real hole (a record whose Prev is not held) ends a page in front of it
// and is reported as not covered by the read that starts before it.
func testCoveredRealHole(t *testing.T, e *env) {
	e.appendRecs(rec(0, 0, -1), rec(0, 1, 0), rec(0, 2, 1), rec(0, 6, 5), rec(0, 7, 6))
	got, covered := e.read(0, -1, all)
	wantOffsets(t, "from -1", got, []int64{0, 1, 2})
	if !covered {
		t.Fatal("from -1: not covered")
	}
	for after, want := range map[int64]bool{2: false, 4: false, 5: true, 6: true} {
		got, covered := e.read(0, after, all)
		if covered != want || len(got) == 0 || got[len(got)-1].Offset != 7 {
			t.Fatalf("after %d: %v covered=%v, want ..7 covered=%v", after, offsets(got), covered, want)
		}
	}
}

// Prev -1 (unknown) means offset-1.
func testCoveredUnknownPrev(t *testing.T, e *env) {
	e.appendRecs(rec(0, 10, -1), rec(0, 11, -1), rec(0, 13, -1))
	if _, covered := e.read(0, 9, all); !covered {
		t.Fatal("after 9: not covered")
	}
	if _, covered := e.read(0, 8, all); covered {
		t.Fatal("after 8: covered although 9 is not held")
	}
	got, _ := e.read(0, 9, all)
	wantOffsets(t, "after 9", got, []int64{10, 11})
	if _, covered := e.read(0, 11, all); covered {
		t.Fatal("after 11: covered although 12 is not held")
	}
}

func testSkipped(t *testing.T, e *env) {
	skipped := &replay.Record{Partition: 0, Offset: 1, Prev: 0, Skipped: "bad_zstd", TimestampUs: 42}
	e.appendRecs(rec(0, 0, -1), skipped, rec(0, 2, 1))
	got, covered := e.read(0, -1, all)
	wantOffsets(t, "p0", got, []int64{0, 1, 2})
	if !covered {
		t.Fatal("not covered")
	}
	sameRecord(t, got[1], skipped)
	if len(got[1].Value) != 0 || got[0].Skipped != "" {
		t.Fatalf("skipped marker has a value, or a record has a kind: %+v %+v", got[1], got[0])
	}
}
