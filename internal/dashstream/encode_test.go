package dashstream

import (
	"bytes"
	"errors"
	"testing"

	"github.com/klauspost/compress/zstd"

	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

var allFramings = []Framing{FramingPlain, FramingZstd, FramingLegacyRaw, FramingLegacyZstd}

func TestEncodeRoundTrip(t *testing.T) {
	dec := NewDecoder(DecoderConfig{})
	for name, msg := range sampleMessages() {
		for _, f := range allFramings {
			t.Run(name+"/"+f.String(), func(t *testing.T) {
				value, err := Encode(msg, f)
				if name == "none" && f == FramingLegacyRaw {
					if !errors.Is(err, errLegacyRawAmbiguous) {
						t.Fatalf("empty legacy-raw value: err %v", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				checkFrameContentSize(t, value, f)
				got, err := dec.Decode(value)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if got.Framing != f {
					t.Errorf("framing %s, want %s", got.Framing, f)
				}
				assertProtoEqual(t, got.Message, msg)
			})
		}
	}
}

// checkFrameContentSize asserts that zstd values hold one frame declaring its size.
func checkFrameContentSize(t *testing.T, value []byte, f Framing) {
	t.Helper()
	if !f.compressed() {
		return
	}
	frame := value
	if f == FramingZstd {
		frame = value[1:]
	}
	var h zstd.Header
	if err := h.Decode(frame); err != nil {
		t.Fatal(err)
	}
	if !h.HasFCS {
		t.Fatalf("%s frame of %d bytes declares no content size", f, len(frame))
	}
	if len(frame) < 256 && !h.SingleSegment {
		t.Errorf("small frame is not single-segment")
	}
}

func TestEncodeKeepsExplicitZeros(t *testing.T) {
	op := &pb.DiffOperation{Op: pb.DiffOperation_OP_TYPE_ADD.Enum(), Path: "/a",
		Encoding: pb.DiffOperation_VALUE_ENCODING_JSON.Enum()}
	msg := &pb.DashStreamMessage{Message: &pb.DashStreamMessage_StateDiff{StateDiff: &pb.StateDiff{
		Operations: []*pb.DiffOperation{op}}}}
	got, err := NewDecoder(DecoderConfig{}).Decode(mustEncode(t, msg, FramingPlain))
	if err != nil {
		t.Fatal(err)
	}
	gotOp := got.Message.GetStateDiff().GetOperations()[0]
	if gotOp.Op == nil || gotOp.Encoding == nil {
		t.Fatalf("explicit zeros lost: %v", gotOp)
	}
	tree, _ := RenderJSON(got)
	want := `{"state_diff":{"operations":[{"op":0,"path":"/a","encoding":0}]}}`
	if !jsonEqual(t, tree, []byte(want)) {
		t.Errorf("RenderJSON = %v, want %s", tree, want)
	}
}

func TestEncodeLargeMessageDeclaresSize(t *testing.T) {
	big := &pb.DashStreamMessage{Message: &pb.DashStreamMessage_StateDiff{StateDiff: &pb.StateDiff{
		FullState: bytes.Repeat([]byte(`{"k":"value"},`), (singleSegmentMax/14)+1000)}}}
	value := mustEncode(t, big, FramingZstd)
	checkFrameContentSize(t, value, FramingZstd)
	got, err := NewDecoder(DecoderConfig{}).Decode(value)
	if err != nil {
		t.Fatal(err)
	}
	assertProtoEqual(t, got.Message, big)
}

func TestEncodeUnknownFraming(t *testing.T) {
	if _, err := Encode(&pb.DashStreamMessage{}, Framing(9)); err == nil {
		t.Fatal("want an error")
	}
}
