package replay

import (
	"context"
	"math"
	"sort"
	"sync"
)

// MemoryConfig bounds the in-memory tier.
type MemoryConfig struct {
	// PerPartition is the number of records kept per partition; 0 means 1000.
	PerPartition int
	// MaxBytes bounds the bytes kept over all partitions (the oldest record
	// across partitions is evicted first); 0 means 64 MiB.
	MaxBytes int
}

// Memory is the in-memory replay tier: per partition, the newest records in
// offset order, bounded by count and (over all partitions) by bytes, and per
// thread an index of those records (ThreadRefs, ReadThreads), and per
// partition one by message type and event type (ReadTypes), that hold
// exactly the records held: a record's index entries leave with it.
//
// Memory implements Store. Its Append never fails and never blocks on I/O;
// the contexts of its methods are unused.
type Memory struct {
	perPartition int
	maxBytes     int

	mu      sync.RWMutex
	parts   map[int32]*partLog
	threads map[string]*threadLog // the thread index (memory_threads.go)
	order   fifo                  // global append order, for byte eviction
	bytes   int
	total   int
}

var _ Store = (*Memory)(nil)

type entry struct {
	rec *Record
	cum int64 // bytes appended to the partition up to and including rec
}

type partLog struct {
	entries []entry // entries[head:] are live, ascending offsets
	head    int
	cum     int64
	newest  int64 // highest offset ever appended, even if evicted since
	// brokenPrev is the Prev of the newest record appended whose Prev was
	// above the record held before it: a missing range inside the held
	// records ends there (-1: none). Reads through the thread index, which
	// do not look at every record, refuse to start below it.
	brokenPrev int64
	// cleared is the highest offset known before the last Clear (-1: none).
	// Append forgets it (lower offsets are new again after a Clear), but
	// reads do not: records up to it existed and are not held here, so a
	// read below it is not covered and the lower tiers are asked — a Clear
	// must never turn records Kafka still holds into a gap.
	cleared int64
	// types is the partition's index by message type and event type
	// (memory_types.go).
	types typeIndex
}

func (l *partLog) live() []entry { return l.entries[l.head:] }

// known is the highest offset this tier knows to exist in the partition.
func (l *partLog) known() int64 { return max(l.newest, l.cleared) }

// NewMemory returns an empty memory tier.
func NewMemory(cfg MemoryConfig) *Memory {
	if cfg.PerPartition <= 0 {
		cfg.PerPartition = 1000
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 64 << 20
	}
	return &Memory{perPartition: cfg.PerPartition, maxBytes: cfg.MaxBytes,
		parts: map[int32]*partLog{}, threads: map[string]*threadLog{}}
}

// Append implements Store: it adds records (ascending offsets per
// partition). A record at or below the newest offset ever appended to its
// partition (held or already evicted) is ignored, which makes re-delivery
// after a consumer restart idempotent. It never fails.
func (m *Memory) Append(_ context.Context, recs []*Record) error {
	m.add(recs)
	return nil
}

// add is Append reporting how many records were added.
func (m *Memory) add(recs []*Record) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	added := 0
	for _, r := range recs {
		if m.appendLocked(r) {
			added++
		}
	}
	for m.bytes > m.maxBytes && m.total > 0 {
		m.evictOldestLocked()
	}
	return added
}

func (m *Memory) appendLocked(r *Record) bool {
	l := m.parts[r.Partition]
	if l == nil {
		l = &partLog{newest: -1, brokenPrev: -1, cleared: -1}
		m.parts[r.Partition] = l
	}
	if r.Offset <= l.newest {
		return false
	}
	if live := l.live(); len(live) > 0 && prevOf(r) > live[len(live)-1].rec.Offset {
		l.brokenPrev = prevOf(r)
	}
	l.newest = r.Offset
	size := r.Size()
	l.cum += int64(size)
	l.entries = append(l.entries, entry{rec: r, cum: l.cum})
	m.order.push(slot{r.Partition, r.Offset})
	m.indexLocked(r)
	l.types.index(r)
	m.bytes += size
	m.total++
	if len(l.live()) > m.perPartition {
		m.dropFrontLocked(l)
	}
	if m.order.size > 2*m.total+64 {
		m.compactOrderLocked()
	}
	return true
}

