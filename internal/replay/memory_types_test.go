package replay

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// Message types and event types of the tests (the envelope's field
// numbers, dashstream's EventType values; the index does not interpret
// them).
const (
	tEvent     = 1
	tStateDiff = 2
	tToken     = 3
	tBatch     = 8
)

// typed returns r as a record of message type typ carrying one event per
// event type (lined up with Threads, as the consumer sets them).
func typed(r *Record, typ uint8, events ...int32) *Record {
	r.Type, r.EventTypes = typ, events
	for i := range events {
		r.Threads = append(r.Threads, ThreadSeq{Thread: "t" + strconv.Itoa(i), Sequence: uint64(r.Offset + 1)})
	}
	if len(events) == 0 {
		r.Threads = []ThreadSeq{{Thread: "t", Sequence: uint64(r.Offset + 1)}}
	}
	r.Frame = []byte("frame-" + strconv.FormatInt(r.Offset, 10))
	return r
}

// selects is TypeQuery's meaning written out independently: the record's
// type is listed (or no types are) and, when events are listed, one of its
// events is.
func selects(types uint16, events []int32, r *Record) bool {
	if types != 0 && !slices.ContainsFunc(typeBits(types), func(t uint8) bool { return t == r.Type }) {
		return false
	}
	return len(events) == 0 || slices.ContainsFunc(r.EventTypes, func(e int32) bool { return slices.Contains(events, e) })
}

func typeBits(types uint16) []uint8 {
	var out []uint8
	for t := range uint8(16) {
		if types&(1<<t) != 0 {
			out = append(out, t)
		}
	}
	return out
}

func TestMemoryReadTypes(t *testing.T) {
	m := NewMemory(MemoryConfig{PerPartition: 10})
	// p0 offsets 0..19; memory keeps 10..19:
	//   10 event NODE_START(1)       15 batch [1 2 1]  (NODE_START twice: listed once)
	//   11 state_diff                16 skipped (type 0)
	//   12 event NODE_END(2)         17 token
	//   13 token                     18 batch [3]
	//   14 event NODE_START(1)       19 state_diff
	for o := int64(0); o < 10; o++ {
		m.add([]*Record{typed(rec(0, o, o-1), tEvent, 1)})
	}
	m.add([]*Record{
		typed(rec(0, 10, 9), tEvent, 1), typed(rec(0, 11, 10), tStateDiff), typed(rec(0, 12, 11), tEvent, 2),
		typed(rec(0, 13, 12), tToken), typed(rec(0, 14, 13), tEvent, 1), typed(rec(0, 15, 14), tBatch, 1, 2, 1),
		{Partition: 0, Offset: 16, Prev: 15, Skipped: "decode", Frame: []byte("skipped")},
		typed(rec(0, 17, 16), tToken), typed(rec(0, 18, 17), tBatch, 3), typed(rec(0, 19, 18), tStateDiff),
	})
	all := Limit{Records: 100, Bytes: 1 << 20}
	cases := []struct {
		name    string
		after   int64
		q       TypeQuery
		lim     Limit
		want    []int64
		through int64
		covered bool
	}{
		{"one type", 9, TypeQuery{Types: 1 << tStateDiff}, all, []int64{11, 19}, 19, true},
		{"two types once each", 9, TypeQuery{Types: 1<<tToken | 1<<tBatch}, all, []int64{13, 15, 17, 18}, 19, true},
		{"one event type: events and batches", 9, TypeQuery{Events: []int32{1}}, all, []int64{10, 14, 15}, 19, true},
		{"two event types: a batch of both once", 9, TypeQuery{Events: []int32{2, 1}}, all, []int64{10, 12, 14, 15}, 19, true},
		{"types and events: both must hold", 9, TypeQuery{Types: 1 << tBatch, Events: []int32{1, 3}}, all, []int64{15, 18}, 19, true},
		{"types and events that exclude each other", 9, TypeQuery{Types: 1 << tStateDiff, Events: []int32{1}}, all, nil, 19, true},
		{"after a position", 14, TypeQuery{Events: []int32{1}}, all, []int64{15}, 19, true},
		{"none matching: the position still moves", 9, TypeQuery{Events: []int32{42}}, all, nil, 19, true},
		{"records bound", 9, TypeQuery{Types: 1<<tEvent | 1<<tToken}, Limit{Records: 2, Bytes: 1 << 20}, []int64{10, 12}, 12, true},
		{"bytes bound", 9, TypeQuery{Types: 1 << tEvent}, Limit{Records: 100, Bytes: 1}, []int64{10}, 10, true},
		{"last match at the bound", 12, TypeQuery{Types: 1 << tToken}, Limit{Records: 2, Bytes: 1 << 20}, []int64{13, 17}, 19, true},
		{"at the head", 19, TypeQuery{Types: 1 << tToken}, all, nil, 19, true},
		{"below the window", 5, TypeQuery{Types: 1 << tEvent}, all, nil, 5, false},
		{"no field: not served", 9, TypeQuery{}, all, nil, 9, false},
		{"unknown partition", 0, TypeQuery{Types: 1 << tEvent}, all, nil, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := int32(0)
			if tc.name == "unknown partition" {
				p = 7
			}
			recs, through, covered := m.ReadTypes(p, tc.after, tc.q, tc.lim, nil)
			checkIndexedRead(t, recs, through, covered, tc.want, tc.through, tc.covered)
		})
	}
}

