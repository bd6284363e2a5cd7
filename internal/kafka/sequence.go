package kafka

import (
	"hash/maphash"

	"github.com/prometheus/client_golang/prometheus"
)

// seqOutcome is what one observed (thread, sequence) pair turned out to be.
type seqOutcome uint8

const (
	seqIgnored   seqOutcome = iota // sequence 0: absent
	seqFirst                       // first time this thread is seen (or seen again after eviction)
	seqInOrder                     // the expected next sequence
	seqGap                         // above the expected next: sequences were skipped
	seqDuplicate                   // equal to the last sequence seen
	seqReorder                     // below the last sequence seen: arrived late
)

// seqCounters are the collectors the tracker feeds (docs/PROTOCOL.md §8).
type seqCounters struct {
	gaps, duplicates, reorders prometheus.Counter
	gapSize                    prometheus.Observer
}

// seqNode is one tracked thread, linked into the LRU list by index.
type seqNode struct {
	key        uint64 // maphash of the thread id
	last       uint64 // highest sequence seen
	prev, next int32  // neighbours towards the most / least recently used end
}

// sequenceTracker checks per-thread sequences (docs/PROTOCOL.md §2.7). It is bounded: at
// most max threads, the least recently seen evicted first. Threads are keyed
// by a 64-bit seeded hash of the id, so memory does not depend on the length
// of untrusted ids and no id is ever kept, logged or used as a label; a hash
// collision between two live threads (odds ~n²/2⁶⁵) only skews counters.
//
// Observing a known thread does not allocate. Not safe for concurrent use:
// the consumer goroutine owns it.
type sequenceTracker struct {
	seed       maphash.Seed
	max        int
	index      map[uint64]int32
	nodes      []seqNode
	head, tail int32 // most and least recently used, -1 when empty
	c          seqCounters
}

func newSequenceTracker(limit int, c seqCounters) *sequenceTracker {
	return &sequenceTracker{
		seed:  maphash.MakeSeed(),
		max:   limit,
		index: make(map[uint64]int32),
		head:  -1,
		tail:  -1,
		c:     c,
	}
}

// observe records seq for thread and counts what it means. Sequence 0 means
// absent and is ignored. The expected next sequence only moves forward, so a
// late record counts as a reorder and does not cause a second gap later.
func (t *sequenceTracker) observe(thread string, seq uint64) seqOutcome {
	if seq == 0 || t.max <= 0 {
		return seqIgnored
	}
	key := maphash.String(t.seed, thread)
	i, ok := t.index[key]
	if !ok {
		t.insert(key, seq)
		return seqFirst
	}
	t.touch(i)
	return t.advance(&t.nodes[i], seq)
}

func (t *sequenceTracker) advance(n *seqNode, seq uint64) seqOutcome {
	switch {
	case seq == n.last:
		t.c.duplicates.Inc()
		return seqDuplicate
	case seq < n.last:
		t.c.reorders.Inc()
		return seqReorder
	case seq-n.last == 1:
		n.last = seq
		return seqInOrder
	}
	t.c.gaps.Inc()
	t.c.gapSize.Observe(float64(seq - n.last - 1))
	n.last = seq
	return seqGap
}

// insert adds a thread at the head, reusing the least recently used node
// when the tracker is full.
func (t *sequenceTracker) insert(key, seq uint64) {
	var i int32
	if len(t.nodes) < t.max {
		t.nodes = append(t.nodes, seqNode{})
		i = int32(len(t.nodes) - 1)
	} else {
		i = t.tail
		delete(t.index, t.nodes[i].key)
		t.unlink(i)
	}
	t.nodes[i] = seqNode{key: key, last: seq, prev: -1, next: -1}
	t.index[key] = i
	t.pushFront(i)
}

// touch moves node i to the head of the LRU list.
func (t *sequenceTracker) touch(i int32) {
	if t.head == i {
		return
	}
	t.unlink(i)
	t.pushFront(i)
}

func (t *sequenceTracker) unlink(i int32) {
	n := &t.nodes[i]
	if n.prev >= 0 {
		t.nodes[n.prev].next = n.next
	} else {
		t.head = n.next
	}
	if n.next >= 0 {
		t.nodes[n.next].prev = n.prev
	} else {
		t.tail = n.prev
	}
	n.prev, n.next = -1, -1
}

func (t *sequenceTracker) pushFront(i int32) {
	n := &t.nodes[i]
	n.prev, n.next = -1, t.head
	if t.head >= 0 {
		t.nodes[t.head].prev = i
	}
	t.head = i
	if t.tail < 0 {
		t.tail = i
	}
}

// len is the number of threads tracked.
func (t *sequenceTracker) len() int { return len(t.index) }
