package replay

import (
	"sync/atomic"
)

// Breaker states. A breaker starts in stateStarting: nothing has been tried
// yet, reads fail fast and writes wait in the queue until the first probe
// decides between closed and open.
const (
	stateStarting int32 = iota
	stateClosed
	stateOpen
)

// breaker is a consecutive-failure circuit breaker. It never probes by
// itself: its owner pings the backend while it is not closed and reports the
// answer (see Redis.probeLoop). Safe for concurrent use; lock-free.
type breaker struct {
	threshold int32
	state     atomic.Int32
	fails     atomic.Int32
	// onChange is called after every state change with the new state, by
	// the goroutine that changed it. It must not block.
	onChange func(state int32)
}

// newBreaker returns a breaker in stateStarting that opens after threshold
// consecutive failures (at least 1).
func newBreaker(threshold int, onChange func(state int32)) *breaker {
	return &breaker{threshold: int32(max(threshold, 1)), onChange: onChange}
}

// closed reports whether operations may go through.
func (b *breaker) closed() bool { return b.state.Load() == stateClosed }

// current returns the state (a state* constant).
func (b *breaker) current() int32 { return b.state.Load() }

// success resets the consecutive-failure count.
func (b *breaker) success() { b.fails.Store(0) }

// failure counts one failure and reports whether it opened the breaker.
func (b *breaker) failure() bool {
	if b.fails.Add(1) < b.threshold {
		return false
	}
	return b.set(stateClosed, stateOpen)
}

// probed records a probe's outcome and reports whether the state changed.
func (b *breaker) probed(ok bool) bool {
	if ok {
		b.fails.Store(0)
		return b.set(stateOpen, stateClosed) || b.set(stateStarting, stateClosed)
	}
	return b.set(stateStarting, stateOpen)
}

func (b *breaker) set(from, to int32) bool {
	if !b.state.CompareAndSwap(from, to) {
		return false
	}
	if b.onChange != nil {
		b.onChange(to)
	}
	return true
}
