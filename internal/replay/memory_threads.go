package replay

import (
	"cmp"
	"context"
	"slices"
	"sort"
)

// The memory tier's thread index: per thread and partition, the thread's
// records held in offset order (one entry per event of the thread with a
// sequence, so a batch carrying two events of a thread has two). A record
// is indexed when it is appended and unindexed when it is evicted; since
// both happen in offset order per partition, each is O(1) amortized, and
// the index never holds a record the tier no longer holds. A thread whose
// last record left is forgotten.
//
// An event without a sequence (0, absent) is indexed too, so that a reader
// of the thread's records by offset (ReadThreads) gets every record a scan
// would match; ThreadRefs, which answers "sequence > after", never returns
// it (the Redis tier does not index it at all).

// threadLog is one thread's part of the index.
type threadLog struct {
	// parts are the thread's entries per partition; a slice, not a map: a
	// thread lives in one partition, or a few.
	parts []*threadPart
	n     int // entries held over all partitions
	run   runState
}

// part returns the entries of partition p, nil when none.
func (tl *threadLog) part(p int32) *threadPart {
	for _, tp := range tl.parts {
		if tp.partition == p {
			return tp
		}
	}
	return nil
}

// drop forgets the (empty) entries of partition p.
func (tl *threadLog) drop(p int32) {
	tl.parts = slices.DeleteFunc(tl.parts, func(tp *threadPart) bool { return tp.partition == p })
}

// threadPart is a thread's entries in one partition: refs[head:] are live,
// in ascending offsets.
type threadPart struct {
	partition int32
	refs      []threadRef
	head      int
	// ordered: the live sequences ascend too (a producer writes a thread in
	// sequence order, so this is the usual case); ThreadRefs then finds the
	// first sequence after a position by binary search.
	ordered bool
}

type threadRef struct {
	rec *Record
	seq uint64
}

func (t *threadPart) live() []threadRef { return t.refs[t.head:] }

func (m *Memory) indexLocked(r *Record) {
	for i, ts := range r.Threads {
		tl := m.threads[ts.Thread]
		if tl == nil {
			tl = &threadLog{}
			m.threads[ts.Thread] = tl
		}
		tp := tl.part(r.Partition)
		if tp == nil {
			tp = &threadPart{partition: r.Partition, ordered: true}
			tl.parts = append(tl.parts, tp)
		}
		live := tp.live()
		if len(live) > 0 && ts.Sequence < live[len(live)-1].seq {
			tp.ordered = false
		}
		if len(live) == 0 || live[len(live)-1].rec != r {
			tl.run.records++ // r's first event of this thread
		}
		tp.refs = append(tp.refs, threadRef{rec: r, seq: ts.Sequence})
		tl.n++
		tl.run.observe(r, i, ts.Sequence)
	}
}

// unindexLocked removes the entries of r, the oldest record its partition
// holds: they are the first entries of its threads' lists there.
func (m *Memory) unindexLocked(r *Record) {
	for _, ts := range r.Threads {
		tl := m.threads[ts.Thread]
		if tl == nil {
			continue // an earlier event of r, of the same thread, removed them all
		}
		tp := tl.part(r.Partition)
		if tp != nil && len(tp.live()) > 0 && tp.live()[0].rec == r {
			tl.run.forget(r)
		}
		for tp != nil && len(tp.live()) > 0 && tp.live()[0].rec == r {
			tp.refs[tp.head] = threadRef{}
			tp.head++
			tl.n--
		}
		if tp != nil && len(tp.live()) == 0 {
			tl.drop(r.Partition)
		} else if tp != nil && tp.head > 32 && tp.head*2 > len(tp.refs) {
			n := copy(tp.refs, tp.live())
			clear(tp.refs[n:])
			tp.refs, tp.head = tp.refs[:n], 0
		}
		if tl.n == 0 {
			delete(m.threads, ts.Thread)
		}
	}
}

