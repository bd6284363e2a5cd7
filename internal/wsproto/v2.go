package wsproto

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/gobwas/ws"
)

// SubprotocolV2 is the WebSocket subprotocol that selects protocol v2
// (docs/PROTOCOL.md §3.8). A connection that does not negotiate it speaks v1.
const SubprotocolV2 = "dashstream.v2"

// Protocol v2 record frames.
const (
	// RecordV2Tag is byte 0 of a v2 binary record frame.
	RecordV2Tag = 0x01
	// RecordV2HeaderSize is the envelope before the record value: the tag,
	// the partition (uint32 big-endian) and the offset (int64 big-endian).
	RecordV2HeaderSize = 13
	// TypeRecord is the type of a v2 JSON record text frame.
	TypeRecord = "record"
)

// Resume formats and join modes (v2; docs/PROTOCOL.md §3.8).
const (
	FormatBinary   = "binary"
	FormatJSON     = "json"
	JoinNone       = "none"
	JoinCheckpoint = "checkpoint"
)

// ErrRecordV2 marks a binary frame that is not a v2 record.
var ErrRecordV2 = errors.New("wsproto: not a v2 record frame")

// AppendRecordV2 appends the payload of a v2 binary record frame: byte
// RecordV2Tag, partition as uint32 big-endian, offset as int64 big-endian,
// then value byte for byte.
func AppendRecordV2(dst []byte, partition int32, offset int64, value []byte) []byte {
	dst = append(dst, RecordV2Tag)
	dst = binary.BigEndian.AppendUint32(dst, uint32(partition))
	dst = binary.BigEndian.AppendUint64(dst, uint64(offset))
	return append(dst, value...)
}

// RecordFrameV2 encodes a record once for every v2 binary client: one
// complete binary WebSocket frame holding AppendRecordV2's payload. It
// returns the bytes and where value starts inside them (as RecordFrames).
func RecordFrameV2(partition int32, offset int64, value []byte) (frame []byte, valueAt int) {
	n := RecordV2HeaderSize + len(value)
	frame = AppendFrameHeader(make([]byte, 0, n+MaxFrameHeader), ws.OpBinary, n)
	frame = AppendRecordV2(frame, partition, offset, nil)
	valueAt = len(frame)
	return append(frame, value...), valueAt
}

// RecordV2 is a record as a v2 client receives it.
type RecordV2 struct {
	Partition int32
	Offset    int64
	// Value is the record value (binary frames), aliasing the payload.
	Value []byte
	// Message is the canonical JSON of the decoded message (JSON frames).
	Message json.RawMessage
}

// ParseRecordV2 parses the payload of a v2 binary frame. It fails with
// ErrRecordV2 when the payload is shorter than the envelope, byte 0 is not
// RecordV2Tag, the partition exceeds int32 or the offset is negative.
// Value aliases payload.
func ParseRecordV2(payload []byte) (RecordV2, error) {
	if len(payload) < RecordV2HeaderSize {
		return RecordV2{}, fmt.Errorf("%w: %d bytes, the envelope is %d", ErrRecordV2, len(payload), RecordV2HeaderSize)
	}
	if payload[0] != RecordV2Tag {
		return RecordV2{}, fmt.Errorf("%w: tag 0x%02x", ErrRecordV2, payload[0])
	}
	p := binary.BigEndian.Uint32(payload[1:5])
	o := int64(binary.BigEndian.Uint64(payload[5:13]))
	if p > math.MaxInt32 || o < 0 {
		return RecordV2{}, fmt.Errorf("%w: partition %d offset %d", ErrRecordV2, p, o)
	}
	return RecordV2{Partition: int32(p), Offset: o, Value: payload[RecordV2HeaderSize:]}, nil
}

// AppendRecordJSON appends the v2 JSON record text:
// {"type":"record","partition":p,"offset":"o","message":message}, where
// message is the record's canonical JSON (dashstream's AppendProtoJSON),
// inserted as is.
func AppendRecordJSON(dst []byte, partition int32, offset int64, message []byte) []byte {
	dst = append(dst, `{"type":"record","partition":`...)
	dst = strconv.AppendInt(dst, int64(partition), 10)
	dst = append(dst, `,"offset":"`...)
	dst = strconv.AppendInt(dst, offset, 10)
	dst = append(dst, `","message":`...)
	dst = append(dst, message...)
	return append(dst, '}')
}

// RecordFrameJSON encodes a record once for every v2 JSON client: one text
// frame holding AppendRecordJSON's text.
func RecordFrameJSON(partition int32, offset int64, message []byte) []byte {
	var head [96]byte
	text := AppendRecordJSON(head[:0], partition, offset, nil) // measure the envelope
	n := len(text) + len(message)
	frame := AppendFrameHeader(make([]byte, 0, n+MaxFrameHeader), ws.OpText, n)
	return AppendRecordJSON(frame, partition, offset, message)
}

// ParseRecordJSON parses a v2 JSON record text frame. ok is false when the
// frame is another type (a control frame); err is set when it claims to be
// a record but is malformed (offset not an exact non-negative integer,
// partition out of range, message missing or not an object).
func ParseRecordJSON(data []byte) (rec RecordV2, ok bool, err error) {
	var raw struct {
		Type      string          `json:"type"`
		Partition *int64          `json:"partition"`
		Offset    json.RawMessage `json:"offset"`
		Message   json.RawMessage `json:"message"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return RecordV2{}, false, fmt.Errorf("wsproto: record frame: %w", err)
	}
	if raw.Type != TypeRecord {
		return RecordV2{}, false, nil
	}
	o, okOffset := parseInt(raw.Offset, 0, math.MaxInt64)
	msg := bytes.TrimSpace(raw.Message)
	switch {
	case raw.Partition == nil || *raw.Partition < 0 || *raw.Partition > math.MaxInt32:
		return RecordV2{}, true, fmt.Errorf("%w: partition missing or out of range", ErrRecordV2)
	case !okOffset:
		return RecordV2{}, true, fmt.Errorf("%w: offset %s", ErrRecordV2, boundString(string(raw.Offset), 32))
	case len(msg) == 0 || msg[0] != '{':
		return RecordV2{}, true, fmt.Errorf("%w: message is not an object", ErrRecordV2)
	}
	return RecordV2{Partition: int32(*raw.Partition), Offset: o, Message: msg}, true, nil
}
