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
// record of the topic. One whose filter names message types or event types
// (and no exact threads) is woken likewise only by records of those types
// (of those event types when it names event types: they imply an event
// record). Every other subscriber (no filter, a thread prefix alone) is
// "broad" and woken by every publish. All fields are guarded by Hub.mu.
type subIndex struct {
	broad    map[subscriber]struct{}
	byThread map[string]map[subscriber]*indexedSub
	byType   [maxWakeType]map[subscriber]*indexedSub
	byEvent  map[int32]map[subscriber]*indexedSub
	indexed  map[subscriber]*indexedSub // the subscribers indexed by thread or type
	// round counts wakeIndexed's rounds: a subscriber woken for its
	// records during a round needs no wake-up at the next.
	round uint64
}

// Message types and event types the wake-up index tells apart: a filter
// names no others (filter.Filter.TypeScope).
const (
	maxWakeType  = 16
	maxWakeEvent = 128
)

// wakeKey is what wakes a subscriber: records of its exact threads, or
// else of its types (replay.TypeQuery, as its filter's TypeScope); the zero
// key: every publish (broad).
type wakeKey struct {
	threads []string
	types   replay.TypeQuery
}

func (k wakeKey) broad() bool {
	return k.threads == nil && k.types.Types == 0 && len(k.types.Events) == 0
}

// indexedSub is a subscriber's entry in the index.
type indexedSub struct {
	key   wakeKey // what it is indexed under
	woken uint64  // the round of its last wake-up
}

func newSubIndex() subIndex {
	return subIndex{broad: map[subscriber]struct{}{}, byThread: map[string]map[subscriber]*indexedSub{},
		byEvent: map[int32]map[subscriber]*indexedSub{}, indexed: map[subscriber]*indexedSub{}}
}

// add registers a new subscriber as broad.
func (x *subIndex) add(s subscriber) { x.broad[s] = struct{}{} }

// remove forgets s wherever it is.
func (x *subIndex) remove(s subscriber) {
	delete(x.broad, s)
	x.unindex(s)
}

func (x *subIndex) unindex(s subscriber) {
	e := x.indexed[s]
	if e == nil {
		return
	}
	for _, t := range e.key.threads {
		leave(x.byThread, t, s)
	}
	if events := e.key.types.Events; len(events) > 0 {
		for _, ev := range events {
			leave(x.byEvent, ev, s)
		}
	} else {
		for t := range x.byType {
			if e.key.types.Types&(1<<t) != 0 {
				delete(x.byType[t], s)
			}
		}
	}
	delete(x.indexed, s)
}

// set indexes s under key (the zero key: broad). A subscriber with exact
// threads is indexed by them; else one with event types by those (every
// record it can match carries one); else by its message types.
func (x *subIndex) set(s subscriber, key wakeKey) {
	x.unindex(s)
	if key.broad() {
		x.broad[s] = struct{}{}
		return
	}
	delete(x.broad, s)
	if key.threads != nil {
		key.types = replay.TypeQuery{} // the threads are the narrower key
	}
	e := &indexedSub{key: key, woken: x.round}
	x.indexed[s] = e
	for _, t := range key.threads {
		join(x.byThread, t, s, e)
	}
	if events := key.types.Events; len(events) > 0 {
		for _, ev := range events {
			join(x.byEvent, ev, s, e)
		}
		return
	}
	for t := range x.byType {
		if key.types.Types&(1<<t) != 0 {
			if x.byType[t] == nil {
				x.byType[t] = map[subscriber]*indexedSub{}
			}
			x.byType[t][s] = e
		}
	}
}

// join adds s (entry e) to the set of k.
func join[K comparable](sets map[K]map[subscriber]*indexedSub, k K, s subscriber, e *indexedSub) {
	set := sets[k]
	if set == nil {
		set = map[subscriber]*indexedSub{}
		sets[k] = set
	}
	set[s] = e
}

// leave removes s from the set of k, and the set when it empties.
func leave[K comparable](sets map[K]map[subscriber]*indexedSub, k K, s subscriber) {
	set := sets[k]
	delete(set, s)
	if len(set) == 0 {
		delete(sets, k)
	}
}

// subscribe indexes s under key (the zero key: woken by every publish). It
// runs before the epoch's positions are taken, so every record published
// after them wakes s if it may match.
func (h *Hub) subscribe(s subscriber, key wakeKey) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.index.broad[s]; !ok && h.index.indexed[s] == nil {
		return // not (or no longer) registered: the session is over
	}
	h.index.set(s, key)
	h.indexed.Store(int64(len(h.index.indexed)))
}

// published is what was published since the last wake-up, as the index
// needs it (guarded by Hub.wakeMu).
type published struct {
	threads map[string]struct{}
	types   uint16                    // bit t: a record of Type t
	events  [maxWakeEvent / 64]uint64 // bit e: a record carrying an event of type e
}

// noteThreads remembers the threads, message types and event types of
// published records until the next wake-up (only while some subscriber is
// indexed).
func (h *Hub) noteThreads(recs []*replay.Record) {
	if h.indexed.Load() == 0 {
		return
	}
	h.wakeMu.Lock()
	defer h.wakeMu.Unlock()
	pub := &h.pending
	if pub.threads == nil {
		pub.threads = map[string]struct{}{}
	}
	for _, r := range recs {
		for _, t := range r.Threads {
			pub.threads[t.Thread] = struct{}{}
		}
		if r.Type < maxWakeType {
			pub.types |= 1 << r.Type
		}
		for _, e := range r.EventTypes {
			if e >= 0 && e < maxWakeEvent {
				pub.events[e/64] |= 1 << (e % 64)
			}
		}
	}
}

// wakeSubscribers wakes every broad subscriber and the indexed ones whose
// threads or types were published since the previous wake-up.
func (h *Hub) wakeSubscribers() {
	h.wakeMu.Lock()
	pub := h.pending
	h.pending = published{}
	h.wakeMu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.index.broad {
		s.wake()
	}
	round := h.index.round
	for t := range pub.threads {
		wakeAll(h.index.byThread[t], round)
	}
	for t := range maxWakeType {
		if pub.types&(1<<t) != 0 {
			wakeAll(h.index.byType[t], round)
		}
	}
	for e := range int32(maxWakeEvent) {
		if pub.events[e/64]&(1<<(e%64)) != 0 {
			wakeAll(h.index.byEvent[e], round)
		}
	}
}

func wakeAll(set map[subscriber]*indexedSub, round uint64) {
	for s, e := range set {
		s.wake()
		e.woken = round
	}
}

// wakeIndexed (every second) wakes the indexed subscribers that no record
// of theirs woke during the last round, so that one whose threads or types
// stay quiet still moves its positions to the heads (cheaply, through the
// memory tier's index) instead of finding, much later, that the memory
// tier evicted the range behind it. A subscriber its records keep waking
// is already at the heads: waking all 10,000 of them every second would
// cost as much as their records.
func (h *Hub) wakeIndexed() {
	if h.indexed.Load() == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	x := &h.index
	last := x.round
	x.round++
	for s, e := range x.indexed {
		if e.woken != last {
			s.wake()
			e.woken = x.round
		}
	}
}
