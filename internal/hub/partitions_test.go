package hub

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// fullKafka is a replay.DeepReader whose topic retains every offset from 0
// up to the hub's head, with the values testHub.publish gives them. A fake:
// the hub's unit tests run without a broker; the real deep reader serving
// new partitions is tested end to end in
// internal/app/fault_partitions_test.go.
type fullKafka struct {
	heads func() map[int32]int64
	read  *atomic.Int64 // records served
}

func (k fullKafka) LogStart(context.Context, int32, time.Duration) (int64, error) { return 0, nil }

func (k fullKafka) ReadAfter(_ context.Context, p int32, after int64, limit int) ([]*replay.Record, int64, error) {
	head, ok := k.heads()[p]
	if !ok {
		head = -1
	}
	var recs []*replay.Record
	for o := after + 1; o <= head && len(recs) < limit; o++ {
		r := &replay.Record{Partition: p, Offset: o, Prev: o - 1, Value: []byte("v-" + itoa(p) + "-" + itoa64(o)),
			Threads: []replay.ThreadSeq{{Thread: "t" + itoa(p), Sequence: uint64(o + 1)}}}
		r.EncodeFrames()
		recs = append(recs, r)
	}
	k.read.Add(int64(len(recs)))
	return recs, 0, nil
}

// A partition added to the topic after a session resumed is new to its
// client from its first record: a burst larger than the memory tier's
// per-partition cap is delivered whole, what memory evicted from the lower
// tier, each record once and without a gap. A partition that existed at the
// resume but was not listed is replayed from the oldest record of the
// replay window, and one read from the consumer's start (not added at
// runtime) that appears after the resume still begins there.
func TestPartitionAddedAfterResume(t *testing.T) {
	const memCap, burst = 100, 700
	cases := []struct {
		name      string
		added     string // when the consumer reports p1 as added while running: "before" or "after" the resume, "" never
		before    int    // p1 records published before the resume
		wantFirst int64  // first p1 offset the client gets
	}{
		{name: "added after the resume", added: "after", wantFirst: 0},
		{name: "added before the resume, no record yet", added: "before", wantFirst: 0},
		{name: "read from the consumer's start", wantFirst: burst - memCap},
		{name: "existed at the resume, not listed", added: "before", before: 3 * memCap, wantFirst: 3 * memCap},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			th := newTestHub(t, Config{}, replay.MemoryConfig{PerPartition: memCap})
			var read atomic.Int64
			th.tiers.SetKafka(fullKafka{heads: th.Heads, read: &read})
			th.publish(0, 0, 10)
			if tc.added == "before" {
				th.PartitionsAdded(map[int32]int64{1: 0})
			}
			if tc.before > 0 {
				th.publish(1, 0, tc.before)
			}
			c := th.dial(t)
			c.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": "9"}})
			recs, _ := c.readUntil(isType("replay_complete"))
			// p1 listed nowhere: replayed from the replay window's oldest.
			checkExact(t, recs, map[int32][]int64{0: nil, 1: seq(int64(max(0, tc.before-memCap)), int64(tc.before)-1)})
			if tc.added == "after" {
				th.PartitionsAdded(map[int32]int64{1: 0})
			}

			th.publish(1, int64(tc.before), burst) // one poll: memory keeps the newest memCap
			th.publish(0, 10, 5)
			last := int64(tc.before + burst - 1)
			live, ctrl := c.readToHeads(map[int32]int64{0: 14, 1: last}, nil)
			if gaps := ofType(ctrl, "gap"); len(gaps) > 0 {
				t.Fatalf("gap frames %v: Kafka holds every record", gaps)
			}
			checkExact(t, live, map[int32][]int64{0: seq(10, 14), 1: seq(tc.wantFirst, last)})
			if fromKafka := read.Load(); tc.wantFirst == 0 && fromKafka < burst-memCap {
				t.Fatalf("the lower tier served %d records, want the %d memory evicted", fromKafka, burst-memCap)
			}
		})
	}
}
