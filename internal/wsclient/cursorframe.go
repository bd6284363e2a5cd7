package wsclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

var (
	cursorPrefix = []byte(`{"type":"cursor","partition":`)
	offsetKey    = []byte(`,"offset":"`)
	cursorSuffix = []byte(`"}`)
)

// parseCursor recognizes a cursor frame. The gateway's exact encoding is
// parsed without allocating; any other spelling of a cursor goes through
// encoding/json. isCursor is false for every other frame type.
func parseCursor(b []byte) (partition int32, offset int64, isCursor bool, err error) {
	if p, o, ok := parseCursorFast(b); ok {
		return p, o, true, nil
	}
	if !bytes.Contains(b, []byte(`"cursor"`)) {
		return 0, 0, false, nil
	}
	return parseCursorSlow(b)
}

// parseCursorFast parses {"type":"cursor","partition":P,"offset":"O"}.
func parseCursorFast(b []byte) (int32, int64, bool) {
	rest, ok := bytes.CutPrefix(b, cursorPrefix)
	if !ok {
		return 0, 0, false
	}
	p, n := leadingInt(rest)
	if n == 0 || p > math.MaxInt32 {
		return 0, 0, false
	}
	rest, ok = bytes.CutPrefix(rest[n:], offsetKey)
	if !ok {
		return 0, 0, false
	}
	o, n := leadingInt(rest)
	if n == 0 || !bytes.Equal(rest[n:], cursorSuffix) {
		return 0, 0, false
	}
	return int32(p), o, true
}

// leadingInt parses the non-negative decimal at the start of b and returns
// it with the number of digits (0: none, or overflow).
func leadingInt(b []byte) (int64, int) {
	var v int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := int64(b[i] - '0')
		if v > (math.MaxInt64-d)/10 {
			return 0, 0
		}
		v = v*10 + d
	}
	return v, i
}

func parseCursorSlow(b []byte) (int32, int64, bool, error) {
	var f struct {
		Type      string          `json:"type"`
		Partition json.RawMessage `json:"partition"`
		Offset    json.RawMessage `json:"offset"`
	}
	if err := json.Unmarshal(b, &f); err != nil || f.Type != "cursor" {
		return 0, 0, false, nil
	}
	p, perr := strconv.ParseInt(string(f.Partition), 10, 32)
	o, oerr := strconv.ParseInt(string(bytes.Trim(f.Offset, `"`)), 10, 64)
	if perr != nil || oerr != nil || p < 0 || o < 0 {
		return 0, 0, true, fmt.Errorf("%w: malformed cursor frame %.128q", ErrProtocol, b)
	}
	return int32(p), o, true, nil
}
