package dashstream

import (
	"bytes"
	"fmt"
)

// Framing says how a record value wraps its protobuf payload (docs/PROTOCOL.md §2.2).
type Framing uint8

// Framings, in docs/PROTOCOL.md §2.2 order.
const (
	FramingPlain      Framing = iota // 0x00 + protobuf
	FramingZstd                      // 0x01 + exactly one zstd frame
	FramingLegacyRaw                 // unframed protobuf
	FramingLegacyZstd                // unframed zstd frame (starts with the zstd magic)
)

const (
	flagPlain byte = 0x00
	flagZstd  byte = 0x01
)

// zstdMagic starts every (non-skippable) zstd frame.
var zstdMagic = []byte{0x28, 0xB5, 0x2F, 0xFD}

var framingNames = [...]string{
	FramingPlain:      "plain",
	FramingZstd:       "zstd",
	FramingLegacyRaw:  "legacy-raw",
	FramingLegacyZstd: "legacy-zstd",
}

// String returns "plain", "zstd", "legacy-raw" or "legacy-zstd".
func (f Framing) String() string {
	if int(f) < len(framingNames) {
		return framingNames[f]
	}
	return fmt.Sprintf("framing(%d)", uint8(f))
}

// compressed reports whether the payload of f is a zstd frame.
func (f Framing) compressed() bool {
	return f == FramingZstd || f == FramingLegacyZstd
}

// splitFraming classifies a non-empty value and returns the framed body: the
// protobuf for plain framings, the zstd frame for compressed ones.
func splitFraming(value []byte) (Framing, []byte) {
	switch {
	case value[0] == flagPlain:
		return FramingPlain, value[1:]
	case value[0] == flagZstd:
		return FramingZstd, value[1:]
	case bytes.HasPrefix(value, zstdMagic):
		return FramingLegacyZstd, value
	default:
		return FramingLegacyRaw, value
	}
}
