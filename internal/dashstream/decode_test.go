package dashstream

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"

	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

func TestDecodeFailures(t *testing.T) {
	plain := mustEncode(t, sampleMessages()["event"], FramingPlain)
	frame := mustEncode(t, sampleMessages()["event"], FramingLegacyZstd)
	llmEnd := vectorValue(t, vectorByName(t, "event_llm_end_zstd"))
	badCRC := bytes.Clone(llmEnd)
	badCRC[len(badCRC)-1] ^= 0xff
	skippable := []byte{flagZstd, 0x50, 0x2a, 0x4d, 0x18, 0x01, 0, 0, 0, 0xaa}

	tests := []struct {
		name  string
		value []byte
		want  Kind
	}{
		{"nil is a tombstone", nil, KindPayloadMissing},
		{"empty", []byte{}, KindEmptyPayload},
		{"zstd flag alone", []byte{flagZstd}, KindBadZstd},
		{"zstd flag without magic", append([]byte{flagZstd}, plain[1:]...), KindBadZstd},
		{"zstd trailing garbage", append(append([]byte{flagZstd}, frame...), 0x00), KindBadZstd},
		{"zstd two frames", append(append([]byte{flagZstd}, frame...), frame...), KindBadZstd},
		{"zstd truncated frame", append([]byte{flagZstd}, frame[:len(frame)-2]...), KindBadZstd},
		{"zstd skippable frame", skippable, KindBadZstd},
		{"zstd checksum mismatch", badCRC, KindBadZstd},
		{"legacy zstd trailing garbage", append(bytes.Clone(frame), 0x0a), KindBadZstd},
		{"zstd content is not protobuf", zstdFramed(t, []byte{0x00, 0x00}), KindInvalidProtobuf},
		{"plain truncated", plain[:len(plain)-1], KindInvalidProtobuf},
		{"plain invalid utf-8", invalidUTF8Value(), KindInvalidProtobuf},
	}
	dec := NewDecoder(DecoderConfig{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dec.Decode(tt.value)
			if got != nil {
				t.Errorf("got a message with error %v", err)
			}
			assertKind(t, err, tt.want)
		})
	}
}

// invalidUTF8Value is a plain value whose event node_id is not UTF-8.
func invalidUTF8Value() []byte {
	event := []byte{0x1a, 0x02, 0xff, 0xfe}                 // Event.node_id = "\xff\xfe"
	msg := append([]byte{0x0a, byte(len(event))}, event...) // DashStreamMessage.event
	return append([]byte{flagPlain}, msg...)
}

func zstdFramed(t *testing.T, content []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithSingleSegment(true))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(content, []byte{flagZstd})
}

func TestDecodeSizeLimits(t *testing.T) {
	const limit = 200
	dec := NewDecoder(DecoderConfig{MaxPayload: limit})
	atLimit := sizedMessage(t, limit)
	overLimit := sizedMessage(t, limit+1)
	tests := []struct {
		name  string
		value []byte
		want  Kind // 0: valid
	}{
		{"plain at cap", mustEncode(t, atLimit, FramingPlain), 0},
		{"plain over cap", mustEncode(t, overLimit, FramingPlain), KindPayloadTooLarge},
		{"legacy raw at cap", mustEncode(t, atLimit, FramingLegacyRaw), 0},
		{"legacy raw over cap", mustEncode(t, overLimit, FramingLegacyRaw), KindPayloadTooLarge},
		{"zstd at cap", mustEncode(t, atLimit, FramingZstd), 0},
		{"zstd declares over cap", mustEncode(t, overLimit, FramingZstd), KindDecompressedTooLarge},
		{"legacy zstd declares over cap", mustEncode(t, overLimit, FramingLegacyZstd), KindDecompressedTooLarge},
		{"undeclared zstd over cap", append([]byte{flagZstd}, undeclaredFrame(t, limit+1, 1<<10)...), KindDecompressedTooLarge},
		{"oversize garbage is checked first", append([]byte{0x02}, make([]byte, limit+1)...), KindPayloadTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dec.Decode(tt.value)
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			assertKind(t, err, tt.want)
		})
	}
}

// sizedMessage returns an event whose serialized size is exactly n bytes.
func sizedMessage(t *testing.T, n int) *pb.DashStreamMessage {
	t.Helper()
	for pad := n; pad >= 0; pad-- {
		m := &pb.DashStreamMessage{Message: &pb.DashStreamMessage_Event{Event: &pb.Event{NodeId: strings.Repeat("x", pad)}}}
		if len(mustMarshal(t, m)) == n {
			return m
		}
	}
	t.Fatalf("no message of %d bytes", n)
	return nil
}