// A missing range inside what memory holds is never crossed by a read
// through the type index either.
func TestMemoryReadTypesMissingRange(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	m.add([]*Record{typed(rec(0, 0, -1), tToken), typed(rec(0, 1, 0), tToken), typed(rec(0, 5, 3), tToken)})
	q := TypeQuery{Types: 1 << tToken}
	if recs, through, covered := m.ReadTypes(0, -1, q, Limit{Records: 10, Bytes: 1 << 20}, nil); covered || len(recs) != 0 || through != -1 {
		t.Fatalf("across 2..3: %v through %d covered %v", offsets(recs), through, covered)
	}
	recs, through, covered := m.ReadTypes(0, 3, q, Limit{Records: 10, Bytes: 1 << 20}, nil)
	if !covered || !slices.Equal(offsets(recs), []int64{5}) || through != 5 {
		t.Fatalf("after the range: %v through %d covered %v", offsets(recs), through, covered)
	}
}

// ReadTypes agrees with a filtered Read at every position, and paging
// through it from before the window to the head returns every selected
// record once, on random logs of every type (Events, EventBatches of
// several event types, skipped records), with markers (offsets never
// returned) and evictions by count and by bytes over several partitions;
// the index holds exactly the records held.
func TestMemoryReadTypesMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for round := range 30 {
		m := NewMemory(MemoryConfig{PerPartition: 5 + rng.IntN(40), MaxBytes: 40*recSize + rng.IntN(80*recSize)})
		next := map[int32]int64{}
		for range 400 {
			p := int32(rng.IntN(3))
			o := next[p] + int64(rng.IntN(2)) // a skipped offset: a transaction marker
			m.add([]*Record{randomTyped(rng, rec(p, o, next[p]-1))})
			next[p] = o + 1
			if rng.IntN(50) == 0 {
				checkTypeIndex(t, m)
			}
		}
		checkTypeIndex(t, m)
		for p := range int32(3) {
			q := randomQuery(rng)
			lim := Limit{Records: 1 + rng.IntN(6), Bytes: 1 << 20}
			compareTypesWithScan(t, m, p, q, lim, round)
			pageTypes(t, m, p, q, lim, round)
		}
	}
}

// randomTyped makes r an Event, an EventBatch of 1..4 events, a skipped
// record or a record of another type, at random.
func randomTyped(rng *rand.Rand, r *Record) *Record {
	switch rng.IntN(5) {
	case 0:
		return typed(r, tEvent, int32(rng.IntN(6)))
	case 1:
		events := make([]int32, 1+rng.IntN(4))
		for i := range events {
			events[i] = int32(rng.IntN(6))
		}
		return typed(r, tBatch, events...)
	case 2:
		if rng.IntN(3) == 0 {
			r.Skipped, r.Value, r.Frame = "decode", nil, []byte("skipped")
			return r
		}
	}
	return typed(r, uint8(2+rng.IntN(8)))
}

func randomQuery(rng *rand.Rand) TypeQuery {
	var q TypeQuery
	if rng.IntN(3) != 0 {
		for range 1 + rng.IntN(3) {
			q.Types |= 1 << (1 + rng.IntN(9))
		}
	}
	if q.Types == 0 || rng.IntN(2) == 0 {
		for range 1 + rng.IntN(3) {
			q.Events = append(q.Events, int32(rng.IntN(7))) // 6: none carries it
		}
	}
	return q
}

func compareTypesWithScan(t *testing.T, m *Memory, p int32, q TypeQuery, lim Limit, round int) {
	t.Helper()
	compareIndexedWithScan(t, m, p, 2, fmt.Sprintf("%+v", q), lim, round,
		func(r *Record) bool { return selects(q.Types, q.Events, r) },
		func(after int64) ([]*Record, int64, bool) { return m.ReadTypes(p, after, q, lim, nil) })
}

