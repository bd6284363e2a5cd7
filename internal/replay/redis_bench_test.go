package replay_test

import (
	"strconv"
	"testing"
	"time"

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
