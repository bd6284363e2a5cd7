package dashstream

import "fmt"

// Kind classifies a decode failure (docs/PROTOCOL.md §2.6). It is safe to use as a metric
// label: the set is closed and small.
type Kind uint8

// Decode failure kinds.
const (
	KindEmptyPayload             Kind = iota + 1 // zero-length value
	KindPayloadMissing                           // null value (tombstone)
	KindPayloadTooLarge                          // value or unframed payload above the cap
	KindBadZstd                                  // not exactly one valid zstd frame
	KindDecompressedTooLarge                     // zstd content above the cap
	KindInvalidProtobuf                          // not a valid DashStreamMessage
	KindSchemaVersionUnsupported                 // schema_version above the enforced maximum
)

var kindNames = [...]string{
	KindEmptyPayload:             "empty_payload",
	KindPayloadMissing:           "payload_missing",
	KindPayloadTooLarge:          "payload_too_large",
	KindBadZstd:                  "bad_zstd",
	KindDecompressedTooLarge:     "decompressed_too_large",
	KindInvalidProtobuf:          "invalid_protobuf",
	KindSchemaVersionUnsupported: "schema_version_unsupported",
}

// String returns the docs/PROTOCOL.md §2.6 name of the kind, e.g. "bad_zstd".
func (k Kind) String() string {
	if k.Valid() {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Valid reports whether k is one of the defined kinds.
func (k Kind) Valid() bool {
	return k >= KindEmptyPayload && int(k) < len(kindNames)
}

// AllKinds returns every kind in a stable order (for pre-registering metric
// label values).
func AllKinds() []Kind {
	kinds := make([]Kind, 0, len(kindNames)-1)
	for k := KindEmptyPayload; int(k) < len(kindNames); k++ {
		kinds = append(kinds, k)
	}
	return kinds
}

// DecodeError is the only error type returned by Decoder.Decode.
type DecodeError struct {
	Kind Kind
	Err  error
}

// Error returns "dashstream: <kind>: <err>".
func (e *DecodeError) Error() string {
	if e.Err == nil {
		return "dashstream: " + e.Kind.String()
	}
	return "dashstream: " + e.Kind.String() + ": " + e.Err.Error()
}

// Unwrap returns the underlying cause.
func (e *DecodeError) Unwrap() error { return e.Err }

func decodeErr(k Kind, err error) *DecodeError {
	return &DecodeError{Kind: k, Err: err}
}

func decodeErrf(k Kind, format string, args ...any) *DecodeError {
	return &DecodeError{Kind: k, Err: fmt.Errorf(format, args...)}
}
