package hub

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/metrics"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// discardConn is a socket that accepts every write at once.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error)      { return len(p), nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }
func (discardConn) Close() error                     { return nil }

// TestLivePumpAllocatesNothing guards the hot path: once its buffers have
// grown, a live session gathers pages from the memory tier and writes them
// without allocating (garbage here is paid per client per write).
func TestLivePumpAllocatesNothing(t *testing.T) {
	const parts, perPart = 4, 5000
	mem := replay.NewMemory(replay.MemoryConfig{PerPartition: perPart})
	h := New(Config{QueueBytes: 1 << 30}, replay.NewTiers(mem, nil), &fakeTopo{hwm: map[int32]int64{}}, metrics.New(nil), slog.New(slog.DiscardHandler))
	defer h.Shutdown(context.Background())
	value := make([]byte, 512)
	var recs []*replay.Record
	for o := range int64(perPart) {
		for p := range int32(parts) {
			recs = append(recs, &replay.Record{Partition: p, Offset: o, Prev: o - 1, Value: value, TimestampUs: time.Now().UnixMicro()})
		}
	}
	h.Publish(recs)

	s := newSession(h, discardConn{}, "", false)
	s.d.pos = map[int32]int64{0: -1, 1: -1, 2: -1, 3: -1}
	ctx := context.Background()
	pump := func() {
		if _, _, cr := s.pump(ctx); cr != nil {
			t.Fatalf("pump: %+v", cr)
		}
	}
	pump() // grows the reused buffers (the backlog is within QueueBytes: no catch-up)
	start := s.d.pos[0]
	if n := testing.AllocsPerRun(20, pump); n > 0.5 {
		t.Errorf("a live pump allocates %.1f times", n)
	}
	if s.d.pos[0] <= start {
		t.Fatal("the pumps delivered nothing")
	}
}

func BenchmarkLivePump(b *testing.B) {
	for _, bc := range []struct {
		name     string
		v2, json bool
	}{{"v1", false, false}, {"v2", true, false}, {"v2json", true, true}} {
		b.Run(bc.name, func(b *testing.B) {
			mem := replay.NewMemory(replay.MemoryConfig{PerPartition: 100000})
			h := New(Config{QueueBytes: 1 << 40}, replay.NewTiers(mem, nil), &fakeTopo{hwm: map[int32]int64{}}, metrics.New(nil), slog.New(slog.DiscardHandler))
			defer h.Shutdown(context.Background())
			value := make([]byte, 512)
			if bc.json { // JSON needs a real message; it is encoded once per record, then shared
				value = msgSpec{thread: "t", seq: 1}.encodeB(b)
			}
			var recs []*replay.Record
			for o := range int64(100000) {
				recs = append(recs, &replay.Record{Partition: 0, Offset: o, Prev: o - 1, Value: value, TimestampUs: 1})
			}
			h.Publish(recs)
			s := newSession(h, discardConn{}, "", bc.v2)
			s.d.json = bc.json
			s.d.pos = map[int32]int64{0: -1}
			b.ReportAllocs()
			for b.Loop() {
				if s.d.pos[0] > 90000 {
					s.d.pos[0] = -1
				}
				s.pump(context.Background())
			}
		})
	}
}
