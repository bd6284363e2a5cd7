package dashstream

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

const vectorDir = "../../testdata/dashstream"

// vector is one MANIFEST.json entry (only the fields the tests use).
type vector struct {
	File           *string          `json:"file"`
	Name           string           `json:"name"`
	Valid          bool             `json:"valid"`
	Framing        string           `json:"framing"`
	MessageType    *string          `json:"message_type"`
	Header         *vectorHeader    `json:"header"`
	InnerEvents    []vectorInner    `json:"inner_events"`
	ErrorClass     string           `json:"error_class"`
	SynthesizeSpec *synthesizeSpec  `json:"synthesize_spec"`
	Decoded        json.RawMessage  `json:"decoded"`
	Zstd           *json.RawMessage `json:"zstd"`
}

type vectorHeader struct {
	MessageID     string `json:"message_id"`
	TimestampUs   int64  `json:"timestamp_us"`
	TenantID      string `json:"tenant_id"`
	ThreadID      string `json:"thread_id"`
	Sequence      string `json:"sequence"`
	Type          int32  `json:"type"`
	Compression   int32  `json:"compression"`
	SchemaVersion uint32 `json:"schema_version"`
}

type vectorInner struct {
	ThreadID    string `json:"thread_id"`
	Sequence    string `json:"sequence"`
	EventType   int32  `json:"event_type"`
	TimestampUs int64  `json:"timestamp_us"`
	MessageID   string `json:"message_id"`
}

type synthesizeSpec struct {
	PrefixHex string `json:"prefix_hex"`
	FillByte  string `json:"fill_byte_hex"`
	FillCount int    `json:"fill_count"`
	TotalSize int    `json:"total_size"`
}

// errorClassKinds maps manifest error classes to decode failure kinds.
var errorClassKinds = map[string]Kind{
	"empty_payload":                       KindEmptyPayload,
	"payload_missing":                     KindPayloadMissing,
	"payload_too_large":                   KindPayloadTooLarge,
	"bad_zstd":                            KindBadZstd,
	"decompressed_too_large":              KindDecompressedTooLarge,
	"unknown_framing_or_invalid_protobuf": KindInvalidProtobuf,
	"truncated_protobuf":                  KindInvalidProtobuf,
	"invalid_protobuf":                    KindInvalidProtobuf,
	"schema_version_unsupported":          KindSchemaVersionUnsupported,
}

func loadManifest(t testing.TB) []vector {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(vectorDir, "MANIFEST.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

// vectorValue returns the record value of v, synthesizing it when needed.
func vectorValue(t testing.TB, v vector) []byte {
	t.Helper()
	if v.File != nil {
		b, err := os.ReadFile(filepath.Join(vectorDir, *v.File))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	s := v.SynthesizeSpec
	if s == nil {
		t.Fatalf("%s: neither file nor synthesize_spec", v.Name)
	}
	prefix, fill := mustHex(t, s.PrefixHex), mustHex(t, s.FillByte)
	b := append(prefix, bytes.Repeat(fill, s.FillCount)...)
	if len(b) != s.TotalSize {
		t.Fatalf("%s: synthesized %d bytes, manifest says %d", v.Name, len(b), s.TotalSize)
	}
	return b
}
