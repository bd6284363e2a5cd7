package wsclient

import (
	"encoding/json"
	"strconv"
)

// Starting points of a resume (docs/PROTOCOL.md §3.2).
const (
	FromLatest   = "latest"
	FromCursor   = "cursor"
	FromEarliest = "earliest"
)

// Resume is the resume frame a client sends after connecting.
type Resume struct {
	// From is FromLatest, FromCursor or FromEarliest. Empty: FromCursor.
	From string
	// Offsets holds the last offset applied per partition (-1: nothing
	// applied yet); the server replays offsets strictly above. Partitions
	// not listed replay from the oldest record of the replay window.
	Offsets map[int32]int64
	// Threads holds the last sequence applied per thread. With Offsets nil
	// and Threads non-empty the server resumes in thread mode.
	Threads map[string]uint64
	// Mode forces "partition" or "thread". Empty: the server decides.
	Mode string
	// Namespace is the resume namespace the offsets belong to (from
	// /version); the server marks them stale if it differs. Empty: unchecked.
	Namespace string
	// Filter is the subscription filter object (docs/PROTOCOL.md §3.8), sent
	// as is. Nil: every record.
	Filter json.RawMessage
	// Format is "binary" or "json" (v2). Empty: not sent (binary).
	Format string
	// Join is "none" or "checkpoint". Empty: not sent (none).
	Join string
}

// MarshalJSON encodes the frame with offsets and sequences as decimal
// strings. lastOffsetsByPartition is always sent (as the dashboard does)
// unless the resume is a thread resume.
func (r *Resume) MarshalJSON() ([]byte, error) {
	f := struct {
		Type      string            `json:"type"`
		From      string            `json:"from,omitempty"`
		Offsets   map[string]string `json:"lastOffsetsByPartition,omitempty"`
		Threads   map[string]string `json:"lastSequencesByThread,omitempty"`
		Mode      string            `json:"mode,omitempty"`
		Namespace string            `json:"namespace,omitempty"`
		Filter    json.RawMessage   `json:"filter,omitempty"`
		Format    string            `json:"format,omitempty"`
		Join      string            `json:"join,omitempty"`
	}{Type: "resume", From: r.From, Mode: r.Mode, Namespace: r.Namespace, Filter: r.Filter, Format: r.Format, Join: r.Join}
	if r.Offsets != nil || len(r.Threads) == 0 {
		f.Offsets = make(map[string]string, len(r.Offsets))
		for p, o := range r.Offsets {
			f.Offsets[strconv.Itoa(int(p))] = strconv.FormatInt(o, 10)
		}
	}
	if len(r.Threads) > 0 {
		f.Threads = make(map[string]string, len(r.Threads))
		for t, s := range r.Threads {
			f.Threads[t] = strconv.FormatUint(s, 10)
		}
	}
	b, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	if f.Offsets != nil && len(f.Offsets) == 0 { // omitempty dropped the empty map
		b = append(b[:len(b)-1], `,"lastOffsetsByPartition":{}}`...)
	}
	return b, nil
}
