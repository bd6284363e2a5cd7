package wsproto

import (
	"encoding/json"
	"strconv"
)

// Server → client frame types.
const (
	TypeCursor              = "cursor"
	TypeReplayComplete      = "replay_complete"
	TypeGap                 = "gap"
	TypeSkipped             = "skipped"
	TypeCursorStale         = "cursor_stale"
	TypeDisconnect          = "disconnect"
	TypeCursorResetComplete = "cursor_reset_complete"
	TypePong                = "pong"
	TypeRefreshComplete     = "refresh_complete"
	TypeError               = "error"
)

// Offset is an int64 Kafka offset that travels as a JSON string, so that
// JavaScript clients keep every bit of it.
type Offset int64

// MarshalJSON writes the offset as a decimal string.
func (o Offset) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 22)
	b = append(b, '"')
	b = strconv.AppendInt(b, int64(o), 10)
	return append(b, '"'), nil
}

// Offsets maps partitions to offsets: {"0":"41","3":"7"}.
type Offsets map[int32]Offset

// ReplayComplete ends every resume, exactly once.
type ReplayComplete struct {
	Type                   string  `json:"type"`
	TotalReplayed          int     `json:"totalReplayed"`
	LastOffsetsByPartition Offsets `json:"lastOffsetsByPartition"`
	Capped                 bool    `json:"capped"`
	Mode                   string  `json:"mode"`
}

// Gap announces records the client will never get.
type Gap struct {
	Type       string `json:"type"`
	Count      int64  `json:"count"`
	Partition  int32  `json:"partition"`
	FromOffset Offset `json:"fromOffset"`
	ToOffset   Offset `json:"toOffset"`
	Severity   string `json:"severity"`
	Reason     string `json:"reason"`
	Message    string `json:"message"`
}

// NewGap describes the inclusive range [from, to] of partition p.
func NewGap(p int32, from, to int64) Gap {
	n := to - from + 1
	return Gap{Type: TypeGap, Count: n, Partition: p, FromOffset: Offset(from),
		ToOffset: Offset(to), Severity: GapSeverity(n), Reason: "retention",
		Message: "records " + strconv.FormatInt(from, 10) + ".." + strconv.FormatInt(to, 10) +
			" of partition " + strconv.Itoa(int(p)) + " are no longer retained"}
}

// GapSeverity grades a number of lost records: info below 10, warning below
// 100, critical otherwise.
func GapSeverity(n int64) string {
	switch {
	case n < 10:
		return "info"
	case n < 100:
		return "warning"
	default:
		return "critical"
	}
}

// Skipped announces a dead-lettered offset (not a gap).
type Skipped struct {
	Type      string `json:"type"`
	Partition int32  `json:"partition"`
	Offset    Offset `json:"offset"`
	ErrorType string `json:"error_type"`
}

// CursorStale says a requested cursor is older than anything retained, or
// does not exist in this topic.
type CursorStale struct {
	Type      string `json:"type"`
	Partition int32  `json:"partition"`
	Requested Offset `json:"requested"`
	Oldest    Offset `json:"oldest"`
	Message   string `json:"message"`
}

// Disconnect is sent right before a slow client is closed.
type Disconnect struct {
	Type          string `json:"type"`
	Reason        string `json:"reason"`
	LagInWindow   int64  `json:"lag_in_window"`
	CumulativeLag int64  `json:"cumulative_lag"`
	Threshold     int64  `json:"threshold"`
	WindowSecs    int64  `json:"window_secs"`
	Message       string `json:"message"`
}

// CursorResetComplete answers cursor_reset.
type CursorResetComplete struct {
	Type                     string  `json:"type"`
	LatestOffsetsByPartition Offsets `json:"latestOffsetsByPartition"`
	BufferCleared            bool    `json:"bufferCleared"`
	Truncated                bool    `json:"truncated"`
	TotalPartitions          int     `json:"totalPartitions"`
	Message                  string  `json:"message"`
}

// RefreshComplete answers a refresh the server accepted. ExpiresAt is when
// the new credentials expire (RFC 3339, UTC); omitted when they never do.
type RefreshComplete struct {
	Type      string `json:"type"`
	ExpiresAt string `json:"expiresAt,omitempty"`
}

// Error reports a protocol violation; Entries lists rejected resume entries.
type Error struct {
	Type    string   `json:"type"`
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Entries []string `json:"entries,omitempty"`
}

// NewError builds an error frame.
func NewError(code, msg string) Error { return Error{Type: TypeError, Code: code, Message: msg} }

// Error codes sent to clients.
const (
	CodeControlTooLarge         = "CONTROL_FRAME_TOO_LARGE"
	CodeInvalidJSON             = "INVALID_JSON"
	CodeUnknownType             = "UNKNOWN_MESSAGE_TYPE"
	CodeResumeTooManyPartitions = "RESUME_TOO_MANY_PARTITIONS"
	CodeResumeTooManyThreads    = "RESUME_TOO_MANY_THREADS"
	CodeResumeInvalidEntry      = "RESUME_INVALID_ENTRY"
	CodeReplayTimeout           = "REPLAY_TIMEOUT"
	CodeReplayUnavailable       = "REPLAY_UNAVAILABLE"
	CodeBinaryNotSupported      = "BINARY_NOT_SUPPORTED"
	CodeTokenInvalid            = "TOKEN_INVALID"
	CodeTokenExpired            = "TOKEN_EXPIRED"
	CodeTokenTenantMismatch     = "TOKEN_TENANT_MISMATCH"
	// CodeFilterInvalid: a resume's filter is malformed (not an object, an
	// unknown field or name, an empty list, an over-long thread id).
	CodeFilterInvalid = "FILTER_INVALID"
	// CodeFilterTooManyThreads: a filter lists more than 1,000 threads.
	CodeFilterTooManyThreads = "FILTER_TOO_MANY_THREADS"
)

// PongFrame is the pre-encoded reply to a client ping.
var PongFrame = TextFrame([]byte(`{"type":"pong"}`))

// Frame encodes a server message as a text frame.
func Frame(msg any) []byte { return TextFrame(mustJSON(msg)) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil { // only our own plain structs are encoded here
		panic("wsproto: encode " + err.Error())
	}
	return b
}
