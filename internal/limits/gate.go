package limits

import (
	"sync"
	"sync/atomic"
)

// Gate bounds a number of concurrent holders over the whole process (the
// WebSocket session cap); the per-IP ConnLimiter bounds each address. A nil
// *Gate admits everyone.
type Gate struct {
	max    int64
	active atomic.Int64
}

// NewGate returns a gate admitting limit holders; limit <= 0 admits everyone.
func NewGate(limit int) *Gate {
	if limit <= 0 {
		return nil
	}
	return &Gate{max: int64(limit)}
}

// Acquire takes a place. On success release must be called when the holder
// ends (it is idempotent); a full gate returns ErrServerFull.
func (g *Gate) Acquire() (release func(), err error) {
	if g == nil {
		return func() {}, nil
	}
	// A compare-and-swap rather than add-then-undo: the count never passes
	// max, not even for an instant, so Active (the gauge) never reads above
	// the limit it reports beside.
	for {
		n := g.active.Load()
		if n >= g.max {
			return nil, ErrServerFull
		}
		if g.active.CompareAndSwap(n, n+1) {
			break
		}
	}
	var once sync.Once
	return func() { once.Do(func() { g.active.Add(-1) }) }, nil
}

// Active is the number of places held now.
func (g *Gate) Active() int {
	if g == nil {
		return 0
	}
	return int(g.active.Load())
}

// Max is the number of places (0: unlimited).
func (g *Gate) Max() int {
	if g == nil {
		return 0
	}
	return int(g.max)
}
