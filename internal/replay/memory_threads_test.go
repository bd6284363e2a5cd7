package replay

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// threaded returns r carrying events of threads, each with the sequence
// seq (thread "" or sequence 0 are kept as given).
func threaded(r *Record, seq uint64, threads ...string) *Record {
	for _, th := range threads {
		r.Threads = append(r.Threads, ThreadSeq{Thread: th, Sequence: seq})
	}
	r.Frame = []byte("frame-" + strconv.FormatInt(r.Offset, 10))
	return r
}

// scanRefs is the thread index computed the slow way, from what memory
// holds: what ThreadRefs must answer.
func scanRefs(m *Memory, thread string, after uint64) []Ref {
	var refs []Ref
	for p := range m.parts {
		recs, _ := readN(m, p, -1, math.MaxInt, math.MaxInt)
		for _, r := range recs {
			for _, ts := range r.Threads {
				if ts.Thread == thread && ts.Sequence > after {
					refs = append(refs, Ref{Sequence: ts.Sequence, Partition: p, Offset: r.Offset})
				}
			}
		}
	}
	slices.SortFunc(refs, compareRefs)
	return refs
}

// holds reports whether a record memory holds carries an event of thread,
// with a sequence or without.
func holds(m *Memory, thread string) bool {
	for p := range m.parts {
		recs, _ := readN(m, p, -1, math.MaxInt, math.MaxInt)
		for _, r := range recs {
			for _, ts := range r.Threads {
				if ts.Thread == thread {
					return true
				}
			}
		}
	}
	return false
}

