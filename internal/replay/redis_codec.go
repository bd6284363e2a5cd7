package replay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Stream entry fields of a stored record.
const (
	fieldPrev    = "prev"    // decimal offset of the previous consumed record, -1 unknown
	fieldValue   = "value"   // the Kafka record value, byte for byte
	fieldSkipped = "skipped" // instead of value: the decode-failure kind of a dead-lettered record
	fieldTS      = "ts"      // producer timestamp, µs, decimal
	fieldThreads = "threads" // encodeThreads
	fieldTenant  = "tenant"  // the record's tenant; absent when empty (and in entries written before it existed)
	fieldFacts   = "facts"   // encodeFacts: message type and event types; in every value entry written since it exists
)

// errCorrupt marks a stored entry this code cannot decode.
var errCorrupt = errors.New("corrupt entry")

// argsPerRecord is how many script arguments appendArgs adds per record.
const argsPerRecord = 8

// appendArgs adds the eight script arguments of r (see redis_append.lua).
// A skipped record has no facts: its facts argument is empty, and the
// script stores no facts field.
func appendArgs(args []any, r *Record) []any {
	field, payload, facts := fieldValue, any(r.Value), encodeFacts(r.Type, r.EventTypes)
	if r.Skipped != "" {
		field, payload, facts = fieldSkipped, r.Skipped, nil
	}
	return append(args,
		strconv.FormatInt(r.Offset, 10),
		strconv.FormatInt(r.Prev, 10),
		field, payload,
		strconv.FormatInt(r.TimestampUs, 10),
		encodeThreads(r.Threads),
		r.Tenant,
		facts)
}

// encodeFacts packs a record's message type and event types as the type
// byte followed by uvarint(uint32(event type)), one per event type: one
// byte per event type for every EventType below 128, 1 + n bytes in all.
// It is never empty, so a value entry always stores it, also for Type 0.
func encodeFacts(typ uint8, events []int32) []byte {
	b := make([]byte, 1, 1+len(events))
	b[0] = typ
	for _, e := range events {
		b = binary.AppendUvarint(b, uint64(uint32(e)))
	}
	return b
}

// decodeFacts is the inverse of encodeFacts.
func decodeFacts(s string) (uint8, []int32, error) {
	if s == "" {
		return 0, nil, fmt.Errorf("%w: empty facts", errCorrupt)
	}
	typ, s := s[0], s[1:]
	if s == "" {
		return typ, nil, nil
	}
	events := make([]int32, 0, len(s))
	for len(s) > 0 {
		e, k := uint64(s[0]), 1 // an EventType below 128: one byte
		if e >= 0x80 {
			e, k = binary.Uvarint([]byte(s[:min(len(s), binary.MaxVarintLen64)]))
		}
		if k <= 0 || e > math.MaxUint32 {
			return 0, nil, fmt.Errorf("%w: event type", errCorrupt)
		}
		s = s[k:]
		events = append(events, int32(uint32(e)))
	}
	return typ, events, nil
}

// encodeThreads packs (thread, sequence) pairs as uvarint(len) thread
// uvarint(sequence), repeated.
func encodeThreads(ts []ThreadSeq) []byte {
	n := 0
	for _, t := range ts {
		n += len(t.Thread) + 2*binary.MaxVarintLen64
	}
	b := make([]byte, 0, n)
	for _, t := range ts {
		b = binary.AppendUvarint(b, uint64(len(t.Thread)))
		b = append(b, t.Thread...)
		b = binary.AppendUvarint(b, t.Sequence)
	}
	return b
}

// decodeThreads is the inverse of encodeThreads; nil for none.
func decodeThreads(s string) ([]ThreadSeq, error) {
	var out []ThreadSeq
	for len(s) > 0 {
		n, k := binary.Uvarint([]byte(s[:min(len(s), binary.MaxVarintLen64)]))
		if k <= 0 || n > uint64(len(s)-k) {
			return nil, fmt.Errorf("%w: thread length", errCorrupt)
		}
		thread := s[k : k+int(n)]
		s = s[k+int(n):]
		seq, k := binary.Uvarint([]byte(s[:min(len(s), binary.MaxVarintLen64)]))
		if k <= 0 {
			return nil, fmt.Errorf("%w: thread sequence", errCorrupt)
		}
		s = s[k:]
		out = append(out, ThreadSeq{Thread: thread, Sequence: seq})
	}
	return out, nil
}

