package replaytest

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// withThreads returns r carrying ts.
func withThreads(r *replay.Record, ts ...replay.ThreadSeq) *replay.Record {
	r.Threads = ts
	return r
}

func ts(thread string, seq uint64) replay.ThreadSeq {
	return replay.ThreadSeq{Thread: thread, Sequence: seq}
}

func ref(seq uint64, p int32, o int64) replay.Ref {
	return replay.Ref{Sequence: seq, Partition: p, Offset: o}
}

func wantRefs(t *testing.T, what string, got, want []replay.Ref) {
	t.Helper()
	if !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
		t.Fatalf("%s: refs %v, want %v", what, got, want)
	}
}

// Thread ids are untrusted: any bytes, any length, key-like characters.
var oddThreads = []string{"", "a", "ab", "a:b}{*?[x]\\", "ünïcødé ✓", "\x00\xff\n", strings.Repeat("long", 300)}

func testThreadsRoundTrip(t *testing.T, e *env) {
	var recs []*replay.Record
	for i, th := range oddThreads {
		o := int64(i)
		recs = append(recs, withThreads(rec(0, o, o-1), ts(th, uint64(i+1)), ts("other", math.MaxUint64-uint64(i))))
	}
	e.appendRecs(recs...)
	got, _ := e.read(0, -1, all)
	wantOffsets(t, "p0", got, span(0, int64(len(recs)-1)))
	for i := range recs {
		sameRecord(t, got[i], recs[i])
	}
	for i, th := range oddThreads {
		wantRefs(t, "thread "+th, e.refs(th, 0, 100), []replay.Ref{ref(uint64(i+1), 0, int64(i))})
	}
	wantRefs(t, "unknown thread", e.refs("nobody", 0, 100), nil)
}

func testThreadRefsExact(t *testing.T, e *env) {
	const m = math.MaxUint64
	seqs := []uint64{1, 1 << 53, 1<<53 + 1, 1 << 63, m - 1, m}
	var recs []*replay.Record
	for i, s := range seqs {
		o := int64(i)
		recs = append(recs, withThreads(rec(1, o, o-1), ts("T", s)))
	}
	e.appendRecs(recs...)
	var want []replay.Ref
	for i, s := range seqs {
		want = append(want, ref(s, 1, int64(i)))
	}
	wantRefs(t, "after 0", e.refs("T", 0, 100), want)
	wantRefs(t, "after 2^53", e.refs("T", 1<<53, 100), want[2:])
	wantRefs(t, "after 2^64-2", e.refs("T", m-1, 100), want[5:])
	wantRefs(t, "after 2^64-1", e.refs("T", m, 100), nil)
	wantRefs(t, "max 2", e.refs("T", 0, 2), want[:2])
}

// Several threads per record (an EventBatch), several events of one thread
// in one record, pages by sequence.
func testThreadRefsPaging(t *testing.T, e *env) {
	var recs []*replay.Record
	for o := int64(0); o < 20; o++ {
		s := uint64(2*o + 1)
		recs = append(recs, withThreads(rec(0, o, o-1), ts("A", s), ts("A", s+1), ts("B", uint64(o+100))))
	}
	e.appendRecs(recs...)
	var got []replay.Ref
	for after := uint64(0); ; {
		page := e.refs("A", after, 3)
		if len(page) == 0 {
			break
		}
		if len(page) > 3 {
			t.Fatalf("page of %d refs, max 3", len(page))
		}
		got = append(got, page...)
		after = page[len(page)-1].Sequence
	}
	var want []replay.Ref
	for o := int64(0); o < 20; o++ {
		want = append(want, ref(uint64(2*o+1), 0, o), ref(uint64(2*o+2), 0, o))
	}
	wantRefs(t, "A in pages of 3", got, want)
	wantRefs(t, "B after 117", e.refs("B", 117, 10), []replay.Ref{ref(118, 0, 18), ref(119, 0, 19)})
}

func testThreadRefsPartitions(t *testing.T, e *env) {
	e.appendRecs(
		withThreads(rec(0, 5, 4), ts("T", 1)),
		withThreads(rec(1, 3, 2), ts("T", 2)),
		withThreads(rec(2, 9, 8), ts("T", 3), ts("U", 1)),
		withThreads(rec(0, 6, 5), ts("T", 4)),
	)
	wantRefs(t, "T", e.refs("T", 0, 10), []replay.Ref{ref(1, 0, 5), ref(2, 1, 3), ref(3, 2, 9), ref(4, 0, 6)})
	wantRefs(t, "U", e.refs("U", 0, 10), []replay.Ref{ref(1, 2, 9)})
}
