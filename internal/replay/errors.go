package replay

import "errors"

// ErrUnavailable means a tier cannot serve right now (Redis down, its circuit
// breaker open, Kafka unreachable) or a range that no tier returned cannot be
// proven gone (no log start that Kafka reported recently). The data is not
// lost: callers read a lower tier or answer REPLAY_UNAVAILABLE, never a gap.
var ErrUnavailable = errors.New("store unavailable")
