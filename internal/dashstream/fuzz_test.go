package dashstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
)

func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(vectorDir, "*.bin"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed vectors (err %v)", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	dec := NewDecoder(DecoderConfig{})
	small := NewDecoder(DecoderConfig{MaxPayload: 512})
	f.Fuzz(func(t *testing.T, value []byte) {
		got := checkDecodeInvariants(t, dec, value)
		if gotSmall := checkDecodeInvariants(t, small, value); gotSmall != nil && got == nil {
			t.Fatal("a smaller cap accepted what the default cap rejected")
		}
		if got != nil {
			checkReencode(t, dec, got)
		}
	})
}

// checkDecodeInvariants decodes value and checks the error and result contracts.
func checkDecodeInvariants(t *testing.T, dec *Decoder, value []byte) *Decoded {
	got, err := dec.Decode(value)
	if err != nil {
		var de *DecodeError
		if !errors.As(err, &de) || !de.Kind.Valid() || got != nil {
			t.Fatalf("bad failure: %v (%T), result %v", err, err, got)
		}
		return nil
	}
	if got.Message == nil || got.MessageType() == "" {
		t.Fatalf("valid result without message: %+v", got)
	}
	tree, err := RenderJSON(got)
	if err != nil {
		t.Fatalf("RenderJSON: %v", err)
	}
	if _, err := json.Marshal(tree); err != nil {
		t.Fatalf("RenderJSON tree does not encode: %v", err)
	}
	return got
}

// checkReencode asserts that a decoded message survives Encode → Decode.
func checkReencode(t *testing.T, dec *Decoder, got *Decoded) {
	value, err := Encode(got.Message, FramingPlain)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	again, err := dec.Decode(value)
	if err != nil {
		t.Fatalf("re-encoded message does not decode: %v", err)
	}
	if !sameMessage(got.Message, again.Message) {
		t.Fatalf("round trip changed the message\nbefore: %v\n after: %v", got.Message, again.Message)
	}
}

// sameMessage is proto.Equal, except that NaN equals NaN (same encoding).
func sameMessage(a, b proto.Message) bool {
	if proto.Equal(a, b) {
		return true
	}
	opts := proto.MarshalOptions{Deterministic: true}
	ab, errA := opts.Marshal(a)
	bb, errB := opts.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ab, bb)
}
