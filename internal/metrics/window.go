package metrics

import "sync/atomic"

// windowSecs is the length of the sliding windows behind the *_last_120s
// health numbers.
const windowSecs = 120

// window counts events over the last windowSecs seconds in per-second
// buckets. Each bucket packs (unix second << 32 | count) in one word so that
// adding is a lock-free compare-and-swap and a stale bucket is reset by the
// first add of its new second. Counts saturate at 2^32-1 per second.
type window struct {
	buckets [windowSecs]atomic.Uint64
}

func (w *window) add(sec int64, n uint64) {
	b := &w.buckets[uint64(sec)%windowSecs]
	stamp := uint64(uint32(sec)) << 32
	for {
		old := b.Load()
		next := stamp | min(n, 0xFFFFFFFF)
		if old&^0xFFFFFFFF == stamp {
			next = stamp | min(old&0xFFFFFFFF+n, 0xFFFFFFFF)
		}
		if b.CompareAndSwap(old, next) {
			return
		}
	}
}

// sum is the number of events in the windowSecs seconds ending at sec.
func (w *window) sum(sec int64) uint64 {
	var total uint64
	for i := range w.buckets {
		v := w.buckets[i].Load()
		age := int64(uint32(sec) - uint32(v>>32))
		if v != 0 && age >= 0 && age < windowSecs {
			total += v & 0xFFFFFFFF
		}
	}
	return total
}
