package replay

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// rec builds a record of partition p at offset o whose previous consumed
// record is prev; its Size is 64+10 bytes.
func rec(p int32, o, prev int64) *Record {
	return &Record{Partition: p, Offset: o, Prev: prev, Value: []byte("0123456789")}
}

const recSize = 64 + 10

// chain builds contiguous records from..to of p (Prev = offset-1).
func chain(p int32, from, to int64) []*Record {
	var out []*Record
	for o := from; o <= to; o++ {
		out = append(out, rec(p, o, o-1))
	}
	return out
}

func offsets(recs []*Record) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.Offset
	}
	return out
}

func span(from, to int64) []int64 {
	var s []int64
	for o := from; o <= to; o++ {
		s = append(s, o)
	}
	return s
}

func bounds(t *testing.T, m *Memory, p int32, oldest, newest int64) {
	t.Helper()
	o, n, ok := m.bounds(p)
	if !ok || o != oldest || n != newest {
		t.Fatalf("p%d bounds = %d..%d (%v), want %d..%d", p, o, n, ok, oldest, newest)
	}
}

func TestMemoryPerPartitionCap(t *testing.T) {
	m := NewMemory(MemoryConfig{PerPartition: 5})
	if n := m.add(chain(0, 0, 9)); n != 10 {
		t.Fatalf("added %d", n)
	}
	m.add(chain(1, 100, 102))
	bounds(t, m, 0, 5, 9)
	bounds(t, m, 1, 100, 102)
	if recs, bytes := m.Stats(); recs != 8 || bytes != 8*recSize {
		t.Fatalf("stats = %d records, %d bytes", recs, bytes)
	}
	if _, _, ok := m.bounds(2); ok {
		t.Fatal("bounds of an unknown partition")
	}
}

// TestMemoryCapacity: the record capacity is the per-partition cap times the
// partitions known (the caller's or those held, whichever is more, at least
// one), so the records held never exceed it.
func TestMemoryCapacity(t *testing.T) {
	m := NewMemory(MemoryConfig{PerPartition: 5, MaxBytes: 1 << 20})
	want := func(step string, partitions, records int) {
		t.Helper()
		got, bytes := m.Capacity(partitions)
		if got != records || bytes != 1<<20 {
			t.Fatalf("%s: Capacity(%d) = %d records, %d bytes; want %d, %d", step, partitions, got, bytes, records, 1<<20)
		}
		if held, _ := m.Stats(); held > got {
			t.Fatalf("%s: %d records held, capacity %d", step, held, got)
		}
	}
	want("empty, no partitions known", 0, 5)
	want("empty, three partitions", 3, 15)
	for p := range int32(3) {
		m.add(chain(p, 0, 9))
	}
	want("three partitions held, none known", 0, 15)
	want("three held, one known", 1, 15)
	want("three held, four known", 4, 20)
	m.Clear(t.Context())
	want("cleared: the partitions stay known", 0, 15)
}

func TestMemoryDefaults(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	if m.perPartition != 1000 || m.maxBytes != 64<<20 {
		t.Fatalf("defaults %d, %d", m.perPartition, m.maxBytes)
	}
}

func TestMemoryByteCapEvictsOldestAcrossPartitions(t *testing.T) {
	m := NewMemory(MemoryConfig{PerPartition: 100, MaxBytes: 4 * recSize})
	// Global order: p0:0 p1:0 p0:1 p1:1 p2:0 — the fifth append evicts p0:0.
	for _, r := range []*Record{rec(0, 0, -1), rec(1, 0, -1), rec(0, 1, 0), rec(1, 1, 0)} {
		m.add([]*Record{r})
	}
	m.add([]*Record{rec(2, 0, -1)})
	bounds(t, m, 0, 1, 1)
	bounds(t, m, 1, 0, 1)
	m.add([]*Record{rec(2, 1, 0)}) // evicts p1:0
	bounds(t, m, 1, 1, 1)
	m.add(chain(3, 0, 2)) // evicts p0:1, p1:1, p2:0
	if _, _, ok := m.bounds(0); ok {
		t.Fatal("p0 still held")
	}
	bounds(t, m, 2, 1, 1)
	bounds(t, m, 3, 0, 2)
	if recs, bytes := m.Stats(); recs != 4 || bytes != 4*recSize {
		t.Fatalf("stats = %d, %d", recs, bytes)
	}
}

