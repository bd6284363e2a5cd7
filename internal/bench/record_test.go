package bench

import (
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
)

func TestRecordBuilder(t *testing.T) {
	dec := dashstream.NewDecoder(dashstream.DecoderConfig{})
	for _, size := range []int{64, 200, 512, 4096, 100000} {
		b, err := newRecordBuilder(size)
		if err != nil {
			t.Fatal(err)
		}
		ts := time.Now().UnixMicro()
		v, err := b.build(threadID(3, -1), 12345, ts)
		if err != nil {
			t.Fatal(err)
		}
		if size >= 100 && (len(v) < size-2 || len(v) > size+2) {
			t.Errorf("size %d: record of %d bytes", size, len(v))
		}
		d, err := dec.Decode(v)
		if err != nil {
			t.Fatalf("size %d: not a valid record: %v", size, err)
		}
		h := d.Headers[0]
		if h.TimestampUs != ts || h.Sequence != 12345 || h.ThreadID != "bench-p3" {
			t.Fatalf("header %+v", h)
		}
		if got, ok := headerTimestamp(v); !ok || got != ts {
			t.Fatalf("headerTimestamp = %d %v, want %d", got, ok, ts)
		}
		if got, ok := headerThread(v); !ok || string(got) != "bench-p3" {
			t.Fatalf("headerThread = %q %v", got, ok)
		}
		w, _ := b.build(threadID(3, 77), 1, ts)
		if got, ok := headerThread(w); !ok || string(got) != "bench-t77" || len(w) != len(v) {
			t.Fatalf("headerThread = %q %v; %d bytes, want %d", got, ok, len(w), len(v))
		}
	}
}

func TestHeaderTimestampRejectsGarbage(t *testing.T) {
	for _, v := range [][]byte{nil, {0x01, 0x02}, {0x00}, {0x00, 0x0a, 0x05, 0x01}, {0x00, 0xff, 0xff}} {
		if _, ok := headerTimestamp(v); ok {
			t.Errorf("% x accepted", v)
		}
		if _, ok := headerThread(v); ok {
			t.Errorf("% x accepted as a thread", v)
		}
	}
}

func FuzzHeaderTimestamp(f *testing.F) {
	b, _ := newRecordBuilder(100)
	v, _ := b.build(threadID(0, 5), 1, 1764158400000123)
	f.Add(v)
	f.Fuzz(func(t *testing.T, v []byte) {
		headerTimestamp(v)
		if th, ok := headerThread(v); ok && len(th) > len(v) {
			t.Fatalf("thread of %d bytes in a value of %d", len(th), len(v))
		}
	})
}

func BenchmarkHeaderTimestamp(b *testing.B) {
	rb, _ := newRecordBuilder(512)
	v, _ := rb.build(threadID(0, -1), 1, time.Now().UnixMicro())
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		headerTimestamp(v)
	}
}
