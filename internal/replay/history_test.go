package replay_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/kafka"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// eventValue encodes an Event of thread at seq, as a producer would.
func eventValue(t testing.TB, thread string, seq uint64) []byte {
	t.Helper()
	msg := &pb.DashStreamMessage{Message: &pb.DashStreamMessage_Event{Event: &pb.Event{
		Header:    &pb.Header{ThreadId: thread, Sequence: seq, TimestampUs: 1_700_000_000_000_000 + int64(seq)},
		EventType: pb.EventType_EVENT_TYPE_NODE_START, NodeId: "n",
	}}}
	v, err := dashstream.Encode(msg, dashstream.FramingPlain)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// historyEnv is a partition on real Kafka whose records are also in a real
// Redis tier and a small memory tier, as the gateway holds them.
type historyEnv struct {
	tiers *replay.Tiers
	kafka *testenv.KafkaEnv
	topic string
}

// newHistoryEnv produces n records to one partition: thread T at even
// offsets (sequences 1, 2, …), thread U at odd ones. Memory keeps the last
// memRecs, the Redis log the last redisRecs, the Redis thread index all.
func newHistoryEnv(t *testing.T, n, memRecs, redisRecs int) *historyEnv {
	t.Helper()
	k := testenv.Kafka(t)
	rd := testenv.Redis(t)
	topic := k.Topic(t, 1)
	var values [][]byte
	for o := range n {
		th := "T"
		if o%2 == 1 {
			th = "U"
		}
		values = append(values, eventValue(t, th, uint64(o/2+1)))
	}
	k.Produce(t, topic, 0, values...)
	deep, err := kafka.NewDeepReader(kafka.DeepReadConfig{Brokers: k.Brokers, Topic: topic}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(deep.Close)
	// The records as the consumer makes them: decoded, framed.
	recs, _, err := deep.ReadAfter(bg(t), 0, -1, n)
	if err != nil || len(recs) != n {
		t.Fatalf("read back %d of %d records: %v", len(recs), n, err)
	}
	mem := replay.NewMemory(replay.MemoryConfig{PerPartition: memRecs})
	tiers := replay.NewTiers(mem, deep)
	red := startRedis(t, rd.Client, replay.RedisConfig{Namespace: rd.Prefix,
		MaxPerPartition: redisRecs, MaxPerThread: 10 * n}, true)
	tiers.SetRedis(red.Redis)
	tiers.Append(recs)
	red.flush(t)
	return &historyEnv{tiers: tiers, kafka: k, topic: topic}
}

// pages reads thread's history after 'after' in pages of limit records and
// returns every sequence, checking each page.
func (e *historyEnv) pages(t *testing.T, thread string, after uint64, limit int) ([]uint64, []*replay.Record) {
	t.Helper()
	var seqs []uint64
	var recs []*replay.Record
	for range 1000 {
		h, err := e.tiers.ThreadHistory(bg(t), thread, after, limit)
		if err != nil {
			t.Fatalf("ThreadHistory(after %d): %v", after, err)
		}
		if len(h.Records) > limit || h.Next < after {
			t.Fatalf("page after %d: %d records (limit %d), next %d", after, len(h.Records), limit, h.Next)
		}
		for _, tr := range h.Records {
			seqs = append(seqs, tr.Sequences...)
			recs = append(recs, tr.Record)
		}
		if !h.More {
			return seqs, recs
		}
		after = h.Next
	}
	t.Fatal("history does not end")
	return nil, nil
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// A thread's history pages in sequence order across the tiers: the oldest
// records only Kafka still has (the Redis log was trimmed, but its thread
// index still references them), then Redis's, then memory's.
func TestThreadHistoryAcrossTiers(t *testing.T) {
	const n = 120
	e := newHistoryEnv(t, n, 20, 50) // memory: offsets 100..119; Redis log: 70..119; Kafka: all
	mem, redis := memoryAndRedisBounds(t, e.tiers)
	if mem != 100 || redis != 70 {
		t.Fatalf("memory from %d, Redis from %d; want 100, 70", mem, redis)
	}
	for _, limit := range []int{1, 7, 100} {
		seqs, recs := e.pages(t, "T", 0, limit)
		if want := seqRange(1, n/2); !slices.Equal(seqs, want) {
			t.Fatalf("limit %d: sequences %v, want 1..%d", limit, seqs, n/2)
		}
		for i, r := range recs {
			if r.Offset != int64(2*i) || len(r.Threads) != 1 || r.Threads[0].Thread != "T" || len(r.Frame) == 0 {
				t.Fatalf("limit %d: record %d is p%d/%d %+v", limit, i, r.Partition, r.Offset, r.Threads)
			}
		}
	}
	seqs, _ := e.pages(t, "U", 55, 4)
	if want := seqRange(56, n/2); !slices.Equal(seqs, want) {
		t.Fatalf("U after 55: %v", seqs)
	}
	if seqs, _ := e.pages(t, "nobody", 0, 10); len(seqs) != 0 {
		t.Fatalf("unknown thread: %v", seqs)
	}
}

// Records Kafka deleted (retention) that the Redis index still references
// are left out; the rest of the history still pages.
func TestThreadHistoryBelowRetention(t *testing.T) {
	e := newHistoryEnv(t, 60, 10, 20)
	e.kafka.DeleteRecords(t, e.topic, 0, 20) // offsets 0..19: T's sequences 1..10
	seqs, _ := e.pages(t, "T", 0, 6)
	if want := seqRange(11, 30); !slices.Equal(seqs, want) {
		t.Fatalf("sequences %v, want 11..30", seqs)
	}
}

// memoryAndRedisBounds returns the oldest offsets of partition 0 that the
// memory tier (through Page's tier names) and Redis hold.
func memoryAndRedisBounds(t *testing.T, tiers *replay.Tiers) (memOldest, redisOldest int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	memOldest, redisOldest = -1, -1
	for after := int64(-1); after < 119; {
		page, err := tiers.Page(ctx, 0, after, replay.Limit{Records: 1, Bytes: 1 << 20}, nil)
		if err != nil || len(page.Records) != 1 {
			t.Fatalf("page after %d: %+v %v", after, page, err)
		}
		o := page.Records[0].Offset
		switch {
		case page.Tier == replay.TierMemory && memOldest < 0:
			memOldest = o
		case page.Tier == replay.TierRedis && redisOldest < 0:
			redisOldest = o
		}
		after = o
	}
	return memOldest, redisOldest
}