// Slots of records the per-partition bound dropped must not make the byte
// bound evict a live record out of order.
func TestMemoryByteCapSkipsRecordsDroppedByCount(t *testing.T) {
	m := NewMemory(MemoryConfig{PerPartition: 2, MaxBytes: 3 * recSize})
	m.add(chain(0, 0, 9)) // p0 keeps 8, 9
	m.add(chain(1, 0, 1)) // 4 records held → evict p0:8
	bounds(t, m, 0, 9, 9)
	bounds(t, m, 1, 0, 1)
	m.add(chain(1, 2, 2)) // p1 drops 0 by count; 3 held
	bounds(t, m, 0, 9, 9)
	bounds(t, m, 1, 1, 2)
	m.add(chain(2, 0, 0)) // evict p0:9
	if _, _, ok := m.bounds(0); ok {
		t.Fatal("p0 still held")
	}
}

func TestMemoryOversizeRecord(t *testing.T) {
	m := NewMemory(MemoryConfig{MaxBytes: 100})
	big := &Record{Partition: 0, Offset: 7, Prev: 6, Value: make([]byte, 200)}
	if n := m.add([]*Record{big}); n != 1 {
		t.Fatalf("added %d", n)
	}
	if recs, bytes := m.Stats(); recs != 0 || bytes != 0 {
		t.Fatalf("stats = %d, %d", recs, bytes)
	}
	// It was held and evicted: a reader behind it must be told.
	if recs, covered := readN(m, 0, 6, 10, 1<<20); len(recs) != 0 || covered {
		t.Fatalf("read = %v, covered %v", offsets(recs), covered)
	}
}

func TestMemoryIdempotentAppend(t *testing.T) {
	m := NewMemory(MemoryConfig{PerPartition: 100})
	m.add(chain(0, 0, 4))
	if n := m.add(chain(0, 2, 6)); n != 2 {
		t.Fatalf("re-append added %d, want 2", n)
	}
	if n := m.add(chain(0, 0, 6)); n != 0 {
		t.Fatalf("full re-append added %d", n)
	}
	recs, covered := readN(m, 0, -1, 100, 1<<20)
	if !covered || !slices.Equal(offsets(recs), span(0, 6)) {
		t.Fatalf("read %v covered %v", offsets(recs), covered)
	}
	if n, _ := m.Stats(); n != 7 {
		t.Fatalf("%d records", n)
	}
	// Out of order inside one batch: the lower one is dropped.
	if n := m.add([]*Record{rec(0, 9, 6), rec(0, 8, 6)}); n != 1 {
		t.Fatalf("added %d", n)
	}
	bounds(t, m, 0, 0, 9)
}

// A consumer restart re-delivers records that the byte bound already evicted
// from a partition: they must not come back (readers past them would see an
// offset go backwards, readers before them a silent hole).
func TestMemoryReappendAfterEviction(t *testing.T) {
	m := NewMemory(MemoryConfig{PerPartition: 100, MaxBytes: 5 * recSize})
	m.add(chain(0, 0, 4))
	m.add(chain(1, 0, 4)) // evicts all of p0
	if _, _, ok := m.bounds(0); ok {
		t.Fatal("p0 still held")
	}
	if n := m.add(chain(0, 2, 4)); n != 0 {
		t.Fatalf("re-delivered evicted records were added again (%d)", n)
	}
	if n := m.add(chain(0, 5, 5)); n != 1 {
		t.Fatalf("new record not added")
	}
	bounds(t, m, 0, 5, 5)
}

