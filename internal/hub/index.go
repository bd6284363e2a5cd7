package hub

import (
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// subscriber is what the hub wakes when records it may want were published:
// a WebSocket session (any transport driving a delivery).
type subscriber interface {
	wake()
}

// The live fan-out's index of subscribers (docs/ARCHITECTURE.md, "Live
// fan-out"): a subscriber whose filter names its threads is woken only
// when a record of one of those threads was published, so 10,000 clients
// each following one thread are not all woken, and none scans, for every
// record of the topic. Every other subscriber (no filter, a thread prefix,
// types only) is "broad" and woken by every publish. All fields are
// guarded by Hub.mu.
type subIndex struct {
	broad    map[subscriber]struct{}
	byThread map[string]map[subscriber]*indexedSub
	threads  map[subscriber]*indexedSub // the subscribers indexed by thread
	// round counts wakeIndexed's rounds: a subscriber woken for its
	// records during a round needs no wake-up at the next.
	round uint64
}

// indexedSub is a subscriber's entry in the index by thread.
type indexedSub struct {
	threads []string // the threads it is indexed under
	woken   uint64   // the round of its last wake-up
}

func newSubIndex() subIndex {
	return subIndex{broad: map[subscriber]struct{}{}, byThread: map[string]map[subscriber]*indexedSub{},
		threads: map[subscriber]*indexedSub{}}
}

// add registers a new subscriber as broad.
func (x *subIndex) add(s subscriber) { x.broad[s] = struct{}{} }

// remove forgets s wherever it is.
func (x *subIndex) remove(s subscriber) {
	delete(x.broad, s)
	x.unindex(s)
}

func (x *subIndex) unindex(s subscriber) {
	e := x.threads[s]
	if e == nil {
		return
	}
	for _, t := range e.threads {
		set := x.byThread[t]
		delete(set, s)
		if len(set) == 0 {
			delete(x.byThread, t)
		}
	}
	delete(x.threads, s)
}

// set indexes s under threads (nil: broad).
func (x *subIndex) set(s subscriber, threads []string) {
	x.unindex(s)
	if threads == nil {
		x.broad[s] = struct{}{}
		return
	}
	delete(x.broad, s)
	e := &indexedSub{threads: threads, woken: x.round}
	x.threads[s] = e
	for _, t := range threads {
		set := x.byThread[t]
		if set == nil {
			set = map[subscriber]*indexedSub{}
			x.byThread[t] = set
		}
		set[s] = e
	}
}

// subscribe indexes s under threads (nil: woken by every publish). It runs
// before the epoch's positions are taken, so every record published after
// them wakes s if it may match.
func (h *Hub) subscribe(s subscriber, threads []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.index.broad[s]; !ok && h.index.threads[s] == nil {
		return // not (or no longer) registered: the session is over
	}
	h.index.set(s, threads)
	h.indexed.Store(int64(len(h.index.threads)))
}

// noteThreads remembers the threads of published records until the next
// wake-up (only while some subscriber is indexed by thread).
func (h *Hub) noteThreads(recs []*replay.Record) {
	if h.indexed.Load() == 0 {
		return
	}
	h.wakeMu.Lock()
	defer h.wakeMu.Unlock()
	if h.pendingThreads == nil {
		h.pendingThreads = map[string]struct{}{}
	}
	for _, r := range recs {
		for _, t := range r.Threads {
			h.pendingThreads[t.Thread] = struct{}{}
		}
	}
}

// wakeSubscribers wakes every broad subscriber and the indexed ones whose
// threads were published since the previous wake-up.
func (h *Hub) wakeSubscribers() {
	h.wakeMu.Lock()
	threads := h.pendingThreads
	h.pendingThreads = nil
	h.wakeMu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.index.broad {
		s.wake()
	}
	round := h.index.round
	for t := range threads {
		for s, e := range h.index.byThread[t] {
			s.wake()
			e.woken = round
		}
	}
}

// wakeIndexed (every second) wakes the subscribers indexed by thread that
// no record of theirs woke during the last round, so that one whose
// threads stay quiet still moves its positions to the heads (cheaply,
// through the thread index) instead of finding, much later, that the
// memory tier evicted the range behind it. A subscriber its records keep
// waking is already at the heads: waking all 10,000 of them every second
// would cost as much as their records.
func (h *Hub) wakeIndexed() {
	if h.indexed.Load() == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	x := &h.index
	last := x.round
	x.round++
	for s, e := range x.threads {
		if e.woken != last {
			s.wake()
			e.woken = x.round
		}
	}
}
