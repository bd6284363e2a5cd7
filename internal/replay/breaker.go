package replay

import (
	"sync/atomic"
	"time"
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
	// probing is set while a probe is in flight (the half-open trial).
	probing atomic.Bool
	// opens counts transitions to stateOpen; downSince is when the breaker
	// last stopped being closed (unix ns: its creation, or its last opening).
	opens     atomic.Uint64
	downSince atomic.Int64
	// onChange is called after every state change with the new state, by
	// the goroutine that changed it. It must not block.
	onChange func(state int32)
}

// newBreaker returns a breaker in stateStarting that opens after threshold
// consecutive failures (at least 1).
func newBreaker(threshold int, onChange func(state int32)) *breaker {
	b := &breaker{threshold: int32(max(threshold, 1)), onChange: onChange}
	b.downSince.Store(time.Now().UnixNano())
	return b
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

// probeStarted marks a probe in flight; probed ends it.
func (b *breaker) probeStarted() { b.probing.Store(true) }

// probed records a probe's outcome and reports whether the state changed. A
// failed probe counts as a consecutive failure (for the status only: an
// open breaker has nothing left to open).
func (b *breaker) probed(ok bool) bool {
	defer b.probing.Store(false)
	if ok {
		b.fails.Store(0)
		return b.set(stateOpen, stateClosed) || b.set(stateStarting, stateClosed)
	}
	b.fails.Add(1)
	return b.set(stateStarting, stateOpen)
}

func (b *breaker) set(from, to int32) bool {
	if !b.state.CompareAndSwap(from, to) {
		return false
	}
	if to == stateOpen {
		b.opens.Add(1)
		if from == stateClosed {
			b.downSince.Store(time.Now().UnixNano())
		}
	}
	if b.onChange != nil {
		b.onChange(to)
	}
	return true
}

// Breaker states as BreakerStatus.State reports them (docs/PROTOCOL.md §5).
const (
	// BreakerHealthy: closed, Redis answers; reads and writes go through.
	BreakerHealthy = "healthy"
	// BreakerOpen: Redis failed; reads skip it, writes are dropped and
	// counted, a PING probes it every ProbeInterval.
	BreakerOpen = "open"
	// BreakerHalfOpen: a probe decides whether Redis is back: the first
	// connection attempt, or a probe in flight while open.
	BreakerHalfOpen = "half_open"
)

// BreakerStatus is a snapshot of the Redis tier's circuit breaker.
type BreakerStatus struct {
	State string // one of the Breaker* constants
	// ConsecutiveFailures counts failed operations and probes since Redis
	// last answered.
	ConsecutiveFailures int
	// FailureThreshold is how many consecutive failures open the breaker.
	FailureThreshold int
	// TimesOpened counts openings since the store was created (the first
	// failed connection attempt included).
	TimesOpened uint64
	// DownSince is when the breaker last stopped being healthy (its
	// creation, or its last opening); zero while it is healthy.
	DownSince time.Time
	// ProbeInterval is the PING period while open.
	ProbeInterval time.Duration
}

func (b *breaker) status() BreakerStatus {
	st := BreakerStatus{
		ConsecutiveFailures: int(b.fails.Load()),
		FailureThreshold:    int(b.threshold),
		TimesOpened:         b.opens.Load(),
	}
	switch b.current() {
	case stateClosed:
		st.State = BreakerHealthy
		return st
	case stateOpen:
		st.State = BreakerOpen
		if b.probing.Load() {
			st.State = BreakerHalfOpen
		}
	default:
		st.State = BreakerHalfOpen
	}
	st.DownSince = time.Unix(0, b.downSince.Load())
	return st
}