func TestMemoryRead(t *testing.T) {
	type want struct {
		offsets []int64
		covered bool
	}
	logs := map[string][]*Record{
		"contiguous": chain(0, 10, 19),
		// Offsets 11, 13, 14 are transaction markers: never returned by
		// the broker, so Prev jumps over them. Not missing.
		"markers": {rec(0, 10, 9), rec(0, 12, 10), rec(0, 15, 12), rec(0, 16, 15)},
		// Offsets 12..14 existed (16's Prev is 14) but this tier lacks them.
		"missing": {rec(0, 10, 9), rec(0, 11, 10), rec(0, 16, 14), rec(0, 17, 16)},
		// Offset 0 starts the partition; Prev -1 means nothing before.
		"zero": chain(0, 0, 3),
		// Prev unknown: assume the offset before.
		"unknown prev": {rec(0, 20, -1), rec(0, 21, 20)},
		"near max": {rec(0, math.MaxInt64-2, math.MaxInt64-3), rec(0, math.MaxInt64-1, math.MaxInt64-2),
			rec(0, math.MaxInt64, math.MaxInt64-1)},
	}
	cases := []struct {
		log   string
		after int64
		n     int
		want  want
	}{
		{"contiguous", 9, 100, want{span(10, 19), true}},
		{"contiguous", -1, 100, want{span(10, 19), false}},
		{"contiguous", 5, 3, want{span(10, 12), false}},
		{"contiguous", 14, 100, want{span(15, 19), true}},
		{"contiguous", 14, 2, want{span(15, 16), true}},
		{"contiguous", 19, 100, want{nil, true}},
		{"contiguous", 25, 100, want{nil, true}},
		{"markers", 9, 100, want{[]int64{10, 12, 15, 16}, true}},
		{"markers", 10, 100, want{[]int64{12, 15, 16}, true}},
		{"markers", 11, 100, want{[]int64{12, 15, 16}, true}},
		{"markers", 13, 100, want{[]int64{15, 16}, true}},
		{"markers", 8, 100, want{[]int64{10, 12, 15, 16}, false}},
		// A read stops in front of a missing range: the next read
		// starts at the range and reports it.
		{"missing", 9, 100, want{[]int64{10, 11}, true}},
		{"missing", 11, 100, want{[]int64{16, 17}, false}},
		{"missing", 12, 100, want{[]int64{16, 17}, false}},
		{"missing", 14, 100, want{[]int64{16, 17}, true}},
		{"missing", 15, 100, want{[]int64{16, 17}, true}},
		{"zero", -1, 100, want{span(0, 3), true}},
		{"zero", 0, 100, want{span(1, 3), true}},
		{"unknown prev", 19, 100, want{[]int64{20, 21}, true}},
		{"unknown prev", 18, 100, want{[]int64{20, 21}, false}},
		{"near max", math.MaxInt64 - 3, 100, want{[]int64{math.MaxInt64 - 2, math.MaxInt64 - 1, math.MaxInt64}, true}},
		{"near max", math.MaxInt64 - 1, 100, want{[]int64{math.MaxInt64}, true}},
		{"near max", math.MaxInt64, 100, want{nil, true}},
		{"near max", 0, 100, want{[]int64{math.MaxInt64 - 2, math.MaxInt64 - 1, math.MaxInt64}, false}},
	}
	for _, tc := range cases {
		t.Run(tc.log+"/after="+strconv.FormatInt(tc.after, 10)+"/n="+strconv.Itoa(tc.n), func(t *testing.T) {
			m := NewMemory(MemoryConfig{})
			m.add(logs[tc.log])
			recs, covered := readN(m, 0, tc.after, tc.n, 1<<20)
			if !slices.Equal(offsets(recs), tc.want.offsets) || covered != tc.want.covered {
				t.Fatalf("read = %v covered %v, want %v covered %v", offsets(recs), covered, tc.want.offsets, tc.want.covered)
			}
		})
	}
	t.Run("unknown partition", func(t *testing.T) {
		if recs, covered := readN(NewMemory(MemoryConfig{}), 3, 5, 10, 10); recs != nil || !covered {
			t.Fatal("an unknown partition must read as empty and covered")
		}
	})
}

