package limits

import (
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
