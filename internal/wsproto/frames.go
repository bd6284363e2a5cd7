package wsproto

import (
	"encoding/binary"
	"strconv"

	"github.com/gobwas/ws"
)

// MaxFrameHeader is the largest header of an unmasked server frame.
const MaxFrameHeader = 10

// AppendFrameHeader appends the header of a final, unmasked server frame of
// the given opcode and payload length.
func AppendFrameHeader(dst []byte, op ws.OpCode, n int) []byte {
	b0 := 0x80 | byte(op)
	switch {
	case n <= 125:
		return append(dst, b0, byte(n))
	case n <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(dst, b0, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, b0, 127), uint64(n))
	}
}

// AppendFrame appends a complete final, unmasked server frame.
func AppendFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	return append(AppendFrameHeader(dst, op, len(payload)), payload...)
}

// TextFrame returns payload framed as one WebSocket text frame.
func TextFrame(payload []byte) []byte {
	return AppendFrame(make([]byte, 0, len(payload)+MaxFrameHeader), ws.OpText, payload)
}

// appendCursorJSON appends {"type":"cursor","partition":P,"offset":"O"}.
func appendCursorJSON(dst []byte, partition int32, offset int64) []byte {
	dst = append(dst, `{"type":"cursor","partition":`...)
	dst = strconv.AppendInt(dst, int64(partition), 10)
	dst = append(dst, `,"offset":"`...)
	dst = strconv.AppendInt(dst, offset, 10)
	return append(dst, `"}`...)
}

// RecordFrames encodes a record once for every client: the cursor text frame
// immediately followed by the binary frame holding value byte for byte. It
// returns the bytes and where value starts inside them, so that a caller can
// keep a single copy of the value.
func RecordFrames(partition int32, offset int64, value []byte) (frames []byte, valueAt int) {
	var cur [96]byte
	cursor := appendCursorJSON(cur[:0], partition, offset)
	frames = make([]byte, 0, len(cursor)+len(value)+2*MaxFrameHeader)
	frames = AppendFrame(frames, ws.OpText, cursor)
	frames = AppendFrameHeader(frames, ws.OpBinary, len(value))
	valueAt = len(frames)
	return append(frames, value...), valueAt
}

// SkippedFrame encodes the "skipped" text frame announcing a dead-lettered
// offset.
func SkippedFrame(partition int32, offset int64, errorType string) []byte {
	return TextFrame(mustJSON(Skipped{Type: TypeSkipped, Partition: partition,
		Offset: Offset(offset), ErrorType: errorType}))
}
