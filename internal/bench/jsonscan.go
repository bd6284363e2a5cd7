package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// errScan: the scanner cannot read the frame. It is either not a record
// frame, malformed, or in a form the gateway does not write (escapes in
// the keys or values it reads, a duplicated key, an offset that is not a
// string of digits, several bodies with a header); such a frame goes to
// the full decode, which has the last word.
var errScan = errors.New("bench: JSON record frame not readable by the scanner")

// jsonRecord is what the bench needs of a v2 JSON record frame
// (docs/PROTOCOL.md §3.8).
type jsonRecord struct {
	partition int32
	offset    int64
	message   []byte // the message object, aliasing the frame
	// timed: the message has a header with timestampUs; ts and thread
	// (aliasing the frame, nil when absent) come from that header.
	timed  bool
	ts     int64
	thread []byte
}

// scanRecordJSON reads a record frame as the gateway writes it
// (wsproto.AppendRecordJSON: {"type":"record","partition":p,"offset":"o",
// "message":{...}}, compact) without encoding/json: one pass over the
// bytes, no allocation. The members may come in any order and with JSON
// whitespace between tokens. The structure of the whole frame is walked
// (strings, nesting, literals, trailing bytes), but it is not a validator:
// the bytes inside strings and number literals that it skips are not
// checked, which is what verifyScan's sampled full decode is for.
func scanRecordJSON(b []byte) (jsonRecord, error) {
	s := jscan{b: b}
	var rec jsonRecord
	var seen uint8 // bits: type, partition, offset, message
	if !s.begin('{') {
		return rec, errScan
	}
	for first := true; ; first = false {
		key, more, ok := s.member(first, false)
		if !ok {
			return rec, errScan
		}
		if !more {
			break
		}
		bit, ok := topBit(key)
		if !ok {
			if isTopKeyVariant(key) {
				return rec, errScan // encoding/json matches keys without regard to case
			}
			if !s.skipValue(0) {
				return rec, errScan
			}
			continue
		}
		if seen&bit != 0 {
			return rec, errScan // a duplicated key: leave the precedence to the full decode
		}
		seen |= bit
		switch bit {
		case bitType:
			v, ok := s.plainString()
			if !ok || string(v) != wsproto.TypeRecord {
				return rec, errScan
			}
		case bitPartition:
			n, ok := s.digits(math.MaxInt32)
			if !ok {
				return rec, errScan
			}
			rec.partition = int32(n)
		case bitOffset:
			v, ok := s.plainString()
			if !ok {
				return rec, errScan
			}
			n, ok := parseDigits(v, math.MaxInt64)
			if !ok {
				return rec, errScan
			}
			rec.offset = n
		case bitMessage:
			if !s.message(&rec) {
				return rec, errScan
			}
		}
	}
	if seen != bitType|bitPartition|bitOffset|bitMessage || !s.end() {
		return rec, errScan
	}
	return rec, nil
}

const (
	bitType uint8 = 1 << iota
	bitPartition
	bitOffset
	bitMessage
)

func topBit(key []byte) (uint8, bool) {
	switch string(key) {
	case "type":
		return bitType, true
	case "partition":
		return bitPartition, true
	case "offset":
		return bitOffset, true
	case "message":
		return bitMessage, true
	}
	return 0, false
}

// isTopKeyVariant reports a key of the same length as one of the frame's
// four that is not exactly it ("Type", "OFFSET"): the full decode might
// take it for that member, so the scanner does not guess.
func isTopKeyVariant(key []byte) bool {
	for _, k := range [...]string{"type", "partition", "offset", "message"} {
		if len(key) == len(k) && bytes.EqualFold(key, []byte(k)) {
			return true
		}
	}
	// A non-ASCII byte may fold to an ASCII letter (the Kelvin sign to k,
	// the long s to s): any key with one could be a variant.
	for _, c := range key {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// message reads the message object. A DashStreamMessage is a oneof: one
// member, named after its body kind ("event", "checkpoint", …), whose
// object may hold a "header". A message of more members (which the
// gateway does not write) is left to the full decode.
func (s *jscan) message(rec *jsonRecord) bool {
	start := s.ws()
	if !s.begin('{') {
		return false
	}
	for first := true; ; first = false {
		_, more, ok := s.member(first, false)
		switch {
		case !ok || (more && !first):
			return false
		case !more:
			rec.message = s.b[start:s.i]
			return true
		case s.peek() == '{':
			if !s.body(rec) {
				return false
			}
		case !s.skipValue(1):
			return false
		}
	}
}

// body reads the body object of the message, looking for its "header".
func (s *jscan) body(rec *jsonRecord) bool {
	s.begin('{')
	found := false
	for first := true; ; first = false {
		key, more, ok := s.member(first, false)
		switch {
		case !ok:
			return false
		case !more:
			return true
		case string(key) != "header":
			if !s.skipValue(2) {
				return false
			}
		case found || s.peek() != '{':
			return false
		default:
			found = true
			if !s.header(rec) {
				return false
			}
		}
	}
}

// header reads timestampUs (an int64 as a string, protobuf's JSON mapping)
// and threadId.
func (s *jscan) header(rec *jsonRecord) bool {
	s.begin('{')
	var ts, th bool
	for first := true; ; first = false {
		key, more, ok := s.member(first, false)
		if !ok {
			return false
		}
		if !more {
			return true
		}
		switch string(key) {
		case "timestampUs":
			v, ok := s.plainString()
			if !ok || ts {
				return false
			}
			if rec.ts, ok = parseInt64(v); !ok {
				return false
			}
			ts, rec.timed = true, true
		case "threadId":
			v, ok := s.plainString()
			if !ok || th || !utf8.Valid(v) { // encoding/json would replace invalid bytes
				return false
			}
			th, rec.thread = true, v
		default:
			if !s.skipValue(3) {
				return false
			}
		}
	}
}

// jscan is a cursor over one frame. Every method leaves i after what it
// read; false means the bytes are not what it expected.
type jscan struct {
	b []byte
	i int
}

// ws skips JSON whitespace and returns the new position.
func (s *jscan) ws() int {
	if s.i < len(s.b) && s.b[s.i] > ' ' { // compact JSON: no whitespace
		return s.i
	}
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return s.i
		}
	}
	return s.i
}