// checkIndex compares the index with a scan of the records held, and
// checks that it holds no thread (and no entry) beyond them.
func checkIndex(t *testing.T, m *Memory, threads []string) {
	t.Helper()
	held := map[string]bool{}
	for _, th := range threads {
		want := scanRefs(m, th, 0)
		got, _ := m.ThreadRefs(t.Context(), th, 0, math.MaxInt)
		if !slices.Equal(got, want) {
			t.Fatalf("thread %q: index %v, held %v", th, got, want)
		}
		held[th] = holds(m, th)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	entries := 0
	for th, tl := range m.threads {
		if !held[th] {
			t.Fatalf("index keeps thread %q, none of whose records is held", th)
		}
		n := 0
		for _, tp := range tl.parts {
			n += len(tp.live())
			if tp.head > 32 && tp.head*2 > len(tp.refs) {
				t.Fatalf("thread %q: %d dead entries in front of %d", th, tp.head, len(tp.refs))
			}
		}
		if n != tl.n {
			t.Fatalf("thread %q: counts %d entries, holds %d", th, tl.n, n)
		}
		entries += n
	}
	if entries > 4*m.total {
		t.Fatalf("%d index entries for %d records of at most four events each", entries, m.total)
	}
}

// The index is bounded by the records held: evicted by the per-partition
// count, by the byte bound, by Clear and Reset, a record's entries leave
// with it and a thread leaves with its last record.
func TestMemoryThreadIndexEvicted(t *testing.T) {
	threads := []string{"a", "b", "c", "d", "", "long-" + string(make([]byte, 300))}
	build := func(m *Memory, from, to int64) {
		for o := from; o <= to; o++ {
			th := threads[int(o)%len(threads)]
			r := threaded(rec(int32(o%3), o, o-3), uint64(o+1), th)
			if o%4 == 0 { // a batch: a second thread, and a second event of the first
				r.Threads = append(r.Threads, ThreadSeq{Thread: "batch", Sequence: uint64(o)}, ThreadSeq{Thread: th, Sequence: uint64(o + 2)})
			}
			if o%7 == 0 {
				r.Threads = append(r.Threads, ThreadSeq{Thread: "noseq"}) // sequence 0: indexed, never in ThreadRefs
			}
			m.add([]*Record{r})
		}
	}
	all := append(slices.Clone(threads), "batch", "noseq", "never")
	t.Run("per-partition count", func(t *testing.T) {
		m := NewMemory(MemoryConfig{PerPartition: 7})
		for to := int64(0); to < 300; to += 23 {
			build(m, to, to+22)
			checkIndex(t, m, all)
		}
		if n := m.Threads(); n > 21 {
			t.Fatalf("%d threads for 21 records", n)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		m := NewMemory(MemoryConfig{PerPartition: 1000, MaxBytes: 20 * 150})
		for to := int64(0); to < 300; to += 17 {
			build(m, to, to+16)
			checkIndex(t, m, all)
		}
	})
	t.Run("a thread leaves with its last record", func(t *testing.T) {
		m := NewMemory(MemoryConfig{PerPartition: 3})
		m.add([]*Record{threaded(rec(0, 0, -1), 1, "gone"), threaded(rec(0, 1, 0), 1, "kept")})
		m.add([]*Record{threaded(rec(0, 2, 1), 2, "kept"), threaded(rec(0, 3, 2), 3, "kept")})
		if refs, _ := m.ThreadRefs(t.Context(), "gone", 0, 10); len(refs) != 0 || m.Threads() != 1 {
			t.Fatalf("evicted thread: refs %v, %d threads held", refs, m.Threads())
		}
	})
	t.Run("clear and reset", func(t *testing.T) {
		m := NewMemory(MemoryConfig{})
		build(m, 0, 50)
		if err := m.Clear(t.Context()); err != nil || m.Threads() != 0 {
			t.Fatalf("Clear: %v, %d threads", err, m.Threads())
		}
		build(m, 0, 50)
		m.Reset()
		if m.Threads() != 0 {
			t.Fatalf("Reset: %d threads", m.Threads())
		}
		build(m, 0, 50)
		checkIndex(t, m, all)
	})
}

// Sequences need not follow offsets: ThreadRefs still answers in sequence
// order, and pages by sequence.
func TestMemoryThreadRefsUnordered(t *testing.T) {
	m := NewMemory(MemoryConfig{PerPartition: 100})
	seqs := []uint64{5, 3, 9, 1, 7, 2}
	for i, s := range seqs {
		o := int64(i)
		m.add([]*Record{threaded(rec(0, o, o-1), s, "T")})
	}
	m.add([]*Record{threaded(rec(1, 0, -1), 4, "T"), threaded(rec(1, 1, 0), 6, "T")})
	var got []uint64
	for after := uint64(0); ; {
		refs, err := m.ThreadRefs(t.Context(), "T", after, 3)
		if err != nil || len(refs) > 3 {
			t.Fatalf("page after %d: %v, %v", after, refs, err)
		}
		if len(refs) == 0 {
			break
		}
		for _, r := range refs {
			got = append(got, r.Sequence)
		}
		after = refs[len(refs)-1].Sequence
	}
	if want := []uint64{1, 2, 3, 4, 5, 6, 7, 9}; !slices.Equal(got, want) {
		t.Fatalf("sequences %v, want %v", got, want)
	}
}

func TestMemoryReadThreads(t *testing.T) {
	m := NewMemory(MemoryConfig{PerPartition: 10})
	// Offsets 10..29 of p0: even offsets thread A, multiples of 3 thread B
	// (6, 12, … carry both: one record, read once), the rest C.
	for o := int64(10); o < 30; o++ {
		var ths []string
		if o%2 == 0 {
			ths = append(ths, "A")
		}
		if o%3 == 0 {
			ths = append(ths, "B")
		}
		if len(ths) == 0 {
			ths = []string{"C"}
		}
		seq := uint64(o)
		if o == 27 {
			seq = 0 // an event without a sequence is read like the others
		}
		m.add([]*Record{threaded(rec(0, o, o-1), seq, ths...)})
	} // memory holds 20..29
	all := Limit{Records: 100, Bytes: 1 << 20}
	cases := []struct {
		name    string
		after   int64
		threads []string
		lim     Limit
		want    []int64
		through int64
		covered bool
	}{
		{"A", 19, []string{"A"}, all, []int64{20, 22, 24, 26, 28}, 29, true},
		{"A and B once each", 19, []string{"B", "A"}, all, []int64{20, 21, 22, 24, 26, 27, 28}, 29, true},
		{"after a position", 24, []string{"A", "B"}, all, []int64{26, 27, 28}, 29, true},
		{"none matching: the position still moves", 19, []string{"nobody"}, all, nil, 29, true},
		{"records bound", 19, []string{"A", "B"}, Limit{Records: 3, Bytes: 1 << 20}, []int64{20, 21, 22}, 22, true},
		{"bytes bound", 19, []string{"A"}, Limit{Records: 100, Bytes: 1}, []int64{20}, 20, true},
		{"last match at the bound", 25, []string{"A"}, Limit{Records: 2, Bytes: 1 << 20}, []int64{26, 28}, 29, true},
		{"at the head", 29, []string{"A"}, all, nil, 29, true},
		{"below the window", 15, []string{"A"}, all, nil, 15, false},
		{"unknown partition", 0, nil, all, nil, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := int32(0)
			if tc.name == "unknown partition" {
				p = 7
			}
			recs, through, covered := m.ReadThreads(p, tc.after, tc.threads, tc.lim, nil)
			checkIndexedRead(t, recs, through, covered, tc.want, tc.through, tc.covered)
		})
	}
}

// checkIndexedRead compares what an indexed read (ReadThreads, ReadTypes)
// returned with what it should have.
func checkIndexedRead(t *testing.T, recs []*Record, through int64, covered bool, want []int64, wantThrough int64, wantCovered bool) {
	t.Helper()
	if got := offsets(recs); !slices.Equal(got, want) && len(got)+len(want) > 0 || through != wantThrough || covered != wantCovered {
		t.Fatalf("got %v through %d covered %v; want %v through %d covered %v", got, through, covered, want, wantThrough, wantCovered)
	}
}

// A missing range inside what memory holds (a record whose Prev is not the
// record before it) is never crossed by an indexed read: the caller reads
// it through the tiers, which ask Kafka for it.
func TestMemoryReadThreadsMissingRange(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	m.add([]*Record{threaded(rec(0, 0, -1), 1, "A"), threaded(rec(0, 1, 0), 2, "A"), threaded(rec(0, 5, 3), 3, "A")})
	if recs, through, covered := m.ReadThreads(0, -1, []string{"A"}, Limit{Records: 10, Bytes: 1 << 20}, nil); covered || len(recs) != 0 || through != -1 {
		t.Fatalf("across 2..3: %v through %d covered %v", offsets(recs), through, covered)
	}
	recs, through, covered := m.ReadThreads(0, 3, []string{"A"}, Limit{Records: 10, Bytes: 1 << 20}, nil)
	if !covered || !slices.Equal(offsets(recs), []int64{5}) || through != 5 {
		t.Fatalf("after the range: %v through %d covered %v", offsets(recs), through, covered)
	}
}

// ReadThreads agrees with a filtered Read at every position, on random
// logs with markers (Prev jumps), evictions and several partitions.
func TestMemoryReadThreadsMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	threads := []string{"a", "b", "c", "d", "e"}
	for round := range 20 {
		m := NewMemory(MemoryConfig{PerPartition: 5 + rng.IntN(40)})
		next := map[int32]int64{}
		for range 300 {
			p := int32(rng.IntN(3))
			o := next[p] + int64(rng.IntN(2)) // a skipped offset: a transaction marker
			r := threaded(rec(p, o, next[p]-1), uint64(o+1), threads[rng.IntN(len(threads))])
			if rng.IntN(5) == 0 {
				r.Threads = append(r.Threads, ThreadSeq{Thread: threads[rng.IntN(len(threads))], Sequence: uint64(o + 1)})
			}
			m.add([]*Record{r})
			next[p] = o + 1
		}
		for p := range int32(3) {
			want := rng.Perm(len(threads))[:1+rng.IntN(2)]
			var follow []string
			for _, i := range want {
				follow = append(follow, threads[i])
			}
			lim := Limit{Records: 1 + rng.IntN(8), Bytes: 1 << 20}
			compareWithScan(t, m, p, follow, lim, round)
		}
	}
}

