package dashstream

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
)

func TestManifestVectors(t *testing.T) {
	dec := NewDecoder(DecoderConfig{})
	vs := loadManifest(t)
	if len(vs) != 37 {
		t.Fatalf("manifest has %d vectors, want 37", len(vs))
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			got, err := dec.Decode(vectorValue(t, v))
			if !v.Valid {
				assertKind(t, err, errorClassKinds[v.ErrorClass])
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			checkValid(t, v, got)
		})
	}
}

func assertKind(t *testing.T, err error, want Kind) {
	t.Helper()
	if !want.Valid() {
		t.Fatalf("test bug: no kind for this vector")
	}
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
	}
	if de.Kind != want {
		t.Fatalf("kind %s, want %s (err: %v)", de.Kind, want, err)
	}
}

func checkValid(t *testing.T, v vector, got *Decoded) {
	t.Helper()
	if got.Framing.String() != v.Framing {
		t.Errorf("framing %s, want %s", got.Framing, v.Framing)
	}
	if got.MessageType() != *v.MessageType {
		t.Errorf("message type %s, want %s", got.MessageType(), *v.MessageType)
	}
	checkHeader(t, v.Header, got)
	checkInner(t, v, got)
	tree, err := RenderJSON(got)
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, tree, v.Decoded) {
		gotJSON, _ := json.Marshal(tree)
		t.Errorf("RenderJSON mismatch\n got: %s\nwant: %s", gotJSON, v.Decoded)
	}
}

func checkHeader(t *testing.T, want *vectorHeader, got *Decoded) {
	t.Helper()
	h := got.Header()
	if want == nil {
		if h != nil {
			t.Errorf("header %v, want none", h)
		}
		return
	}
	if h == nil {
		t.Fatalf("no header, want %+v", want)
	}
	gotHdr := vectorHeader{
		MessageID: hex.EncodeToString(h.GetMessageId()), TimestampUs: h.GetTimestampUs(),
		TenantID: h.GetTenantId(), ThreadID: h.GetThreadId(),
		Sequence: strconv.FormatUint(h.GetSequence(), 10), Type: int32(h.GetType()),
		Compression: int32(h.GetCompression()), SchemaVersion: SchemaVersion(h),
	}
	if gotHdr != *want {
		t.Errorf("header\n got %+v\nwant %+v", gotHdr, *want)
	}
}

// checkInner checks Headers: one per inner event for a batch, else the body header.
func checkInner(t *testing.T, v vector, got *Decoded) {
	t.Helper()
	var want []HeaderRef
	switch {
	case v.InnerEvents != nil:
		for _, ie := range v.InnerEvents {
			seq, _ := strconv.ParseUint(ie.Sequence, 10, 64)
			want = append(want, HeaderRef{ThreadID: ie.ThreadID, Sequence: seq, TimestampUs: ie.TimestampUs})
		}
	case v.Header != nil:
		seq, _ := strconv.ParseUint(v.Header.Sequence, 10, 64)
		want = []HeaderRef{{ThreadID: v.Header.ThreadID, Sequence: seq, TimestampUs: v.Header.TimestampUs}}
	}
	if len(got.Headers) != len(want) {
		t.Fatalf("Headers %+v, want %+v", got.Headers, want)
	}
	for i := range want {
		if got.Headers[i] != want[i] {
			t.Errorf("Headers[%d] = %+v, want %+v", i, got.Headers[i], want[i])
		}
	}
}