// compactOrderLocked drops the slots of records that the per-partition bound
// already evicted, so the global order stays proportional to what is held.
func (m *Memory) compactOrderLocked() {
	var kept fifo
	for {
		s, ok := m.order.pop()
		if !ok {
			break
		}
		if live := m.parts[s.partition].live(); len(live) > 0 && s.offset >= live[0].rec.Offset {
			kept.push(s)
		}
	}
	m.order = kept
}

func (m *Memory) dropFrontLocked(l *partLog) {
	m.unindexLocked(l.entries[l.head].rec)
	l.types.unindex(l.entries[l.head].rec)
	m.bytes -= l.entries[l.head].rec.Size()
	m.total--
	l.entries[l.head] = entry{}
	l.head++
	if l.head > 64 && l.head*2 > len(l.entries) {
		n := copy(l.entries, l.entries[l.head:])
		clear(l.entries[n:])
		l.entries = l.entries[:n]
		l.head = 0
	}
}

// evictOldestLocked drops the oldest record across partitions. Slots of
// records already dropped by the per-partition bound are skipped.
func (m *Memory) evictOldestLocked() {
	for {
		s, ok := m.order.pop()
		if !ok {
			return
		}
		l := m.parts[s.partition]
		if live := l.live(); len(live) > 0 && live[0].rec.Offset == s.offset {
			m.dropFrontLocked(l)
			return
		}
	}
}

// Read implements Store: up to lim.Records records (1000 when not
// positive) and about lim.Bytes of frame bytes (no bound when not positive)
// of partition p with offset > after, in order. covered reports whether the
// memory tier holds everything after 'after': false means records between
// after and the first returned one (or, with none returned, up to the
// newest) are missing here. The records returned never jump over a missing
// range (their Prev chain is unbroken): a read stops in front of one, and
// the next read reports it.
func (m *Memory) Read(_ context.Context, p int32, after int64, lim Limit) (recs []*Record, covered bool, err error) {
	n, b := lim.Records, lim.Bytes
	if n <= 0 {
		n = defaultPage
	}
	if b <= 0 {
		b = math.MaxInt
	}
	recs, covered, _ = m.readInto(p, after, n, b, nil)
	return recs, covered, nil
}

// readInto is Read with exact bounds (maxN records, about maxBytes) that
// appends to buf[:0] (storage the caller reuses) and also returns the
// newest offset ever appended to p (-1 when none), seen under the same lock.
func (m *Memory) readInto(p int32, after int64, maxN, maxBytes int, buf []*Record) (recs []*Record, covered bool, newest int64) {
	recs = buf[:0]
	m.mu.RLock()
	defer m.mu.RUnlock()
	l := m.parts[p]
	if l == nil {
		return nil, true, -1
	}
	live := l.live()
	i := sort.Search(len(live), func(i int) bool { return live[i].rec.Offset > after })
	if i == len(live) {
		return nil, l.known() <= after, l.known() // held records end at or before 'after', or are all gone
	}
	covered = prevOf(live[i].rec) <= after
	size := 0
	for _, e := range live[i:] {
		if len(recs) == maxN || (len(recs) > 0 && (size >= maxBytes || prevOf(e.rec) > recs[len(recs)-1].Offset)) {
			break
		}
		recs = append(recs, e.rec)
		size += len(e.rec.Frame)
	}
	return recs, covered, l.newest
}

// prevOf is the offset of the record before r, assuming contiguous offsets
// when the consumer did not know it.
func prevOf(r *Record) int64 {
	if r.Prev >= 0 {
		return r.Prev
	}
	return r.Offset - 1
}