func compareWithScan(t *testing.T, m *Memory, p int32, follow []string, lim Limit, round int) {
	t.Helper()
	compareIndexedWithScan(t, m, p, 1, fmt.Sprint(follow), lim, round,
		func(r *Record) bool {
			return slices.ContainsFunc(r.Threads, func(ts ThreadSeq) bool { return slices.Contains(follow, ts.Thread) })
		},
		func(after int64) ([]*Record, int64, bool) { return m.ReadThreads(p, after, follow, lim, nil) })
}

// compareIndexedWithScan checks an indexed read (read: ReadThreads or
// ReadTypes) at every position from 'before' records below p's window to
// its head against Read filtered by match: the same records (up to the
// limit), the same coverage, and through at the newest held record when
// the answer is whole.
func compareIndexedWithScan(t *testing.T, m *Memory, p int32, before int64, what string, lim Limit, round int,
	match func(*Record) bool, read func(after int64) ([]*Record, int64, bool)) {
	t.Helper()
	oldest, newest, ok := m.bounds(p)
	if !ok {
		return
	}
	for after := oldest - before; after <= newest; after++ {
		held, covered := readN(m, p, after, math.MaxInt, math.MaxInt)
		var want []int64
		for _, r := range held {
			if match(r) {
				want = append(want, r.Offset)
			}
		}
		recs, through, gotCovered := read(after)
		got := offsets(recs)
		if gotCovered != covered {
			t.Fatalf("round %d p%d after %d: covered %v, Read says %v", round, p, after, gotCovered, covered)
		}
		if !covered {
			if len(got) > 0 || through != after {
				t.Fatalf("round %d p%d after %d: not covered, yet %v through %d", round, p, after, got, through)
			}
			continue
		}
		if len(want) > lim.Records {
			want = want[:lim.Records]
		}
		if !slices.Equal(got, want) && len(got)+len(want) > 0 {
			t.Fatalf("round %d p%d after %d %s: %v, want %v", round, p, after, what, got, want)
		}
		if len(want) < lim.Records && len(held) > 0 && through != held[len(held)-1].Offset {
			t.Fatalf("round %d p%d after %d: through %d, want the newest held %d", round, p, after, through, held[len(held)-1].Offset)
		}
	}
}

// BenchmarkMemoryAppend is the consumer's append path (one record of one
// thread at a time, 1,000 threads, memory full so every append evicts),
// which the thread index now takes part in.
func BenchmarkMemoryAppend(b *testing.B) {
	m := NewMemory(MemoryConfig{PerPartition: 10000})
	recs := make([]*Record, 50000)
	for i := range recs {
		o := int64(i)
		recs[i] = threaded(rec(0, o, o-1), uint64(i/1000+1), "thread-"+strconv.Itoa(i%1000))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		src := recs[i%len(recs)]
		r := &Record{Partition: src.Partition, Offset: int64(i), Prev: int64(i - 1), Value: src.Value,
			Threads: src.Threads, Tenant: src.Tenant, Frame: src.Frame}
		m.add([]*Record{r})
	}
}