// ThreadRefs implements Store: up to limit references to the records held
// that carry an event of thread with a sequence > after, in ascending
// (sequence, partition, offset) order. It looks at the thread's own entries
// only.
func (m *Memory) ThreadRefs(_ context.Context, thread string, after uint64, limit int) ([]Ref, error) {
	if limit <= 0 {
		return nil, nil
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	tl := m.threads[thread]
	if tl == nil {
		return nil, nil
	}
	var refs []Ref
	for _, tp := range tl.parts {
		refs = tp.appendRefs(refs, tp.partition, after, limit)
	}
	slices.SortFunc(refs, compareRefs)
	return refs[:min(len(refs), limit)], nil
}

// appendRefs appends the references of t with sequence > after: the first
// limit of them when t is ordered, else all.
func (t *threadPart) appendRefs(refs []Ref, p int32, after uint64, limit int) []Ref {
	live := t.live()
	i, end := 0, len(live)
	if t.ordered {
		i = sort.Search(len(live), func(i int) bool { return live[i].seq > after })
		end = i + min(limit, end-i) // not min(end, i+limit): limit may be MaxInt
	}
	for _, e := range live[i:end] {
		if e.seq > after {
			refs = append(refs, Ref{Sequence: e.seq, Partition: p, Offset: e.rec.Offset})
		}
	}
	return refs
}

func compareRefs(a, b Ref) int {
	return cmp.Or(cmp.Compare(a.Sequence, b.Sequence), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
}

// ReadThreads is Read restricted to the records that carry an event of one
// of threads: up to lim.Records of them and about
// lim.Bytes of frame bytes (at least one record when there is one), in
// offset order, each once, appended to
// buf[:0]. It reads the threads' own index entries, never the partition's
// other records, so its cost follows the threads' records, not the topic's.
//
// When covered, memory holds partition p contiguously after 'after' and the
// answer is complete up to the offset through (>= after): a reader that
// follows only these threads may move its position to through even when no
// record is returned (the records in between are other threads'). When not
// covered (memory misses records right after 'after', or holds a missing
// range further on), recs is empty and through is after: read p with
// Tiers.Page and filter instead.
func (m *Memory) ReadThreads(p int32, after int64, threads []string, lim Limit, buf []*Record) (recs []*Record, through int64, covered bool) {
	return m.readIndexed(p, after, lim, buf, func(_ *partLog, recs []*Record, maxN, maxBytes int) ([]*Record, bool) {
		return m.threadRecordsLocked(recs, p, after, threads, maxN, maxBytes)
	})
}

// readIndexed is the frame of a read through an index (ReadThreads,
// ReadTypes): it checks that memory holds p contiguously after 'after',
// lets collect append the records the index selects (in offset order, up
// to maxN records and about maxBytes, reporting whether more remain), and
// says how far the answer is complete.
func (m *Memory) readIndexed(p int32, after int64, lim Limit, buf []*Record,
	collect func(l *partLog, recs []*Record, maxN, maxBytes int) ([]*Record, bool)) (recs []*Record, through int64, covered bool) {
	recs = buf[:0]
	m.mu.RLock()
	defer m.mu.RUnlock()
	l := m.parts[p]
	if l == nil {
		return recs, after, true
	}
	live := l.live()
	i := sort.Search(len(live), func(i int) bool { return live[i].rec.Offset > after })
	if i == len(live) {
		return recs, after, l.known() <= after
	}
	if prevOf(live[i].rec) > after || l.brokenPrev > after {
		return recs, after, false
	}
	recs, more := collect(l, recs, max(lim.Records, 1), max(lim.Bytes, 1))
	if more { // bounded: the rest is the next read's
		return recs, recs[len(recs)-1].Offset, true
	}
	return recs, live[len(live)-1].rec.Offset, true
}

// threadRecordsLocked appends the records of threads in p after 'after' in
// offset order, each once, up to maxN records and about maxBytes (see
// ReadThreads). more reports that records of threads remain after them.
func (m *Memory) threadRecordsLocked(recs []*Record, p int32, after int64, threads []string, maxN, maxBytes int) (_ []*Record, more bool) {
	var lists [][]threadRef
	for _, th := range threads {
		if tl := m.threads[th]; tl != nil && tl.part(p) != nil {
			live := tl.part(p).live()
			i := sort.Search(len(live), func(i int) bool { return live[i].rec.Offset > after })
			if i < len(live) {
				lists = append(lists, live[i:])
			}
		}
	}
	size, last := 0, after
	for {
		r := nextOf(lists, last)
		if r == nil {
			return recs, false
		}
		if len(recs) == maxN || (len(recs) > 0 && size >= maxBytes) {
			return recs, true
		}
		recs = append(recs, r)
		size += len(r.Frame)
		last = r.Offset
	}
}

// nextOf returns the record with the lowest offset above last among the
// lists (each in ascending offsets), advancing them past last; nil when
// they are exhausted. Threads are few per reader, so a linear pick is
// cheaper than a heap.
func nextOf(lists [][]threadRef, last int64) *Record {
	var best *Record
	for k := range lists {
		for len(lists[k]) > 0 && lists[k][0].rec.Offset <= last {
			lists[k] = lists[k][1:]
		}
		if len(lists[k]) > 0 && (best == nil || lists[k][0].rec.Offset < best.Offset) {
			best = lists[k][0].rec
		}
	}
	return best
}

// Threads reports how many threads the index holds (bounded by the records
// held: a thread leaves with its last record).
func (m *Memory) Threads() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.threads)
}
