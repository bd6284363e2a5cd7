package limits

import (
	"context"
	"sync"
	"sync/atomic"
)

// Slot is an admitted connection's per-IP slot. The HTTP layer releases it
// when its handler returns, unless the handler took it over with Take (a
// WebSocket session that outlives its handler goroutine); the owner then
// releases it when the connection ends. Release is idempotent.
type Slot struct {
	once    sync.Once
	release func()
	taken   atomic.Bool
}

// NewSlot wraps a release function.
func NewSlot(release func()) *Slot { return &Slot{release: release} }

// Take transfers the slot to the caller and returns its release function.
func (s *Slot) Take() func() {
	s.taken.Store(true)
	return s.Release
}

// Taken reports whether the slot was taken over.
func (s *Slot) Taken() bool { return s.taken.Load() }

// Release frees the slot once.
func (s *Slot) Release() { s.once.Do(s.release) }

type slotKey struct{}

// WithSlot returns ctx carrying s.
func WithSlot(ctx context.Context, s *Slot) context.Context {
	return context.WithValue(ctx, slotKey{}, s)
}

// TakeSlot takes over the slot in ctx and returns its release function (a
// no-op when ctx carries none).
func TakeSlot(ctx context.Context) func() {
	if s, ok := ctx.Value(slotKey{}).(*Slot); ok {
		return s.Take()
	}
	return func() {}
}