// pageTypes reads p through the type index page by page, as a client
// following q does, from just before the window to the head.
func pageTypes(t *testing.T, m *Memory, p int32, q TypeQuery, lim Limit, round int) {
	t.Helper()
	oldest, newest, ok := m.bounds(p)
	if !ok {
		return
	}
	held, _ := readN(m, p, oldest-1, math.MaxInt, math.MaxInt)
	var want, got []int64
	for _, r := range held {
		if selects(q.Types, q.Events, r) {
			want = append(want, r.Offset)
		}
	}
	for after := oldest - 1; after < newest; {
		recs, through, covered := m.ReadTypes(p, after, q, lim, nil)
		if !covered || through <= after {
			t.Fatalf("round %d p%d: stuck at %d (through %d, covered %v)", round, p, after, through, covered)
		}
		got = append(got, offsets(recs)...)
		after = through
	}
	if !slices.Equal(got, want) && len(got)+len(want) > 0 {
		t.Fatalf("round %d p%d %+v: paged %v, want %v", round, p, q, got, want)
	}
}

// checkTypeIndex checks that the type index lists exactly the records held,
// in offset order, keeps no event type none of them carries and no more
// dead entries than it compacts away.
func checkTypeIndex(t *testing.T, m *Memory) {
	t.Helper()
	for p := range m.parts {
		held, _ := readN(m, p, -1, math.MaxInt, math.MaxInt)
		wantEntries := 0
		events := map[int32]bool{}
		for _, r := range held {
			wantEntries++ // its type (all below 16 here)
			seen := map[int32]bool{}
			for _, e := range r.EventTypes {
				if !seen[e] {
					seen[e] = true
					wantEntries++
				}
				events[e] = true
			}
		}
		m.mu.RLock()
		x := &m.parts[p].types
		n := x.entries()
		var lists []*recList
		for i := range x.byType {
			lists = append(lists, &x.byType[i])
		}
		for e, l := range x.byEvent {
			if !events[e] {
				t.Errorf("p%d: the index keeps event type %d, no record held carries", p, e)
			}
			lists = append(lists, l)
		}
		for _, l := range lists {
			if !slices.IsSortedFunc(l.live(), func(a, b *Record) int { return int(a.Offset - b.Offset) }) {
				t.Errorf("p%d: a list out of offset order", p)
			}
			if l.head > 32 && l.head*2 > len(l.recs) {
				t.Errorf("p%d: %d dead entries in front of %d", p, l.head, len(l.recs))
			}
		}
		m.mu.RUnlock()
		if n != wantEntries {
			t.Fatalf("p%d: the index holds %d entries, the %d records held %d", p, n, len(held), wantEntries)
		}
	}
}

// Clear and Reset empty the type index with the records.
func TestMemoryTypeIndexCleared(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	m.add([]*Record{typed(rec(0, 0, -1), tEvent, 1), typed(rec(0, 1, 0), tBatch, 1, 2)})
	if err := m.Clear(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkTypeIndex(t, m)
	m.add([]*Record{typed(rec(0, 0, -1), tEvent, 1)})
	recs, through, covered := m.ReadTypes(0, -1, TypeQuery{Events: []int32{1}}, Limit{Records: 10}, nil)
	if !covered || !slices.Equal(offsets(recs), []int64{0}) || through != 0 {
		t.Fatalf("after Clear: %v through %d covered %v", offsets(recs), through, covered)
	}
	m.Reset()
	checkTypeIndex(t, m)
	if recs, _, _ := m.ReadTypes(0, -1, TypeQuery{Events: []int32{1}}, Limit{Records: 10}, nil); len(recs) != 0 {
		t.Fatalf("after Reset: %v", offsets(recs))
	}
}

// BenchmarkMemoryReadTypes reads one rare type's records out of a full
// partition of other types: the cost follows the matching records.
func BenchmarkMemoryReadTypes(b *testing.B) {
	m := NewMemory(MemoryConfig{PerPartition: 10000})
	for o := range int64(10000) {
		typ := uint8(tToken)
		if o%100 == 0 {
			typ = tStateDiff
		}
		m.add([]*Record{typed(rec(0, o, o-1), typ)})
	}
	q := TypeQuery{Types: 1 << tStateDiff}
	var buf []*Record
	b.ReportAllocs()
	for b.Loop() {
		recs, _, _ := m.ReadTypes(0, -1, q, Limit{Records: 512, Bytes: 1 << 20}, buf)
		buf = recs[:0]
	}
}