func TestMemoryReadBytes(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	var recs []*Record
	for o := int64(0); o < 10; o++ {
		r := rec(0, o, o-1)
		r.Frame = make([]byte, 100)
		recs = append(recs, r)
	}
	m.add(recs)
	for _, tc := range []struct{ maxBytes, want int }{{1, 1}, {100, 1}, {101, 2}, {250, 3}, {1000, 10}, {0, 1}} {
		if got, _ := readN(m, 0, -1, 100, tc.maxBytes); len(got) != tc.want {
			t.Errorf("maxBytes %d: %d records, want %d", tc.maxBytes, len(got), tc.want)
		}
	}
}

func TestMemoryBacklog(t *testing.T) {
	m := NewMemory(MemoryConfig{PerPartition: 20, MaxBytes: 15 * recSize})
	m.add(chain(0, 10, 19))
	for _, tc := range []struct {
		after   int64
		bytes   int64
		evicted bool
	}{
		{9, 10 * recSize, false},
		{-1, 20 * recSize, false}, // 0..9 evicted: counted at the mean size of what is held
		{4, 15 * recSize, false},
		{14, 5 * recSize, false},
		{18, recSize, false},
		{19, 0, false},
		{100, 0, false},
	} {
		if b, ev := m.Backlog(0, tc.after); b != tc.bytes || ev != tc.evicted {
			t.Errorf("Backlog(after %d) = %d, %v; want %d, %v", tc.after, b, ev, tc.bytes, tc.evicted)
		}
	}
	if b, ev := m.Backlog(7, 0); b != 0 || ev {
		t.Errorf("unknown partition backlog = %d, %v", b, ev)
	}
	m.add(chain(1, 0, 14)) // evicts everything of p0
	if b, unknown := m.Backlog(0, 12); b != 0 || !unknown {
		t.Errorf("backlog behind a fully evicted partition = %d, %v; want 0, unknown", b, unknown)
	}
	if b, ev := m.Backlog(0, 19); b != 0 || ev {
		t.Errorf("backlog at the newest = %d, %v", b, ev)
	}
}

func TestMemoryClear(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	m.add(chain(0, 0, 9))
	m.add(chain(1, 0, 9))
	m.Clear(t.Context())
	if recs, bytes := m.Stats(); recs != 0 || bytes != 0 {
		t.Fatalf("stats after clear %d, %d", recs, bytes)
	}
	if _, _, ok := m.bounds(0); ok {
		t.Fatal("bounds after clear")
	}
	if len(m.order.buf) != 0 || m.order.size != 0 {
		t.Fatal("global order kept after clear")
	}
	if n := m.add(chain(0, 10, 12)); n != 3 {
		t.Fatalf("append after clear added %d", n)
	}
	bounds(t, m, 0, 10, 12)
}

// TestMemoryReset: after Reset (a new namespace: a re-created topic
// restarts its offsets) nothing of the old offsets is held or remembered:
// offsets from 0 are appended again, and a read from the start is covered
// by memory alone (Clear would send it to the lower tiers).
func TestMemoryReset(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	m.add(chain(0, 0, 99))
	m.add(chain(1, 0, 9))
	m.Reset()
	if recs, bytes := m.Stats(); recs != 0 || bytes != 0 {
		t.Fatalf("stats after reset %d, %d", recs, bytes)
	}
	if _, covered := readN(m, 0, -1, 10, 1<<20); !covered {
		t.Fatal("an empty reset tier reports offsets it does not hold")
	}
	if n := m.add(chain(0, 0, 2)); n != 3 {
		t.Fatalf("append of offsets 0-2 after reset added %d", n)
	}
	recs, covered := readN(m, 0, -1, 10, 1<<20)
	if !covered || len(recs) != 3 || recs[0].Offset != 0 {
		t.Fatalf("read after reset: %d records, covered %v", len(recs), covered)
	}
	if _, _, ok := m.bounds(1); ok {
		t.Fatal("partition 1 still held after reset")
	}
}