func (s *jscan) peek() byte {
	if s.ws() < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// begin consumes c after optional whitespace.
func (s *jscan) begin(c byte) bool {
	if s.peek() != c {
		return false
	}
	s.i++
	return true
}

// end reports whether only whitespace is left.
func (s *jscan) end() bool { return s.ws() == len(s.b) }

// member reads the next member's key and its colon, inside an object
// whose '{' was consumed (first: no member read yet); more is false at the
// object's '}' (consumed), ok false on malformed bytes. The key is the raw
// content of a string without escapes; a key with escapes is not ok,
// unless skip (the caller skips the value whatever the key: key is nil).
func (s *jscan) member(first, skip bool) (key []byte, more, ok bool) {
	c := s.peek()
	switch {
	case c == '}':
		s.i++
		return nil, false, true
	case !first && c == ',':
		s.i++
	case !first:
		return nil, false, false
	}
	if skip {
		ok = s.begin('"') && s.skipString()
	} else {
		key, ok = s.plainString()
	}
	if !ok || !s.begin(':') {
		return nil, false, false
	}
	return key, true, true
}

// plainString reads a string without escapes and returns its content.
// The strings it reads (keys, the type, numbers, a thread id) are short:
// one loop looking for both '"' and '\\' beats two IndexByte calls.
func (s *jscan) plainString() ([]byte, bool) {
	if !s.begin('"') {
		return nil, false
	}
	for j := s.i; j < len(s.b); j++ {
		switch s.b[j] {
		case '"':
			v := s.b[s.i:j]
			s.i = j + 1
			return v, true
		case '\\':
			return nil, false
		}
	}
	return nil, false
}

// skipString skips a string (its '"' already consumed), escapes included.
func (s *jscan) skipString() bool {
	for {
		n := bytes.IndexByte(s.b[s.i:], '"')
		if n < 0 {
			return false
		}
		q := s.i + n
		s.i = q + 1
		bs := 0 // backslashes right before the quote: odd escapes it
		for j := q - 1; j >= 0 && s.b[j] == '\\'; j-- {
			bs++
		}
		if bs%2 == 0 {
			return true
		}
	}
}

// maxDepth bounds the nesting skipValue follows.
const maxDepth = 64

// skipValue skips one value of any kind at nesting depth d.
func (s *jscan) skipValue(d int) bool {
	if d > maxDepth {
		return false
	}
	switch c := s.peek(); {
	case c == '"':
		s.i++
		return s.skipString()
	case c == '{':
		s.i++
		for first := true; ; first = false {
			_, more, ok := s.member(first, true)
			if !ok || !more {
				return ok
			}
			if !s.skipValue(d + 1) {
				return false
			}
		}
	case c == '[':
		s.i++
		if s.peek() == ']' {
			s.i++
			return true
		}
		for {
			if !s.skipValue(d + 1) {
				return false
			}
			switch s.peek() {
			case ',':
				s.i++
			case ']':
				s.i++
				return true
			default:
				return false
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		j := s.i
		for j < len(s.b) && isNumberByte(s.b[j]) {
			j++
		}
		s.i = j
		return true
	}
	return false
}

func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

func (s *jscan) literal(lit string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return false
	}
	s.i += len(lit)
	return true
}

// digits reads a JSON number that is a non-negative integer up to hi.
func (s *jscan) digits(hi int64) (int64, bool) {
	s.ws()
	j := s.i
	for j < len(s.b) && isNumberByte(s.b[j]) {
		j++
	}
	v := s.b[s.i:j]
	if len(v) > 1 && v[0] == '0' {
		return 0, false // JSON has no leading zeros
	}
	s.i = j
	return parseDigits(v, hi)
}

// parseDigits parses ASCII digits only (no sign) up to hi.
func parseDigits(v []byte, hi int64) (int64, bool) {
	if len(v) == 0 || len(v) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n > uint64(hi) {
		return 0, false
	}
	return int64(n), true
}

// parseInt64 parses an optional '-' and digits (protobuf's JSON int64).
func parseInt64(v []byte) (int64, bool) {
	if len(v) > 0 && v[0] == '-' {
		n, ok := parseDigits(v[1:], math.MaxInt64)
		if !ok && string(v[1:]) == "9223372036854775808" {
			return math.MinInt64, true
		}
		return -n, ok
	}
	return parseDigits(v, math.MaxInt64)
}

// decodeRecordJSON is the reference reading of a record frame, with
// encoding/json: the whole frame must be valid JSON; the members are
// matched by exact name (duplicates: the last one, as encoding/json does);
// partition and offset are read the way wsproto.ParseRecordJSON reads them;
// the header is the "header" of the message's object members (an error
// when more than one has one). ok is false for a frame that is not a record.
func decodeRecordJSON(b []byte) (rec jsonRecord, ok bool, err error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return rec, false, fmt.Errorf("bench: JSON frame: %w", err)
	}
	var typ string
	if json.Unmarshal(top["type"], &typ) != nil || typ != wsproto.TypeRecord {
		return rec, false, nil
	}
	var p int64
	if err := json.Unmarshal(top["partition"], &p); err != nil || p < 0 || p > math.MaxInt32 {
		return rec, true, fmt.Errorf("bench: record frame: partition %s", top["partition"])
	}
	o, err := strconv.ParseInt(string(bytes.Trim(top["offset"], `"`)), 10, 64)
	if err != nil || o < 0 {
		return rec, true, fmt.Errorf("bench: record frame: offset %s", top["offset"])
	}
	rec.partition, rec.offset = int32(p), o
	rec.message = bytes.TrimSpace(top["message"])
	var bodies map[string]json.RawMessage
	if err := json.Unmarshal(rec.message, &bodies); err != nil || len(rec.message) == 0 || rec.message[0] != '{' {
		return rec, true, errors.New("bench: record frame: message is not an object")
	}
	headers := 0
	for _, body := range bodies {
		var members map[string]json.RawMessage
		if json.Unmarshal(body, &members) != nil {
			continue // not an object
		}
		h, has := members["header"]
		if !has {
			continue
		}
		if headers++; headers > 1 {
			return rec, true, errors.New("bench: record frame: more than one header")
		}
		var header struct {
			TimestampUs *string `json:"timestampUs"`
			ThreadID    *string `json:"threadId"`
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(h, &fields); err != nil {
			return rec, true, fmt.Errorf("bench: record frame: header: %w", err)
		}
		if v, has := fields["timestampUs"]; has {
			if err := json.Unmarshal(v, &header.TimestampUs); err != nil || header.TimestampUs == nil {
				return rec, true, fmt.Errorf("bench: record frame: timestampUs %s", v)
			}
			if rec.ts, err = strconv.ParseInt(*header.TimestampUs, 10, 64); err != nil {
				return rec, true, fmt.Errorf("bench: record frame: timestampUs %s", v)
			}
			rec.timed = true
		}
		if v, has := fields["threadId"]; has {
			if err := json.Unmarshal(v, &header.ThreadID); err != nil || header.ThreadID == nil {
				return rec, true, fmt.Errorf("bench: record frame: threadId %s", v)
			}
			rec.thread = []byte(*header.ThreadID)
		}
	}
	return rec, true, nil
}

// verifyScan checks the scanner's reading of b against decodeRecordJSON's.
func verifyScan(b []byte, got jsonRecord) error {
	want, ok, err := decodeRecordJSON(b)
	switch {
	case err != nil:
		return err
	case !ok:
		return errors.New("bench: the scanner read a record where encoding/json sees none")
	case !sameRecord(got, want):
		return fmt.Errorf("bench: JSON scanner read %s, encoding/json %s", got, want)
	}
	return nil
}

func sameRecord(a, b jsonRecord) bool {
	return a.partition == b.partition && a.offset == b.offset && bytes.Equal(a.message, b.message) &&
		a.timed == b.timed && a.ts == b.ts && bytes.Equal(a.thread, b.thread) && (a.thread == nil) == (b.thread == nil)
}

func (r jsonRecord) String() string {
	th := "none"
	if r.thread != nil {
		th = strconv.Quote(string(r.thread))
	}
	return fmt.Sprintf("partition %d offset %d timed %v ts %d thread %s message %d B", r.partition, r.offset, r.timed, r.ts, th, len(r.message))
}
