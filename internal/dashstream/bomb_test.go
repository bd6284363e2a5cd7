package dashstream

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// undeclaredFrame streams n zero bytes through a zstd writer, so the frame
// carries no Frame_Content_Size: only inflating it reveals its size.
func undeclaredFrame(t testing.TB, n int, window int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, zstd.WithWindowSize(window), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for left := n; left > 0; left -= len(chunk) {
		if _, err := w.Write(chunk[:min(left, len(chunk))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var h zstd.Header
	if err := h.Decode(buf.Bytes()); err != nil || h.HasFCS {
		t.Fatalf("test frame must not declare its size (err %v, header %+v)", err, h)
	}
	return buf.Bytes()
}

// allocatedBytes returns the average bytes allocated by one call of f.
func allocatedBytes(runs int, f func()) uint64 {
	f() // warm pools
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

func TestInflateCapEnforcedWhileDecompressing(t *testing.T) {
	const inflated = 11 << 20
	dec := NewDecoder(DecoderConfig{})
	tests := []struct {
		name  string
		value []byte
	}{
		{"zstd framing", append([]byte{flagZstd}, undeclaredFrame(t, inflated, 1<<20)...)},
		{"legacy zstd", undeclaredFrame(t, inflated, 1<<20)},
		{"manifest bomb (declared)", vectorValue(t, vectorByName(t, "invalid_zstd_bomb_11mib"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			perCall := allocatedBytes(5, func() { _, err = dec.Decode(tt.value) })
			assertKind(t, err, KindDecompressedTooLarge)
			t.Logf("%d bytes allocated per decode of a %d-byte value inflating to %d", perCall, len(tt.value), inflated)
			if perCall > 3<<20 {
				t.Fatalf("decode allocated %d bytes, want < 3 MiB", perCall)
			}
		})
	}
}

func TestInflateUndeclaredSizeWithinCap(t *testing.T) {
	dec := NewDecoder(DecoderConfig{MaxPayload: 4 << 20})
	msg := sampleMessages()["token_chunk"]
	pb := mustMarshal(t, msg)
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(pb)
	w.Close()
	got, err := dec.Decode(append([]byte{flagZstd}, buf.Bytes()...))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	assertProtoEqual(t, got.Message, msg)
}

func vectorByName(t testing.TB, name string) vector {
	t.Helper()
	for _, v := range loadManifest(t) {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no vector %q", name)
	return vector{}
}
