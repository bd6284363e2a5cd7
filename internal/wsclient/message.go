package wsclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Kind tells which field of a Message is set.
type Kind uint8

// Message kinds.
const (
	KindRecord  Kind = iota + 1 // Message.Record
	KindControl                 // Message.Control
)

// Message is one thing the server said: a record or a control frame. It is a
// plain value so that returning it never allocates.
type Message struct {
	Kind    Kind
	Record  Record
	Control Control
}

// Record is a Kafka record as delivered: in v1 its coordinates from the
// cursor frame and its value from the binary frame that followed, byte for
// byte; in v2 both from the record's one frame.
type Record struct {
	Partition int32
	Offset    int64
	// Value is the record value; nil for a v2 JSON record.
	Value []byte
	// JSON is the decoded message in protobuf's canonical JSON mapping, for
	// a v2 record received with format "json"; nil otherwise.
	JSON []byte
}

// Control is a server text frame other than a cursor: replay_complete, gap,
// skipped, cursor_stale, disconnect, cursor_reset_complete, pong, error.
type Control struct {
	Type string
	Raw  []byte // the frame's JSON, owned by the caller
}

// Decode unmarshals the frame into v (one of the frame types below, or any
// JSON-compatible value).
func (c Control) Decode(v any) error {
	if err := json.Unmarshal(c.Raw, v); err != nil {
		return fmt.Errorf("wsclient: decode %s frame: %w", c.Type, err)
	}
	return nil
}

// Offset decodes an offset or sequence sent as a JSON string (or, leniently,
// a number) without going through float64.
type Offset int64

// UnmarshalJSON accepts "41" and 41.
func (o *Offset) UnmarshalJSON(b []byte) error {
	n, err := strconv.ParseInt(string(bytes.Trim(b, `"`)), 10, 64)
	if err != nil {
		return fmt.Errorf("offset %s: %w", b, err)
	}
	*o = Offset(n)
	return nil
}

// Gap is a "gap" frame: records From..To (inclusive) of Partition are gone.
type Gap struct {
	Count      int64  `json:"count"`
	Partition  int32  `json:"partition"`
	FromOffset Offset `json:"fromOffset"`
	ToOffset   Offset `json:"toOffset"`
	Severity   string `json:"severity"`
	Reason     string `json:"reason"`
	Message    string `json:"message"`
}

// Skipped is a "skipped" frame: a dead-lettered offset.
type Skipped struct {
	Partition int32  `json:"partition"`
	Offset    Offset `json:"offset"`
	ErrorType string `json:"error_type"`
}

// CursorStale is a "cursor_stale" frame.
type CursorStale struct {
	Partition int32  `json:"partition"`
	Requested Offset `json:"requested"`
	Oldest    Offset `json:"oldest"`
	Message   string `json:"message"`
}

// ReplayComplete is a "replay_complete" frame.
type ReplayComplete struct {
	TotalReplayed          int              `json:"totalReplayed"`
	LastOffsetsByPartition map[int32]Offset `json:"lastOffsetsByPartition"`
	Capped                 bool             `json:"capped"`
	Mode                   string           `json:"mode"`
}

// CursorResetComplete is a "cursor_reset_complete" frame.
type CursorResetComplete struct {
	LatestOffsetsByPartition map[int32]Offset `json:"latestOffsetsByPartition"`
	BufferCleared            bool             `json:"bufferCleared"`
	Message                  string           `json:"message"`
}

// Disconnect is a "disconnect" frame, sent before a slow client is closed.
type Disconnect struct {
	Reason        string `json:"reason"`
	LagInWindow   int64  `json:"lag_in_window"`
	CumulativeLag int64  `json:"cumulative_lag"`
	Threshold     int64  `json:"threshold"`
	WindowSecs    int64  `json:"window_secs"`
	Message       string `json:"message"`
}

// ErrorFrame is an "error" frame.
type ErrorFrame struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Entries []string `json:"entries"`
}

// pairer enforces docs/PROTOCOL.md §3.1: every binary frame is immediately preceded by
// its cursor frame, and a cursor is immediately followed by its binary.
type pairer struct {
	pending   bool
	partition int32
	offset    int64
}

// text handles a text frame. It returns a control message, or ok=false for a
// cursor (the record completes with the next binary frame). Raw is b itself
// when own is true, else a copy.
func (pr *pairer) text(b []byte, own bool) (msg Message, ok bool, err error) {
	if pr.pending {
		return Message{}, false, fmt.Errorf("%w: cursor p%d@%d not followed by its binary frame", ErrProtocol, pr.partition, pr.offset)
	}
	if p, o, isCursor, err := parseCursor(b); isCursor {
		if err != nil {
			return Message{}, false, err
		}
		pr.pending, pr.partition, pr.offset = true, p, o
		return Message{}, false, nil
	}
	typ, err := controlType(b)
	if err != nil {
		return Message{}, false, err
	}
	if !own {
		b = bytes.Clone(b)
	}
	return Message{Kind: KindControl, Control: Control{Type: typ, Raw: b}}, true, nil
}

// binary completes the pending record with value.
func (pr *pairer) binary(value []byte) (Message, error) {
	if !pr.pending {
		return Message{}, fmt.Errorf("%w: binary frame without a cursor", ErrProtocol)
	}
	pr.pending = false
	return Message{Kind: KindRecord, Record: Record{Partition: pr.partition, Offset: pr.offset, Value: value}}, nil
}

func controlType(b []byte) (string, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &head); err != nil || head.Type == "" {
		return "", fmt.Errorf("%w: text frame is not a typed JSON object: %.64q", ErrProtocol, b)
	}
	return head.Type, nil
}