// Backlog returns the bytes of partition p after offset 'after'. Records
// after it that memory already evicted are counted at the mean size of the
// records it holds (offsets never returned, such as transaction markers,
// count too: an estimate, on the safe side). unknown is true when such
// records exist but memory holds nothing to estimate them by.
//
// A burst from the consumer (it catching up after a Kafka outage) can evict
// records before any client read them; counting the evicted part by its
// size, rather than as "over any bound", keeps a client that reads as fast
// as it can from being taken for a slow one (docs/PROTOCOL.md §3.6).
func (m *Memory) Backlog(p int32, after int64) (bytes int64, unknown bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	l := m.parts[p]
	if l == nil {
		return 0, false
	}
	live := l.live()
	i := sort.Search(len(live), func(i int) bool { return live[i].rec.Offset > after })
	if i == len(live) { // memory holds nothing after 'after'
		return 0, l.known() > after // so what lies behind, if anything, cannot be estimated
	}
	if i == 0 {
		first := live[0]
		held := l.cum - first.cum + int64(first.rec.Size())
		if missing := prevOf(first.rec) - after; missing > 0 {
			held += missing * meanSize(live)
		}
		return held, false
	}
	return l.cum - live[i-1].cum, false
}

// meanSize is the mean size of the records of live (not empty).
func meanSize(live []entry) int64 {
	first, last := live[0], live[len(live)-1]
	return (last.cum - first.cum + int64(first.rec.Size())) / int64(len(live))
}

// Bounds implements Store: the oldest and newest offsets held for p.
func (m *Memory) Bounds(_ context.Context, p int32) (oldest, newest int64, ok bool, err error) {
	oldest, newest, ok = m.bounds(p)
	return oldest, newest, ok, nil
}

func (m *Memory) bounds(p int32) (oldest, newest int64, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	l := m.parts[p]
	if l == nil || len(l.live()) == 0 {
		return 0, 0, false
	}
	live := l.live()
	return live[0].rec.Offset, live[len(live)-1].rec.Offset, true
}

// Stats reports the number of records and bytes held.
func (m *Memory) Stats() (records, bytes int) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.total, m.bytes
}

// Capacity reports how much the tier can hold over all partitions: records
// is the per-partition cap times the partitions known (partitions, or those
// it has held records of, whichever is more; at least one), so it is never
// below the records Stats reports; bytes is the byte bound, which may cap
// the tier below records when records are large.
func (m *Memory) Capacity(partitions int) (records, bytes int) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.perPartition * max(partitions, len(m.parts), 1), m.maxBytes
}

// Clear implements Store: it drops everything, including what Append
// remembers of evicted offsets. Reads still know which offsets existed (see
// partLog.cleared). It never fails.
func (m *Memory) Clear(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	parts := make(map[int32]*partLog, len(m.parts))
	for p, l := range m.parts {
		parts[p] = &partLog{newest: -1, brokenPrev: -1, cleared: l.known()}
	}
	m.parts = parts
	m.threads = map[string]*threadLog{}
	m.order = fifo{}
	m.bytes, m.total = 0, 0
	return nil
}

// Reset drops everything and forgets every offset, as if the tier were new:
// for a new namespace (a re-created topic restarts its offsets, docs/PROTOCOL.md §3.7),
// where the old offsets mean nothing. Unlike Clear it keeps no knowledge of
// what existed.
func (m *Memory) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.parts = map[int32]*partLog{}
	m.threads = map[string]*threadLog{}
	m.order = fifo{}
	m.bytes, m.total = 0, 0
}

type slot struct {
	partition int32
	offset    int64
}

// fifo is a growable ring of slots.
type fifo struct {
	buf        []slot
	head, size int
}

func (f *fifo) push(s slot) {
	if f.size == len(f.buf) {
		n := make([]slot, max(64, 2*len(f.buf)))
		for i := 0; i < f.size; i++ {
			n[i] = f.buf[(f.head+i)%len(f.buf)]
		}
		f.buf, f.head = n, 0
	}
	f.buf[(f.head+f.size)%len(f.buf)] = s
	f.size++
}

func (f *fifo) pop() (slot, bool) {
	if f.size == 0 {
		return slot{}, false
	}
	s := f.buf[f.head]
	f.head = (f.head + 1) % len(f.buf)
	f.size--
	return s, true
}
