package kafka

import (
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"
)

// partState is the consumer goroutine's own state of one partition. Only
// that goroutine touches it; view.sync copies what others may read.
type partState struct {
	id       int32
	next     int64 // next offset to read: everything below is published or is a control record
	prev     int64 // offset of the last record published (startOffset-1 before the first)
	startHWM int64 // high watermark when reading the partition began: below it is catch-up history
	hwm, lso int64 // latest watermarks seen in fetch responses, -1 unknown
	lastTsMs int64 // Kafka timestamp of the last record read, 0 before the first
	touched  bool  // already listed for this poll's view sync

	// While paused (pause policy), the record that failed and why.
	failed *failure
}

func newPartState(p int32, start, hwm int64) *partState {
	return &partState{id: p, next: start, prev: start - 1, startHWM: hwm, hwm: hwm, lso: -1}
}

func (st *partState) paused() bool { return st.failed != nil }

// partView is what other goroutines know about one partition.
type partView struct {
	label    string // partition number, the metric label
	next     int64
	startHWM int64
	hwm, lso int64 // -1 unknown
	paused   bool
	lastTsMs int64
	// behindSince is when lag was last seen going from zero to positive;
	// waitingSince is when lag was seen positive with no move since. Both
	// are zero while the partition is caught up.
	behindSince, waitingSince time.Time
}

// observe updates the lag clocks after next or the watermarks changed.
func (pv *partView) observe(now time.Time, moved bool) {
	if pv.lag() == 0 {
		pv.behindSince, pv.waitingSince = time.Time{}, time.Time{}
		return
	}
	if pv.behindSince.IsZero() {
		pv.behindSince = now
	}
	if moved || pv.waitingSince.IsZero() {
		pv.waitingSince = now
	}
}

// lag is the number of records the consumer could read but has not: up to
// the last stable offset (read_committed stops there), else the high
// watermark. Transaction markers move next (control records are read), so a
// transactional topic drains to 0; offsets removed by compaction at the very
// end of a partition would not, which only matters for compacted topics.
func (pv *partView) lag() int64 {
	end := pv.lso
	if end < 0 {
		end = pv.hwm
	}
	return max(0, end-pv.next)
}

// view is the state shared between the consumer goroutine, the lag,
// progress and partition loops, and the accessors of Consumer.
type view struct {
	mu    sync.Mutex
	parts map[int32]*partView
}

func (v *view) reset(states map[int32]*partState) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.parts = make(map[int32]*partView, len(states))
	for _, st := range states {
		v.parts[st.id] = viewOf(st)
	}
}

func viewOf(st *partState) *partView {
	return &partView{label: strconv.Itoa(int(st.id)), next: st.next, startHWM: st.startHWM, hwm: st.hwm, lso: st.lso}
}

func (v *view) add(st *partState) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.parts[st.id] = viewOf(st)
}

// sync copies the consumer's state of the touched partitions and returns the
// number of paused partitions.
func (v *view) sync(states []*partState, now time.Time) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, st := range states {
		pv := v.parts[st.id]
		if pv == nil {
			continue
		}
		moved := st.next > pv.next
		pv.next, pv.paused, pv.lastTsMs = st.next, st.paused(), st.lastTsMs
		pv.hwm, pv.lso = max(pv.hwm, st.hwm), max(pv.lso, st.lso)
		pv.observe(now, moved)
	}
	n := 0
	for _, pv := range v.parts {
		if pv.paused {
			n++
		}
	}
	return n
}

// progress returns the next offset of every partition.
func (v *view) progress() map[int32]int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[int32]int64, len(v.parts))
	for p, pv := range v.parts {
		out[p] = pv.next
	}
	return out
}

func (v *view) setWatermarks(hwm, lso map[int32]int64, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for p, pv := range v.parts {
		if o, ok := hwm[p]; ok {
			pv.hwm = max(pv.hwm, o)
		}
		if o, ok := lso[p]; ok {
			pv.lso = max(pv.lso, o)
		}
		pv.observe(now, false)
	}
}

func (v *view) highWatermark(p int32) (int64, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	pv := v.parts[p]
	if pv == nil || pv.hwm < 0 {
		return 0, false
	}
	return pv.hwm, true
}

func (v *view) partitions() []int32 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Sorted(maps.Keys(v.parts))
}

func (v *view) paused() []int32 {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []int32
	for p, pv := range v.parts {
		if pv.paused {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// stalled reports a partition, not paused, that has had records waiting and
// has not moved for longer than since.
func (v *view) stalled(now time.Time, since time.Duration) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, pv := range v.parts {
		if !pv.paused && !pv.waitingSince.IsZero() && now.Sub(pv.waitingSince) > since {
			return true
		}
	}
	return false
}
