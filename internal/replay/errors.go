package replay

import "errors"

// ErrUnavailable means a tier cannot serve right now (Redis down, its circuit
// breaker open). The data is not lost: callers read a lower tier or answer
// REPLAY_UNAVAILABLE, never a gap.
var ErrUnavailable = errors.New("store unavailable")
