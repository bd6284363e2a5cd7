package wsproto

import (
	"bytes"
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Limits on what a client may send.
const (
	MaxControlBytes      = 1 << 20 // a larger text frame is refused before it is read
	MaxResumePartitions  = 1024
	MaxResumeThreads     = 10000
	MaxThreadIDBytes     = 4096
	MaxRefreshTokenBytes = 8 << 10 // as auth.MaxTokenBytes
	maxReportedInvalid   = 32      // invalid entries echoed back in one error frame
)

// ControlKind tells which client frame was received.
type ControlKind uint8

// Client frame kinds.
const (
	ControlResume ControlKind = iota + 1
	ControlPing
	ControlCursorReset
	ControlRefresh
)

// Resume modes and starting points.
const (
	FromLatest    = "latest"
	FromCursor    = "cursor"
	FromEarliest  = "earliest"
	ModePartition = "partition"
	ModeThread    = "thread"
)

// Control is one parsed client frame.
type Control struct {
	Kind   ControlKind
	Resume *Resume // set for ControlResume
	Token  string  // set for ControlRefresh: the new credentials, not yet verified
}

// Resume is a parsed resume request.
type Resume struct {
	From string // FromLatest, FromCursor or FromEarliest
	Mode string // ModePartition or ModeThread
	// Offsets holds, per listed partition, the last offset the client
	// applied (-1: nothing applied yet). Replay sends offsets above it.
	Offsets map[int32]int64
	// Threads holds, per listed thread, the last sequence the client applied.
	Threads   map[string]uint64
	Namespace string
	// Filter is the resume's "filter" object as sent, nil when absent or
	// null. It is not interpreted here: the hub parses it with filter.Parse
	// and answers a refused filter with an error frame.
	Filter json.RawMessage
	// Format is FormatBinary (default) or FormatJSON: how a v2 connection
	// receives records. v1 connections ignore it.
	Format string
	// Join is JoinNone (default) or JoinCheckpoint: with from "latest", first
	// replay every active thread from its latest full-state record.
	Join string
	// Invalid lists the entries that were ignored, for an error frame.
	Invalid []string
}

// ReplayMode is the mode reported in replay_complete and metrics.
func (r *Resume) ReplayMode() string {
	if r.Mode == ModeThread {
		return ModeThread
	}
	return r.From
}

type rawControl struct {
	Type                   string                     `json:"type"`
	From                   string                     `json:"from"`
	Mode                   string                     `json:"mode"`
	Namespace              string                     `json:"namespace"`
	LastOffsetsByPartition map[string]json.RawMessage `json:"lastOffsetsByPartition"`
	LastSequencesByThread  map[string]json.RawMessage `json:"lastSequencesByThread"`
	ThreadID               *string                    `json:"threadId"`
	LastSequence           json.RawMessage            `json:"lastSequence"`
	Token                  json.RawMessage            `json:"token"`
	Filter                 json.RawMessage            `json:"filter"`
	Format                 json.RawMessage            `json:"format"`
	Join                   json.RawMessage            `json:"join"`
}

// ParseControl parses a client text frame. A non-nil *Error is the frame to
// answer with; the connection stays open in every case.
func ParseControl(data []byte) (Control, *Error) {
	if len(data) > MaxControlBytes {
		return Control{}, errFrame(CodeControlTooLarge, "control frame exceeds 1 MiB")
	}
	var raw rawControl
	if err := json.Unmarshal(data, &raw); err != nil {
		return Control{}, errFrame(CodeInvalidJSON, "control frame is not valid JSON")
	}
	switch raw.Type {
	case "resume":
		r, e := parseResume(&raw)
		if e != nil { // a refused resume is no resume: Kind stays 0
			return Control{}, e
		}
		return Control{Kind: ControlResume, Resume: r}, nil
	case "ping":
		return Control{Kind: ControlPing}, nil
	case "cursor_reset":
		return Control{Kind: ControlCursorReset}, nil
	case "refresh":
		return parseRefresh(raw.Token)
	}
	return Control{}, errFrame(CodeUnknownType, "unknown control frame type")
}

// parseRefresh reads the token of a refresh frame: a non-empty JSON string
// of at most MaxRefreshTokenBytes. A refused refresh changes nothing on the
// connection (docs/PROTOCOL.md §3.8).
func parseRefresh(v json.RawMessage) (Control, *Error) {
	var token string
	if len(v) == 0 || json.Unmarshal(v, &token) != nil || token == "" {
		return Control{}, errFrame(CodeTokenInvalid, "refresh needs a non-empty string token")
	}
	if len(token) > MaxRefreshTokenBytes {
		return Control{}, errFrame(CodeTokenInvalid, "refresh token exceeds 8 KiB")
	}
	return Control{Kind: ControlRefresh, Token: token}, nil
}

func errFrame(code, msg string) *Error {
	e := NewError(code, msg)
	return &e
}

func parseResume(raw *rawControl) (*Resume, *Error) {
	if len(raw.LastOffsetsByPartition) > MaxResumePartitions {
		return nil, errFrame(CodeResumeTooManyPartitions, "resume lists more than 1024 partitions")
	}
	if threads := len(raw.LastSequencesByThread); threads > MaxResumeThreads ||
		(threads == MaxResumeThreads && raw.ThreadID != nil && !hasKey(raw.LastSequencesByThread, *raw.ThreadID)) {
		return nil, errFrame(CodeResumeTooManyThreads, "resume lists more than 10000 threads")
	}
	r := &Resume{Namespace: boundString(raw.Namespace, 256)}
	r.From = r.pick("from", raw.From, FromCursor, FromLatest, FromCursor, FromEarliest)
	r.Mode = r.pick("mode", raw.Mode, "", ModePartition, ModeThread)
	r.Offsets = r.parseOffsets(raw.LastOffsetsByPartition)
	r.Threads = r.parseThreads(raw)
	r.Format = r.pick("format", r.text("format", raw.Format), FormatBinary, FormatBinary, FormatJSON)
	r.Join = r.pick("join", r.text("join", raw.Join), JoinNone, JoinNone, JoinCheckpoint)
	if f := bytes.TrimSpace(raw.Filter); len(f) > 0 && string(f) != "null" {
		r.Filter = f
	}
	if r.Mode == "" {
		r.Mode = ModePartition
		if raw.LastOffsetsByPartition == nil && (raw.LastSequencesByThread != nil || raw.ThreadID != nil) {
			r.Mode = ModeThread
		}
	}
	sort.Strings(r.Invalid)
	if len(r.Invalid) > maxReportedInvalid {
		r.Invalid = append(r.Invalid[:maxReportedInvalid], "…")
	}
	return r, nil
}

// text reads an optional string field that v1 clients never sent and may
// carry anything: a value that is not a string is an invalid entry (never a
// JSON error, so that v1 frames parse exactly as before). "" when absent.
func (r *Resume) text(field string, v json.RawMessage) string {
	var s string
	if len(v) == 0 || string(v) == "null" {
		return ""
	}
	if json.Unmarshal(v, &s) != nil {
		r.invalid(field, string(v))
		return ""
	}
	return s
}

// pick returns v when it is one of allowed, def when v is empty, and records
// an invalid entry otherwise.
func (r *Resume) pick(field, v, def string, allowed ...string) string {
	if v == "" {
		return def
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.invalid(field, v)
	return def
}

func (r *Resume) invalid(key, val string) {
	r.Invalid = append(r.Invalid, boundString(key, 64)+"="+boundString(val, 64))
}

func (r *Resume) parseOffsets(m map[string]json.RawMessage) map[int32]int64 {
	out := make(map[int32]int64, len(m))
	for k, v := range m {
		p, err := strconv.ParseInt(k, 10, 32)
		o, ok := parseInt(v, -1, math.MaxInt64)
		// Only the canonical spelling of a partition is accepted: "01", "+1"
		// and "1" in one object would otherwise race for partition 1.
		if err != nil || p < 0 || !ok || strconv.FormatInt(p, 10) != k {
			r.invalid(k, string(v))
			continue
		}
		out[int32(p)] = o
	}
	return out
}

func (r *Resume) parseThreads(raw *rawControl) map[string]uint64 {
	out := make(map[string]uint64, len(raw.LastSequencesByThread)+1)
	add := func(thread string, v json.RawMessage) {
		seq, ok := parseUint(v)
		if !ok || thread == "" || len(thread) > MaxThreadIDBytes {
			r.invalid(thread, string(v))
			return
		}
		out[thread] = seq
	}
	for t, v := range raw.LastSequencesByThread {
		add(t, v)
	}
	if raw.ThreadID != nil {
		seq := raw.LastSequence
		if len(seq) == 0 || string(seq) == "null" {
			seq = json.RawMessage("0")
		}
		add(*raw.ThreadID, seq)
	}
	return out
}

func hasKey(m map[string]json.RawMessage, k string) bool {
	_, ok := m[k]
	return ok
}

// parseInt reads a JSON integer or decimal string within [lo, hi] exactly
// (never through float64).
func parseInt(v json.RawMessage, lo, hi int64) (int64, bool) {
	n, err := strconv.ParseInt(unquote(v), 10, 64)
	return n, err == nil && n >= lo && n <= hi
}

func parseUint(v json.RawMessage) (uint64, bool) {
	n, err := strconv.ParseUint(unquote(v), 10, 64)
	return n, err == nil
}

func unquote(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return string(v[1 : len(v)-1])
	}
	return string(v)
}

// boundString bounds an untrusted string on a UTF-8 boundary.
func boundString(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit], "")
}