func TestDecodeSchemaVersion(t *testing.T) {
	v2 := vectorValue(t, vectorByName(t, "event_schema_version_2_plain"))
	unset := mustEncode(t, &pb.DashStreamMessage{Message: &pb.DashStreamMessage_Event{Event: &pb.Event{
		Header: &pb.Header{ThreadId: "t"}}}}, FramingPlain)
	tests := []struct {
		name  string
		max   uint32
		value []byte
		want  Kind
	}{
		{"not enforced", 0, v2, 0},
		{"version 2 allowed", 2, v2, 0},
		{"version 2 above 1", 1, v2, KindSchemaVersionUnsupported},
		{"absent version reads as 1", 1, unset, 0},
		{"no header is not checked", 1, []byte{flagPlain}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewDecoder(DecoderConfig{MaxSchemaVersion: tt.max}).Decode(tt.value)
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			assertKind(t, err, tt.want)
		})
	}
}

func TestDecodedAccessors(t *testing.T) {
	dec := NewDecoder(DecoderConfig{})
	for name, msg := range sampleMessages() {
		t.Run(name, func(t *testing.T) {
			got, err := dec.Decode(mustEncode(t, msg, FramingPlain))
			if err != nil {
				t.Fatal(err)
			}
			if got.MessageType() != name {
				t.Errorf("MessageType %q, want %q", got.MessageType(), name)
			}
			if (got.Header() == nil) != (name == "none") {
				t.Errorf("Header() = %v", got.Header())
			}
		})
	}
}

func TestHeadersOfBatch(t *testing.T) {
	batch := &pb.DashStreamMessage{Message: &pb.DashStreamMessage_EventBatch{EventBatch: &pb.EventBatch{
		Header: &pb.Header{ThreadId: "envelope", TimestampUs: 1},
		Events: []*pb.Event{
			{Header: &pb.Header{ThreadId: "a", Sequence: 5, TimestampUs: 10}},
			{}, // no header: still one entry, so entries line up with events
			{Header: &pb.Header{ThreadId: "b", Sequence: 1 << 63, TimestampUs: -1}},
		},
	}}}
	got, err := NewDecoder(DecoderConfig{}).Decode(mustEncode(t, batch, FramingZstd))
	if err != nil {
		t.Fatal(err)
	}
	want := []HeaderRef{{"a", 5, 10}, {}, {"b", 1 << 63, -1}}
	if len(got.Headers) != len(want) {
		t.Fatalf("Headers = %+v, want %+v", got.Headers, want)
	}
	for i := range want {
		if got.Headers[i] != want[i] {
			t.Errorf("Headers[%d] = %+v, want %+v", i, got.Headers[i], want[i])
		}
	}
	if got.Header().GetThreadId() != "envelope" {
		t.Errorf("Header() = %v, want the envelope", got.Header())
	}
}

func TestDecodeConcurrent(t *testing.T) {
	dec := NewDecoder(DecoderConfig{})
	var values [][]byte
	for _, v := range loadManifest(t) {
		if v.File != nil {
			values = append(values, vectorValue(t, v))
		}
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				for _, v := range values {
					_, err := dec.Decode(v)
					var de *DecodeError
					if err != nil && !errors.As(err, &de) {
						t.Errorf("untyped error %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestDecodeErrorFormat(t *testing.T) {
	cause := errors.New("boom")
	err := error(&DecodeError{Kind: KindBadZstd, Err: cause})
	if got, want := err.Error(), "dashstream: bad_zstd: boom"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, cause) {
		t.Error("Unwrap does not expose the cause")
	}
}

func TestKindsAndFramings(t *testing.T) {
	want := []string{"empty_payload", "payload_missing", "payload_too_large", "bad_zstd",
		"decompressed_too_large", "invalid_protobuf", "schema_version_unsupported"}
	kinds := AllKinds()
	if len(kinds) != len(want) {
		t.Fatalf("AllKinds() = %v", kinds)
	}
	for i, k := range kinds {
		if k.String() != want[i] || !k.Valid() {
			t.Errorf("kind %d = %q (valid %v), want %q", i, k, k.Valid(), want[i])
		}
	}
	if Kind(0).Valid() || Kind(99).Valid() {
		t.Error("out-of-range kinds report valid")
	}
	framings := map[Framing]string{FramingPlain: "plain", FramingZstd: "zstd",
		FramingLegacyRaw: "legacy-raw", FramingLegacyZstd: "legacy-zstd"}
	for f, name := range framings {
		if f.String() != name {
			t.Errorf("Framing(%d) = %q, want %q", f, f, name)
		}
	}
}

func mustEncode(t testing.TB, msg *pb.DashStreamMessage, f Framing) []byte {
	t.Helper()
	b, err := Encode(msg, f)
	if err != nil {
		t.Fatalf("Encode(%s): %v", f, err)
	}
	return b
}