// entryID is the stream entry ID of offset o. The sequence part is 1, not
// 0, because Redis refuses the ID 0-0 and offset 0 is valid.
func entryID(o int64) string { return strconv.FormatInt(o, 10) + "-1" }

// afterID is the exclusive XRANGE start for offsets > after.
func afterID(after int64) string {
	if after < 0 {
		return "-"
	}
	return "(" + entryID(after)
}

// decodeEntry turns a stream entry of partition p into a Record (Frame
// left empty). legacy reports an entry written before the facts field
// existed (see decodeFields): its Type and EventTypes are not set.
func decodeEntry(p int32, m redis.XMessage) (r *Record, legacy bool, err error) {
	ms, _, ok := strings.Cut(m.ID, "-")
	off, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil {
		return nil, false, fmt.Errorf("%w: id %q", errCorrupt, m.ID)
	}
	r = &Record{Partition: p, Offset: off}
	legacy, err = decodeFields(r, m.Values)
	if err != nil {
		return nil, false, fmt.Errorf("offset %d: %w", off, err)
	}
	return r, legacy, nil
}

// decodeFields sets r from an entry's fields. An entry of a valid record
// (a value field) without a facts field was written by the previous
// format, which kept no message type: it is decoded with Type 0 and no
// event types, and legacy is true. Since the facts field exists every
// value entry has one (encodeFacts is never empty), so its absence is
// exact; a skipped entry has no facts in either format.
func decodeFields(r *Record, v map[string]any) (legacy bool, err error) {
	prev, err1 := strconv.ParseInt(str(v[fieldPrev]), 10, 64)
	ts, err2 := strconv.ParseInt(str(v[fieldTS]), 10, 64)
	threads, err3 := decodeThreads(str(v[fieldThreads]))
	if err := errors.Join(err1, err2, err3); err != nil {
		return false, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	r.Prev, r.TimestampUs, r.Threads, r.Tenant = prev, ts, threads, str(v[fieldTenant])
	if kind, ok := v[fieldSkipped]; ok {
		r.Skipped = str(kind)
		return false, nil
	}
	val, ok := v[fieldValue]
	if !ok {
		return false, fmt.Errorf("%w: no value", errCorrupt)
	}
	r.Value = []byte(str(val))
	facts, ok := v[fieldFacts]
	if !ok {
		return true, nil
	}
	if r.Type, r.EventTypes, err = decodeFacts(str(facts)); err != nil {
		return false, err
	}
	return false, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// refMember is the thread-index member of (seq, p, o): fixed-width hex, so
// that lexicographic order is numeric order.
func refMember(seq uint64, p int32, o int64) string {
	b := make([]byte, 0, 16+1+8+1+16)
	b = appendHex(b, seq, 16)
	b = append(b, ':')
	b = appendHex(b, uint64(uint32(p)), 8)
	b = append(b, ':')
	b = appendHex(b, uint64(o), 16)
	return string(b)
}

func appendHex(b []byte, v uint64, width int) []byte {
	const digits = "0123456789abcdef"
	for i := width - 1; i >= 0; i-- {
		b = append(b, digits[(v>>(4*uint(i)))&0xf])
	}
	return b
}

// refsAfter is the exclusive ZRANGEBYLEX start for sequences > after: every
// member of sequence 'after' sorts below "<after>;" (';' follows ':').
func refsAfter(after uint64) string {
	return "(" + string(appendHex(nil, after, 16)) + ";"
}

// parseRef is the inverse of refMember.
func parseRef(m string) (Ref, error) {
	if len(m) != 16+1+8+1+16 || m[16] != ':' || m[25] != ':' {
		return Ref{}, fmt.Errorf("%w: ref %q", errCorrupt, m)
	}
	seq, err1 := strconv.ParseUint(m[:16], 16, 64)
	p, err2 := strconv.ParseUint(m[17:25], 16, 31)
	o, err3 := strconv.ParseUint(m[26:], 16, 63)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Ref{}, fmt.Errorf("%w: ref %q", errCorrupt, m)
	}
	return Ref{Sequence: seq, Partition: int32(p), Offset: int64(o)}, nil
}
