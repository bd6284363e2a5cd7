package dashstream

import (
	"bytes"
	"errors"
	"runtime"
	"testing"

	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// emptyEventsBatch is an EventBatch (field 8) holding n empty events (field
// 2, length 0): two bytes per event on the wire.
func emptyEventsBatch(n int) []byte {
	inner := bytes.Repeat([]byte{0x12, 0x00}, n)
	var b []byte
	b = append(b, 0x42) // field 8, bytes
	b = appendVarint(b, uint64(len(inner)))
	return append(b, inner...)
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func TestElementBombRejectedBeforeAllocation(t *testing.T) {
	pb := emptyEventsBatch(5<<20 - 16) // just under 10 MiB of empty events
	for name, framing := range map[string]Framing{"plain": FramingPlain, "zstd": FramingZstd} {
		t.Run(name, func(t *testing.T) {
			value := frameRaw(t, pb, framing)
			d := NewDecoder(DecoderConfig{})
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := d.Decode(value)
			runtime.ReadMemStats(&after)
			var de *DecodeError
			if !errors.As(err, &de) || de.Kind != KindPayloadTooLarge {
				t.Fatalf("err = %v, want payload_too_large", err)
			}
			// The zstd path inflates the 10 MiB payload once; the protobuf
			// library would have allocated ~1 GiB.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 40<<20 {
				t.Fatalf("decode allocated %d MiB", alloc>>20)
			}
		})
	}
}

func TestRealisticBatchWithinElementCap(t *testing.T) {
	batch := &dashstreampb.EventBatch{Header: &dashstreampb.Header{ThreadId: "t"}}
	for i := 0; i < 2000; i++ {
		ev := &dashstreampb.Event{Header: &dashstreampb.Header{ThreadId: "t", Sequence: uint64(i + 1)},
			Attributes: map[string]*dashstreampb.AttributeValue{
				"a": {Value: &dashstreampb.AttributeValue_IntValue{IntValue: int64(i)}},
				"b": {Value: &dashstreampb.AttributeValue_StringValue{StringValue: "x"}},
			}}
		batch.Events = append(batch.Events, ev)
	}
	msg := &dashstreampb.DashStreamMessage{Message: &dashstreampb.DashStreamMessage_EventBatch{EventBatch: batch}}
	value, err := Encode(msg, FramingPlain)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDecoder(DecoderConfig{}).Decode(value)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(d.Headers) != 2000 {
		t.Fatalf("headers = %d", len(d.Headers))
	}
	if _, err := NewDecoder(DecoderConfig{MaxElements: 1000}).Decode(value); err == nil {
		t.Fatal("a 1000-element cap accepted ~8000 elements")
	}
}

// frameRaw frames raw protobuf bytes without re-encoding them.
func frameRaw(t *testing.T, pb []byte, f Framing) []byte {
	t.Helper()
	if f == FramingPlain {
		return append([]byte{0x00}, pb...)
	}
	z, err := compress(pb, FramingZstd)
	if err != nil {
		t.Fatal(err)
	}
	return z
}
