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
	byThread map[string]map[subscriber]struct{}
	threads  map[subscriber][]string // the threads a subscriber is indexed under
}

func newSubIndex() subIndex {
	return subIndex{broad: map[subscriber]struct{}{}, byThread: map[string]map[subscriber]struct{}{},
		threads: map[subscriber][]string{}}
}

// add registers a new subscriber as broad.
func (x *subIndex) add(s subscriber) { x.broad[s] = struct{}{} }

// remove forgets s wherever it is.
func (x *subIndex) remove(s subscriber) {
	delete(x.broad, s)
	x.unindex(s)
}

func (x *subIndex) unindex(s subscriber) {
	for _, t := range x.threads[s] {
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
	x.threads[s] = threads
	for _, t := range threads {
		set := x.byThread[t]
		if set == nil {
			set = map[subscriber]struct{}{}
			x.byThread[t] = set
		}
		set[s] = struct{}{}
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
	for t := range threads {
		for s := range h.index.byThread[t] {
			s.wake()
		}
	}
}

// wakeIndexed wakes every subscriber indexed by thread, so that one that
// saw none of its threads' records for a while still moves its positions
// to the heads (cheaply, through the thread index) instead of finding,
// much later, that the memory tier evicted the range behind it.
func (h *Hub) wakeIndexed() {
	if h.indexed.Load() == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.index.threads {
		s.wake()
	}
}