// TestMemoryOrderBounded appends a million small records with a small
// per-partition cap: the global order (and every partition's slice) must stay
// proportional to what is held, not to what was ever appended.
func TestMemoryOrderBounded(t *testing.T) {
	const perPartition, partitions, total = 8, 3, 1_000_000
	m := NewMemory(MemoryConfig{PerPartition: perPartition})
	const batchLen = 1000
	batch := make([]*Record, batchLen)
	next := make([]int64, partitions)
	for i := 0; i < total; i += batchLen {
		recs := make([]Record, batchLen) // one allocation per batch
		for j := range recs {
			p := int32((i + j) % partitions)
			recs[j] = Record{Partition: p, Offset: next[p], Prev: next[p] - 1}
			batch[j] = &recs[j]
			next[p]++
		}
		m.add(batch)
		checkBounded(t, m, perPartition*partitions)
	}
	if n, _ := m.Stats(); n != perPartition*partitions {
		t.Fatalf("%d records held", n)
	}
}

func checkBounded(t *testing.T, m *Memory, held int) {
	t.Helper()
	m.mu.RLock()
	defer m.mu.RUnlock()
	limit := 2*held + 64
	if m.order.size > limit || len(m.order.buf) > 2*limit+64 {
		t.Fatalf("global order holds %d slots in %d, for %d records", m.order.size, len(m.order.buf), held)
	}
	for p, l := range m.parts {
		if len(l.entries) > 2*m.perPartition+66 {
			t.Fatalf("p%d keeps %d entries for %d", p, len(l.entries), len(l.live()))
		}
	}
}

// TestMemoryConcurrent appends and reads at once (run with -race) and checks
// what every read returns: ascending offsets above 'after', a chain without
// silent holes, and covered only when the first record follows 'after'.
func TestMemoryConcurrent(t *testing.T) {
	m := NewMemory(MemoryConfig{PerPartition: 64, MaxBytes: 150 * recSize})
	const partitions, perWriter = 4, 2000
	var wg sync.WaitGroup
	done := make(chan struct{})
	for p := range int32(partitions) {
		wg.Go(func() {
			for o := int64(0); o < perWriter; o += 10 {
				m.add(chain(p, o, o+9))
			}
		})
	}
	var readers sync.WaitGroup
	for i := range 4 {
		readers.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for {
				select {
				case <-done:
					return
				default:
				}
				p := int32(rng.IntN(partitions))
				after := rng.Int64N(perWriter) - 1
				recs, covered := readN(m, p, after, 1+rng.IntN(50), 1<<20)
				checkRead(t, recs, covered, after)
				m.Backlog(p, after)
				m.bounds(p)
				m.Stats()
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()
	for p := range int32(partitions) {
		if _, n, ok := m.bounds(p); ok && n != perWriter-1 {
			t.Fatalf("p%d newest %d", p, n)
		}
	}
}

func checkRead(t *testing.T, recs []*Record, covered bool, after int64) {
	last := after
	for i, r := range recs {
		if r.Offset <= last {
			t.Errorf("offset %d after %d", r.Offset, last)
			return
		}
		if i > 0 && r.Prev != last {
			t.Errorf("silent hole: %d follows %d (prev %d)", r.Offset, last, r.Prev)
			return
		}
		last = r.Offset
	}
	if covered && len(recs) > 0 && recs[0].Prev > after {
		t.Errorf("covered, but %d..%d are missing", after+1, recs[0].Prev)
	}
}

// readN reads up to maxN records and about maxBytes of p after 'after'.
func readN(m *Memory, p int32, after int64, maxN, maxBytes int) ([]*Record, bool) {
	recs, covered, _ := m.readInto(p, after, maxN, maxBytes, nil)
	return recs, covered
}
