package replay_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// benchRecords builds n records of 512-byte values over parts partitions,
// each carrying one (thread, sequence) pair, offsets from base.
func benchRecords(n, parts int, base int64) []*replay.Record {
	value := make([]byte, 512)
	recs := make([]*replay.Record, 0, n)
	for i := range n {
		o := base + int64(i/parts)
		recs = append(recs, &replay.Record{
			Partition: int32(i % parts), Offset: o, Prev: o - 1, Value: value, TimestampUs: time.Now().UnixMicro(),
			Threads: []replay.ThreadSeq{{Thread: "thread-" + strconv.Itoa(i%50), Sequence: uint64(o + 1)}},
		})
	}
	return recs
}

// BenchmarkRedisRead reads 10 000 records of 512 B in pages of 500.
func BenchmarkRedisRead(b *testing.B) {
	env := testenv.Redis(b)
	s := startRedis(b, env.Client, replay.RedisConfig{Namespace: env.Prefix}, true)
	s.Append(bg(b), benchRecords(10000, 1, 0))
	s.flush(b)
	benchReadAll(b, s)
}

// benchReadAll reads partition 0 from the start in pages of 500 per
// iteration and reports the records read per second.
func benchReadAll(b *testing.B, s *redisStore) {
	lim := replay.Limit{Records: 500, Bytes: 64 << 20}
	n := 0
	for b.Loop() {
		for after := int64(-1); ; {
			recs, _, err := s.Read(bg(b), 0, after, lim)
			if err != nil {
				b.Fatal(err)
			}
			if len(recs) == 0 {
				break
			}
			n += len(recs)
			after = recs[len(recs)-1].Offset
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRedisReadFacts reads 10 000 NODE_END events (a filter on types
// or event types needs each record's facts) stored with their facts, and
// stored in the previous format, whose facts the read decodes from the
// value: that is the cost every filtered read paid before the entry kept
// them (the hub decoded each Redis record per filtered client and page).
func BenchmarkRedisReadFacts(b *testing.B) {
	recs := benchRecords(10000, 1, 0)
	for i, r := range recs {
		v, err := dashstream.Encode(&dashstreampb.DashStreamMessage{Message: &dashstreampb.DashStreamMessage_Event{Event: &dashstreampb.Event{
			Header:    &dashstreampb.Header{ThreadId: r.Threads[0].Thread, Sequence: uint64(i + 1), TenantId: "acme", TimestampUs: r.TimestampUs},
			EventType: dashstreampb.EventType_EVENT_TYPE_NODE_END, NodeId: "node-" + strconv.Itoa(i%20), DurationUs: 1234}}}, dashstream.FramingPlain)
		if err != nil {
			b.Fatal(err)
		}
		r.Value, r.Type, r.EventTypes = v, uint8(dashstreampb.MessageType_MESSAGE_TYPE_EVENT), []int32{int32(dashstreampb.EventType_EVENT_TYPE_NODE_END)}
	}
	check := func(b *testing.B, s *redisStore) {
		got, _, err := s.Read(bg(b), 0, 9000, replay.Limit{Records: 1})
		if err != nil || len(got) != 1 || got[0].Type != recs[0].Type || len(got[0].EventTypes) != 1 {
			b.Fatalf("read back %+v (%v), want the facts", got, err)
		}
	}
	b.Run("stored", func(b *testing.B) {
		env := testenv.Redis(b)
		s := startRedis(b, env.Client, replay.RedisConfig{Namespace: env.Prefix}, true)
		s.Append(bg(b), recs)
		s.flush(b)
		check(b, s)
		benchReadAll(b, s)
	})
	b.Run("previous-format", func(b *testing.B) {
		env := testenv.Redis(b)
		s := startRedis(b, env.Client, replay.RedisConfig{Namespace: env.Prefix}, true)
		key := logKey(env.Prefix, 0)
		_, err := env.Client.Pipelined(bg(b), func(pipe redis.Pipeliner) error {
			for _, r := range recs {
				pipe.XAdd(bg(b), &redis.XAddArgs{Stream: key, ID: strconv.FormatInt(r.Offset, 10) + "-1", Values: []any{
					"prev", strconv.FormatInt(r.Prev, 10), "value", r.Value, "ts", strconv.FormatInt(r.TimestampUs, 10),
					"threads", string(rune(len(r.Threads[0].Thread))) + r.Threads[0].Thread + "\x01", "tenant", "acme"}})
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		check(b, s)
		benchReadAll(b, s)
	})
}

// BenchmarkRedisAppend writes 10 000 records of 512 B per iteration (new
// offsets each time, so every write trims) until Flush returns.
func BenchmarkRedisAppend(b *testing.B) {
	for _, parts := range []int{1, 8} {
		b.Run(strconv.Itoa(parts)+"-partitions", func(b *testing.B) {
			env := testenv.Redis(b)
			s := startRedis(b, env.Client, replay.RedisConfig{Namespace: env.Prefix}, true)
			n, base := 0, int64(0)
			for b.Loop() {
				recs := benchRecords(10000, parts, base)
				base += int64(10000 / parts)
				for i := 0; i < len(recs); i += 100 { // the consumer appends per fetch
					s.Append(bg(b), recs[i:i+100])
				}
				s.flush(b)
				n += len(recs)
			}
			if f := s.m.Replay(); f.RedisWriteDropped+f.RedisWriteFailures > 0 {
				b.Fatalf("dropped %d, failed %d", f.RedisWriteDropped, f.RedisWriteFailures)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
