package dashstream

import (
	"google.golang.org/protobuf/proto"

	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// DefaultMaxPayload bounds the payload of one record: the bytes after the
// framing byte, and after decompression for zstd values.
const DefaultMaxPayload = 10 << 20

// DecoderConfig configures a Decoder.
type DecoderConfig struct {
	// MaxPayload caps the payload in bytes, after the framing byte and after
	// decompression. Zero or negative means DefaultMaxPayload.
	MaxPayload int
	// MaxSchemaVersion, when non-zero, rejects messages whose header
	// schema_version (0 read as 1) is above it. Zero means not enforced.
	MaxSchemaVersion uint32
	// MaxElements caps the nested messages of one record (see
	// DefaultMaxElements); zero or negative means DefaultMaxElements.
	MaxElements int
}

// Decoder validates and decodes DashStream record values. It is safe for
// concurrent use; zstd decoders are reused across calls.
type Decoder struct {
	maxPayload       int
	maxSchemaVersion uint32
	maxElements      int
	zstd             *inflater
}

// NewDecoder returns a Decoder for cfg.
func NewDecoder(cfg DecoderConfig) *Decoder {
	limit := cfg.MaxPayload
	if limit <= 0 {
		limit = DefaultMaxPayload
	}
	if cfg.MaxElements <= 0 {
		cfg.MaxElements = DefaultMaxElements
	}
	return &Decoder{
		maxElements:      cfg.MaxElements,
		maxPayload:       limit,
		maxSchemaVersion: cfg.MaxSchemaVersion,
		zstd:             newInflater(limit),
	}
}

// MaxPayload returns the effective payload cap in bytes.
func (d *Decoder) MaxPayload() int { return d.maxPayload }

// Decode validates a Kafka record value and decodes it. A nil value (a
// tombstone) is KindPayloadMissing and an empty one KindEmptyPayload; a value
// longer than the cap plus the framing byte is KindPayloadTooLarge before any
// other work. The returned error, when non-nil, is always a *DecodeError.
func (d *Decoder) Decode(value []byte) (*Decoded, error) {
	dec, err := d.decode(value)
	if err != nil {
		return nil, err // keep a typed nil out of the error interface
	}
	return dec, nil
}

func (d *Decoder) decode(value []byte) (*Decoded, *DecodeError) {
	if err := d.checkSize(value); err != nil {
		return nil, err
	}
	framing, body := splitFraming(value)
	payload, err := d.payload(framing, body)
	if err != nil {
		return nil, err
	}
	if err := checkStructure(payload, d.maxElements); err != nil {
		return nil, decodeErr(KindPayloadTooLarge, err)
	}
	msg := new(dashstreampb.DashStreamMessage)
	if err := unmarshalStrict(payload, msg); err != nil {
		return nil, decodeErr(KindInvalidProtobuf, err)
	}
	out := &Decoded{Framing: framing, Message: msg, Headers: headerRefs(msg)}
	if err := d.checkSchema(out.Header()); err != nil {
		return nil, err
	}
	return out, nil
}

func (d *Decoder) checkSize(value []byte) *DecodeError {
	switch {
	case value == nil:
		return decodeErrf(KindPayloadMissing, "null record value (tombstone)")
	case len(value) == 0:
		return decodeErrf(KindEmptyPayload, "zero-length record value")
	case len(value) > d.maxPayload+1:
		return decodeErrf(KindPayloadTooLarge, "value is %d bytes, cap is %d plus the framing byte", len(value), d.maxPayload)
	}
	return nil
}

// payload returns the protobuf bytes of a framed body, inflating zstd.
func (d *Decoder) payload(f Framing, body []byte) ([]byte, *DecodeError) {
	if f.compressed() {
		return d.zstd.inflate(body)
	}
	if len(body) > d.maxPayload {
		return nil, decodeErrf(KindPayloadTooLarge, "unframed payload is %d bytes, cap is %d", len(body), d.maxPayload)
	}
	return body, nil
}

func (d *Decoder) checkSchema(h *dashstreampb.Header) *DecodeError {
	if d.maxSchemaVersion == 0 || h == nil {
		return nil
	}
	if v := SchemaVersion(h); v > d.maxSchemaVersion {
		return decodeErrf(KindSchemaVersionUnsupported, "schema_version %d, supported up to %d", v, d.maxSchemaVersion)
	}
	return nil
}

// SchemaVersion returns the header's schema_version, reading 0 (absent) as 1.
func SchemaVersion(h *dashstreampb.Header) uint32 {
	if v := h.GetSchemaVersion(); v != 0 {
		return v
	}
	return 1
}

// unmarshalStrict parses a DashStreamMessage keeping unknown fields (they are
// forwarded byte for byte anyway) and rejecting malformed wire data: field
// number 0, truncation, bad wire types for known fields' lengths, bad UTF-8.
func unmarshalStrict(b []byte, msg *dashstreampb.DashStreamMessage) error {
	return proto.UnmarshalOptions{DiscardUnknown: false}.Unmarshal(b, msg)
}
