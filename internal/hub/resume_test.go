package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dashflow/dashstream-gateway/internal/replay"
)

func TestExactDeliveryFourPartitions(t *testing.T) {
	th := newTestHub(t, Config{}, replay.MemoryConfig{PerPartition: 10000})
	c := th.dial(t)
	c.send(map[string]any{"type": "resume", "from": "latest"})
	_, ctrl := c.readUntil(isType("replay_complete"))
	if rc := ctrl[len(ctrl)-1]; rc["mode"] != "latest" || num(rc, "totalReplayed") != 0 || len(offsetsOf(t, rc["lastOffsetsByPartition"])) != 0 {
		t.Fatalf("replay_complete = %v", rc)
	}
	want := map[int32][]int64{}
	for round := range 50 {
		for p := range int32(4) {
			from := int64(round * 10)
			if p == 2 {
				from += 1 << 40 // far from zero: offsets are int64
			}
			th.publish(p, from, 10)
			want[p] = append(want[p], seq(from, from+9)...)
		}
	}
	recs, ctrl := c.readRecords(2000)
	if len(ctrl) != 0 {
		t.Fatalf("unexpected control frames %v", ctrl)
	}
	checkExact(t, recs, want)
}

// resumeFixture: p0 holds 50..99 of 0..99 (older ones evicted), p1..p3 hold
// 0..9; the high watermark of each is its head+1.
func resumeFixture(t *testing.T, cfg Config) *testHub {
	th := newTestHub(t, cfg, replay.MemoryConfig{PerPartition: 50})
	th.publish(0, 0, 100)
	for p := int32(1); p < 4; p++ {
		th.publish(p, 0, 10)
	}
	return th
}

func TestResumeCursor(t *testing.T) {
	type stale struct {
		p                 int32
		requested, oldest int64
	}
	type gap struct {
		p        int32
		from, to int64
		severity string
	}
	all := map[int32][]int64{0: seq(50, 99), 1: seq(0, 9), 2: seq(0, 9), 3: seq(0, 9)}
	with := func(p int32, s []int64) map[int32][]int64 {
		m := maps.Clone(all)
		m[p] = s
		return m
	}
	cases := []struct {
		name    string
		ns      string // Config.Namespace
		resume  map[string]any
		want    map[int32][]int64
		stale   []stale
		gaps    []gap
		lastOff map[int32]int64 // replay_complete lastOffsetsByPartition; nil = heads
	}{
		{name: "listed and unlisted", resume: map[string]any{"1": "4", "3": 7},
			want: map[int32][]int64{0: seq(50, 99), 1: seq(5, 9), 2: seq(0, 9), 3: seq(8, 9)}},
		{name: "listed at the head", resume: map[string]any{"0": "99", "1": "9", "2": 9, "3": "9"},
			want: map[int32][]int64{0: nil, 1: nil, 2: nil, 3: nil}},
		{name: "offset -1", resume: map[string]any{"1": "-1"}, want: all},
		{name: "offset 0", resume: map[string]any{"1": 0}, want: with(1, seq(1, 9))},
		{name: "cursor at the high watermark", resume: map[string]any{"1": "10"},
			want: all, stale: []stale{{1, 10, 0}}},
		{name: "cursor far beyond the high watermark", resume: map[string]any{"1": "9223372036854775807"},
			want: all, stale: []stale{{1, math.MaxInt64, 0}}},
		{name: "cursor older than retained", resume: map[string]any{"0": "10"},
			want: all, stale: []stale{{0, 10, 50}}, gaps: []gap{{0, 11, 49, "warning"}}},
		{name: "cursor -1 older than retained", resume: map[string]any{"0": "-1"},
			want: all, stale: []stale{{0, -1, 50}}, gaps: []gap{{0, 0, 49, "warning"}}},
		{name: "cursor one record too old", resume: map[string]any{"0": "48"},
			want: all, stale: []stale{{0, 48, 50}}, gaps: []gap{{0, 49, 49, "info"}}},
		{name: "cursor just retained", resume: map[string]any{"0": "49"}, want: all},
		{name: "namespace mismatch", ns: "ns-a", resume: map[string]any{"0": "60", "1": "4"},
			want: all, stale: []stale{{0, 60, 50}, {1, 4, 0}}},
		{name: "namespace match", ns: "ns-a", resume: map[string]any{"0": "60", "1": "4"},
			want: map[int32][]int64{0: seq(61, 99), 1: seq(5, 9), 2: seq(0, 9), 3: seq(0, 9)}},
		{name: "namespace not sent", ns: "ns-a", resume: map[string]any{"1": "4"}, want: with(1, seq(5, 9))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cfg Config
			if tc.ns != "" {
				cfg.Namespace = func() string { return "ns-a" }
			}
			th := resumeFixture(t, cfg)
			c := th.dial(t)
			msg := map[string]any{"type": "resume", "lastOffsetsByPartition": tc.resume}
			switch tc.name {
			case "namespace mismatch":
				msg["namespace"] = "ns-b"
			case "namespace match":
				msg["namespace"] = "ns-a"
			}
			c.send(msg)
			recs, ctrl := c.readUntil(isType("replay_complete"))
			checkExact(t, recs, tc.want)
			var gotStale []stale
			for _, m := range ofType(ctrl, "cursor_stale") {
				gotStale = append(gotStale, stale{int32(num(m, "partition")), parseOffset(t, m["requested"]), parseOffset(t, m["oldest"])})
				if m["message"] == "" {
					t.Fatalf("cursor_stale without message")
				}
			}
			if !slices.Equal(gotStale, tc.stale) {
				t.Fatalf("cursor_stale %v, want %v", gotStale, tc.stale)
			}
			var gotGaps []gap
			for _, m := range ofType(ctrl, "gap") {
				from, to := parseOffset(t, m["fromOffset"]), parseOffset(t, m["toOffset"])
				if num(m, "count") != to-from+1 || m["reason"] != "retention" {
					t.Fatalf("gap %v", m)
				}
				gotGaps = append(gotGaps, gap{int32(num(m, "partition")), from, to, m["severity"].(string)})
			}
			if !slices.Equal(gotGaps, tc.gaps) {
				t.Fatalf("gaps %v, want %v", gotGaps, tc.gaps)
			}
			if len(ctrl) != len(tc.stale)+len(tc.gaps)+1 {
				t.Fatalf("control frames %v", ctrl)
			}
			rc := ctrl[len(ctrl)-1]
			last := tc.lastOff
			if last == nil {
				last = th.Heads()
			}
			if got := offsetsOf(t, rc["lastOffsetsByPartition"]); !maps.Equal(got, last) {
				t.Fatalf("lastOffsetsByPartition %v, want %v", got, last)
			}
			if num(rc, "totalReplayed") != int64(len(recs)) || rc["mode"] != "cursor" || rc["capped"] != false {
				t.Fatalf("replay_complete %v after %d records", rc, len(recs))
			}
			// Live continues from the heads on every partition.
			for p := int32(0); p < 4; p++ {
				th.publish(p, th.Heads()[p]+1, 2)
			}
			live, _ := c.readRecords(8)
			want := map[int32][]int64{}
			for p, h := range th.Heads() {
				want[p] = seq(h-1, h)
			}
			checkExact(t, live, want)
		})
	}
}

// A cursor above this instance's head but below the high watermark (the
// instance is behind): nothing is sent for that partition until the
// consumer passes the cursor.
func TestResumeCursorAheadOfInstance(t *testing.T) {
	th := resumeFixture(t, Config{})
	th.topo.mu.Lock()
	th.topo.hwm[1] = 20
	th.topo.mu.Unlock()
	c := th.dial(t)
	c.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{"1": "15"}})
	recs, ctrl := c.readUntil(isType("replay_complete"))
	checkExact(t, recs, map[int32][]int64{0: seq(50, 99), 1: nil, 2: seq(0, 9), 3: seq(0, 9)})
	if len(ctrl) != 1 {
		t.Fatalf("control frames %v", ctrl)
	}
	if last := offsetsOf(t, ctrl[0]["lastOffsetsByPartition"]); last[1] != 15 {
		t.Fatalf("lastOffsetsByPartition %v", last)
	}
	th.publish(1, 10, 10) // 10..19
	live, _ := c.readRecords(4)
	checkExact(t, live, map[int32][]int64{1: seq(16, 19)})
}

func TestResumeEarliest(t *testing.T) {
	th := resumeFixture(t, Config{})
	c := th.dial(t)
	c.send(map[string]any{"type": "resume", "from": "earliest", "lastOffsetsByPartition": map[string]any{"1": "5"}})
	recs, ctrl := c.readUntil(isType("replay_complete"))
	checkExact(t, recs, map[int32][]int64{0: seq(50, 99), 1: seq(0, 9), 2: seq(0, 9), 3: seq(0, 9)})
	rc := ctrl[len(ctrl)-1]
	if len(ctrl) != 1 || rc["mode"] != "earliest" || num(rc, "totalReplayed") != 80 {
		t.Fatalf("controls %v", ctrl)
	}
	if got := offsetsOf(t, rc["lastOffsetsByPartition"]); !maps.Equal(got, th.Heads()) {
		t.Fatalf("lastOffsetsByPartition %v", got)
	}
}

func TestResumeLatest(t *testing.T) {
	th := resumeFixture(t, Config{})
	c := th.dial(t)
	c.send(map[string]any{"type": "resume", "from": "latest", "lastOffsetsByPartition": map[string]any{"1": "2"}})
	recs, ctrl := c.readUntil(isType("replay_complete"))
	rc := ctrl[0]
	if len(recs) != 0 || len(ctrl) != 1 || rc["mode"] != "latest" || num(rc, "totalReplayed") != 0 || rc["capped"] != false {
		t.Fatalf("records %d, controls %v", len(recs), ctrl)
	}
	if got := offsetsOf(t, rc["lastOffsetsByPartition"]); !maps.Equal(got, map[int32]int64{0: 99, 1: 9, 2: 9, 3: 9}) {
		t.Fatalf("lastOffsetsByPartition %v", got)
	}
	th.publish(3, 10, 3)
	th.publish(7, 0, 2) // a partition that appears after the resume
	live, _ := c.readRecords(5)
	checkExact(t, live, map[int32][]int64{3: seq(10, 12), 7: seq(0, 1)})
}

// Without a resume within ResumeWait the client is treated as "latest", and
// nothing at all is sent before that.
func TestNoResumeActsAsLatest(t *testing.T) {
	th := newTestHub(t, Config{ResumeWait: 300 * time.Millisecond}, replay.MemoryConfig{})
	th.publish(0, 0, 5)
	start := time.Now()
	c := th.dial(t)
	th.publish(0, 5, 5) // during the wait: part of "latest", never sent
	f, err := c.read(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("first frame after %v, before the resume wait", waited)
	}
	if f.json["type"] != "replay_complete" || f.json["mode"] != "latest" || num(f.json, "totalReplayed") != 0 {
		t.Fatalf("first frame %v", f.json)
	}
	if got := offsetsOf(t, f.json["lastOffsetsByPartition"]); !maps.Equal(got, map[int32]int64{0: 9}) {
		t.Fatalf("lastOffsetsByPartition %v", got)
	}
	th.publish(0, 10, 2)
	recs, ctrl := c.readRecords(2)
	checkExact(t, recs, map[int32][]int64{0: seq(10, 11)})
	if len(ctrl) != 0 {
		t.Fatalf("controls %v", ctrl)
	}
}

// A second resume while the first one's replay runs starts a new epoch:
// each resume still gets exactly one replay_complete, and within an epoch
// offsets strictly increase per partition.
func TestSecondResumeMidReplay(t *testing.T) {
	for _, second := range []string{"resume", "cursor_reset"} {
		t.Run(second, func(t *testing.T) {
			th := newTestHub(t, Config{WriteBatch: 2048}, replay.MemoryConfig{PerPartition: 5000})
			for p := range int32(4) {
				th.publish(p, 0, 2000)
			}
			c := th.dial(t)
			c.send(map[string]any{"type": "resume", "from": "earliest"})
			if second == "resume" {
				c.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": "1500", "1": "1500", "2": "1500", "3": "1500"}})
			} else {
				c.send(map[string]any{"type": "cursor_reset"})
			}
			first, ctrl1 := c.readUntil(isType("replay_complete"))
			checkEpoch(t, first, ctrl1[len(ctrl1)-1], nil)
			t.Logf("first epoch replayed %d of 8000 records before it was cancelled", len(first))
			if second == "cursor_reset" {
				rest, ctrl := c.readUntil(isType("cursor_reset_complete"))
				if len(rest) != 0 || len(ctrl) != 1 {
					t.Fatalf("after the first epoch: %d records, controls %v", len(rest), ctrl)
				}
				th.publish(0, 2000, 1)
				live, _ := c.readRecords(1)
				checkExact(t, live, map[int32][]int64{0: {2000}})
				return
			}
			epoch2, ctrl2 := c.readUntil(isType("replay_complete"))
			if len(ctrl2) != 1 {
				t.Fatalf("second epoch controls %v", ctrl2)
			}
			want := map[int32][]int64{0: seq(1501, 1999), 1: seq(1501, 1999), 2: seq(1501, 1999), 3: seq(1501, 1999)}
			checkEpoch(t, epoch2, ctrl2[0], want)
		})
	}
}

// checkEpoch asserts one epoch's replay: strictly increasing contiguous
// offsets per partition from the first one, replay_complete counting them
// and naming the last per partition.
func checkEpoch(t *testing.T, recs []received, rc map[string]any, want map[int32][]int64) {
	t.Helper()
	checkValues(t, recs)
	per := perPartition(recs)
	if want != nil {
		checkExact(t, recs, want)
	}
	for p, offs := range per {
		for i := 1; i < len(offs); i++ {
			if offs[i] != offs[i-1]+1 {
				t.Fatalf("p%d: %d follows %d within an epoch", p, offs[i], offs[i-1])
			}
		}
	}
	if num(rc, "totalReplayed") != int64(len(recs)) {
		t.Fatalf("totalReplayed %v for %d records", rc["totalReplayed"], len(recs))
	}
	last := offsetsOf(t, rc["lastOffsetsByPartition"])
	for p, offs := range per {
		if last[p] != offs[len(offs)-1] {
			t.Fatalf("lastOffsetsByPartition[%d] = %d, last delivered %d", p, last[p], offs[len(offs)-1])
		}
	}
}

func TestReplayCompleteOncePerResume(t *testing.T) {
	th := newTestHub(t, Config{}, replay.MemoryConfig{})
	th.publish(0, 0, 3)
	c := th.dial(t)
	for i := range 3 {
		c.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": "0"}})
		recs, ctrl := c.readUntil(isType("replay_complete"))
		checkExact(t, recs, map[int32][]int64{0: seq(1, 2)})
		if len(ctrl) != 1 {
			t.Fatalf("resume %d: controls %v", i, ctrl)
		}
	}
	c.send(map[string]any{"type": "ping"})
	_, ctrl := c.readUntil(isType("pong"))
	if len(ctrl) != 1 {
		t.Fatalf("extra frames before pong: %v", ctrl)
	}
}

// TestHandoverUnderLoad resumes while a publisher keeps publishing on four
// partitions: the replay part and the live part together must deliver every
// offset after the cursor exactly once, in order.
func TestHandoverUnderLoad(t *testing.T) {
	iterations := 15
	if testing.Short() {
		iterations = 5
	}
	for it := range iterations {
		th := newTestHub(t, Config{WriteBatch: 1 << (10 + it%8)}, replay.MemoryConfig{PerPartition: 1 << 20})
		var published atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			next := [4]int64{}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := int32(i % 4)
				n := 1 + i%7
				th.publish(p, next[p], n)
				next[p] += int64(n)
				published.Add(int64(n))
				if published.Load() > 1200 {
					return
				}
			}
		})
		waitFor(t, 5*time.Second, "records before the resume", func() bool { return published.Load() > 100 })
		c := th.dial(t)
		cursor := map[string]any{"0": "20", "1": "-1", "2": "0"} // p3 unlisted: from the oldest
		c.send(map[string]any{"type": "resume", "lastOffsetsByPartition": cursor})
		replayed, ctrl := c.readUntil(isType("replay_complete"))
		if len(ctrl) != 1 || num(ctrl[0], "totalReplayed") != int64(len(replayed)) {
			t.Fatalf("iteration %d: controls %v after %d records", it, ctrl, len(replayed))
		}
		waitFor(t, 5*time.Second, "more records after the replay", func() bool { return published.Load() > 600 })
		close(stop)
		wg.Wait()
		live, ctrl := c.readToHeads(th.Heads(), replayed)
		if len(ctrl) != 0 {
			t.Fatalf("iteration %d: live controls %v", it, ctrl)
		}
		heads := th.Heads()
		checkExact(t, append(replayed, live...), map[int32][]int64{
			0: seq(21, heads[0]), 1: seq(0, heads[1]), 2: seq(1, heads[2]), 3: seq(0, heads[3])})
		c.conn.CloseNow()
	}
}

func TestReplayCapped(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		max  int // records the replay part may hold
	}{
		{"records", Config{ReplayMaxTotal: 10}, 10},
		{"records over partitions", Config{ReplayMaxTotal: 700}, 700},
		{"bytes", Config{ReplayMaxBytes: 3000}, 3000/recFrameSize + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := newTestHub(t, tc.cfg, replay.MemoryConfig{PerPartition: 1000})
			for p := range int32(4) {
				th.publishSized(p, 0, 300, recValueSize)
			}
			c := th.dial(t)
			c.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": "-1", "1": "-1", "2": "-1", "3": "-1"}})
			replayed, ctrl := c.readUntil(isType("replay_complete"))
			rc := ctrl[len(ctrl)-1]
			if len(ctrl) != 1 || rc["capped"] != true || num(rc, "totalReplayed") != int64(len(replayed)) {
				t.Fatalf("controls %v after %d records", ctrl, len(replayed))
			}
			if len(replayed) > tc.max || len(replayed) < tc.max*9/10 {
				t.Fatalf("replayed %d records, cap allows %d", len(replayed), tc.max)
			}
			checkEpoch(t, replayed, rc, nil)
			// The remainder follows without another resume.
			rest, ctrl := c.readToHeads(th.Heads(), replayed)
			if len(ctrl) != 0 {
				t.Fatalf("controls %v during catch-up", ctrl)
			}
			all := append(replayed, rest...)
			checkValues(t, all)
			want := map[int32][]int64{}
			for p := range int32(4) {
				want[p] = seq(0, 299)
			}
			checkExact2(t, all, want)
		})
	}
	t.Run("cap reached exactly is not capped", func(t *testing.T) {
		th := newTestHub(t, Config{ReplayMaxTotal: 40}, replay.MemoryConfig{})
		for p := range int32(4) {
			th.publish(p, 0, 10)
		}
		c := th.dial(t)
		c.send(map[string]any{"type": "resume", "from": "earliest"})
		recs, ctrl := c.readUntil(isType("replay_complete"))
		if len(recs) != 40 || ctrl[0]["capped"] != false {
			t.Fatalf("%d records, %v", len(recs), ctrl)
		}
	})
}

const recValueSize = 100

// recFrameSize is the size of one record's frames (cursor and binary).
var recFrameSize = len(mustFrame(0, 100, recValueSize))

func mustFrame(p int32, o int64, size int) []byte {
	r := &replay.Record{Partition: p, Offset: o, Value: paddedValue(p, o, size)}
	r.EncodeFrames()
	return r.Frame
}

// checkExact2 is checkExact for padded values.
func checkExact2(t *testing.T, got []received, want map[int32][]int64) {
	t.Helper()
	checkValues(t, got)
	per := perPartition(got)
	for p, w := range want {
		if !slices.Equal(per[p], w) {
			t.Fatalf("partition %d: got %d records %v..., want %d", p, len(per[p]), head(per[p]), len(w))
		}
	}
}

func TestThreadMode(t *testing.T) {
	thread := func(p int32, o int64, ts ...replay.ThreadSeq) *replay.Record {
		return &replay.Record{Partition: p, Offset: o, Value: []byte("v-" + itoa(p) + "-" + itoa64(o)), Threads: ts}
	}
	ts := func(th string, s uint64) replay.ThreadSeq { return replay.ThreadSeq{Thread: th, Sequence: s} }
	setup := func(t *testing.T) *testHub {
		th := newTestHub(t, Config{}, replay.MemoryConfig{})
		th.publishRecs(thread(0, 0, ts("A", 1)), thread(0, 1, ts("B", 1)),
			thread(0, 2, ts("A", 2), ts("B", 2), ts("C", 1)), // an EventBatch spanning threads
			thread(0, 3, ts("A", 3)))
		th.publishRecs(thread(1, 0, ts("C", 2)), thread(1, 1, ts("B", 3)), thread(1, 2, ts("A", 4)))
		th.publishRecs(&replay.Record{Partition: 1, Offset: 3, Skipped: "invalid_protobuf"})
		return th
	}
	for _, tc := range []struct {
		name   string
		resume map[string]any
		want   map[int32][]int64
	}{
		{"lastSequencesByThread", map[string]any{"lastSequencesByThread": map[string]any{"A": "1", "C": 0}},
			map[int32][]int64{0: {2, 3}, 1: {0, 2}}},
		{"threadId and lastSequence", map[string]any{"threadId": "B", "lastSequence": 1},
			map[int32][]int64{0: {2}, 1: {1}}},
		{"explicit mode over offsets", map[string]any{"mode": "thread", "lastOffsetsByPartition": map[string]any{"0": "3"},
			"lastSequencesByThread": map[string]any{"C": "1"}}, map[int32][]int64{0: nil, 1: {0}}},
		{"unknown thread", map[string]any{"threadId": "Z"}, map[int32][]int64{0: nil, 1: nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := setup(t)
			c := th.dial(t)
			msg := maps.Clone(tc.resume)
			msg["type"] = "resume"
			c.send(msg)
			recs, ctrl := c.readUntil(isType("replay_complete"))
			checkExact(t, recs, tc.want)
			rc := ctrl[len(ctrl)-1]
			if len(ctrl) != 1 || rc["mode"] != "thread" || num(rc, "totalReplayed") != int64(len(recs)) || rc["capped"] != false {
				t.Fatalf("controls %v", ctrl)
			}
			// Live continues from the heads, every thread.
			th.publishRecs(thread(0, 4, ts("Q", 1)), thread(1, 4, ts("B", 9)))
			live, ctrl := c.readRecords(2)
			checkExact(t, live, map[int32][]int64{0: {4}, 1: {4}})
			if len(ctrl) != 0 {
				t.Fatalf("live controls %v", ctrl)
			}
		})
	}
}

// A capped thread replay: the rest of the listed threads' records follows
// without a resume, and unlisted threads' old records are never sent.
func TestThreadModeCapped(t *testing.T) {
	th := newTestHub(t, Config{ReplayMaxTotal: 2}, replay.MemoryConfig{})
	var recs []*replay.Record
	for o := int64(0); o < 40; o++ {
		thread := []string{"A", "B"}[o%2]
		recs = append(recs, &replay.Record{Partition: int32(o % 3), Offset: o / 3, Value: []byte("v-" + itoa(int32(o%3)) + "-" + itoa64(o/3)),
			Threads: []replay.ThreadSeq{{Thread: thread, Sequence: uint64(o + 1)}}})
	}
	th.publishRecs(recs...)
	want := map[int32][]int64{}
	total := 0
	for o := int64(0); o < 40; o++ {
		if o%2 == 0 { // thread A
			want[int32(o%3)] = append(want[int32(o%3)], o/3)
			total++
		}
	}
	c := th.dial(t)
	c.send(map[string]any{"type": "resume", "lastSequencesByThread": map[string]any{"A": "0"}})
	replayed, ctrl := c.readUntil(isType("replay_complete"))
	if len(replayed) != 2 || ctrl[0]["capped"] != true || ctrl[0]["mode"] != "thread" {
		t.Fatalf("%d records, %v", len(replayed), ctrl)
	}
	rest, ctrl := c.readRecords(total - 2)
	if len(ctrl) != 0 {
		t.Fatalf("controls %v", ctrl)
	}
	checkExact(t, append(replayed, rest...), want)
	// Live (after the resume's heads): every thread again.
	th.publishRecs(&replay.Record{Partition: 1, Offset: 100, Value: []byte("v-1-100"),
		Threads: []replay.ThreadSeq{{Thread: "B", Sequence: 99}}})
	live, _ := c.readRecords(1)
	checkExact(t, live, map[int32][]int64{1: {100}})
}

func TestCursorReset(t *testing.T) {
	th := newTestHub(t, Config{}, replay.MemoryConfig{})
	th.publish(0, 0, 10)
	th.publish(2, 0, 3)
	c := th.dial(t)
	c.send(map[string]any{"type": "cursor_reset"}) // before any resume: no replay_complete
	_, ctrl := c.readUntil(isType("cursor_reset_complete"))
	checkResetComplete(t, ctrl, map[int32]int64{0: 9, 2: 2})
	th.publish(0, 10, 2)
	recs, ctrl := c.readRecords(2)
	checkExact(t, recs, map[int32][]int64{0: seq(10, 11)})
	if len(ctrl) != 0 {
		t.Fatalf("controls %v", ctrl)
	}
	c.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": "4", "2": "-1"}})
	recs, _ = c.readUntil(isType("replay_complete"))
	checkExact(t, recs, map[int32][]int64{0: seq(5, 11), 2: seq(0, 2)})
	c.send(map[string]any{"type": "cursor_reset"})
	_, ctrl = c.readUntil(isType("cursor_reset_complete"))
	checkResetComplete(t, ctrl, map[int32]int64{0: 11, 2: 2})
	if n, _ := th.mem.Stats(); n != 15 {
		t.Fatalf("cursor_reset touched the shared store: %d records", n)
	}
	th.publish(2, 3, 1)
	recs, _ = c.readRecords(1)
	checkExact(t, recs, map[int32][]int64{2: {3}})
}

func checkResetComplete(t *testing.T, ctrl []map[string]any, heads map[int32]int64) {
	t.Helper()
	if len(ctrl) != 1 {
		t.Fatalf("controls %v", ctrl)
	}
	m := ctrl[0]
	if m["bufferCleared"] != false || m["truncated"] != false || num(m, "totalPartitions") != int64(len(heads)) || m["message"] == "" {
		t.Fatalf("cursor_reset_complete %v", m)
	}
	if got := offsetsOf(t, m["latestOffsetsByPartition"]); !maps.Equal(got, heads) {
		t.Fatalf("latestOffsetsByPartition %v, want %v", got, heads)
	}
}

// Dead-lettered offsets are announced with "skipped" (no cursor, no binary),
// in replay and live, and are not gaps.
func TestSkippedRecords(t *testing.T) {
	th := newTestHub(t, Config{}, replay.MemoryConfig{})
	var recs []*replay.Record
	for o := int64(0); o < 10; o++ {
		r := &replay.Record{Partition: 0, Offset: o, Value: []byte("v-0-" + itoa64(o))}
		if o == 5 {
			r = &replay.Record{Partition: 0, Offset: o, Skipped: "bad_zstd"}
		}
		recs = append(recs, r)
	}
	th.publishRecs(recs...)
	c := th.dial(t)
	c.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": "2"}})
	got, ctrl := c.readUntil(isType("replay_complete"))
	checkExact(t, got, map[int32][]int64{0: {3, 4, 6, 7, 8, 9}})
	sk := ofType(ctrl, "skipped")
	if len(sk) != 1 || len(ctrl) != 2 || parseOffset(t, sk[0]["offset"]) != 5 || sk[0]["error_type"] != "bad_zstd" || num(sk[0], "partition") != 0 {
		t.Fatalf("controls %v", ctrl)
	}
	if rc := ctrl[1]; num(rc, "totalReplayed") != 7 || offsetsOf(t, rc["lastOffsetsByPartition"])[0] != 9 {
		t.Fatalf("replay_complete %v", rc)
	}
	th.publishRecs(&replay.Record{Partition: 0, Offset: 10, Skipped: "invalid_protobuf"},
		&replay.Record{Partition: 0, Offset: 11, Value: []byte("v-0-11")})
	live, ctrl := c.readRecords(1)
	checkExact(t, live, map[int32][]int64{0: {11}})
	if len(ctrl) != 1 || ctrl[0]["type"] != "skipped" || parseOffset(t, ctrl[0]["offset"]) != 10 {
		t.Fatalf("live controls %v", ctrl)
	}
}

// Offsets up to 2^63-1 travel exactly, in cursors, replay_complete and
// resume.
func TestOffsetsNearMaxInt64(t *testing.T) {
	th := newTestHub(t, Config{}, replay.MemoryConfig{})
	var recs []*replay.Record
	for o := int64(math.MaxInt64 - 10); ; o++ {
		recs = append(recs, &replay.Record{Partition: 0, Offset: o, Value: []byte("v-0-" + itoa64(o))})
		if o == math.MaxInt64 {
			break
		}
	}
	th.publishRecs(recs...)
	th.topo.mu.Lock()
	th.topo.hwm[0] = math.MaxInt64 // a record at 2^63-1 is the last one possible
	th.topo.mu.Unlock()
	for _, cursor := range []int64{math.MaxInt64 - 4, math.MaxInt64 - 1, math.MaxInt64 - 11} {
		c := th.dial(t)
		c.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": itoa64(cursor)}})
		got, ctrl := c.readUntil(isType("replay_complete"))
		checkExact(t, got, map[int32][]int64{0: seq(cursor+1, math.MaxInt64)})
		if len(ctrl) != 1 || offsetsOf(t, ctrl[0]["lastOffsetsByPartition"])[0] != math.MaxInt64 {
			t.Fatalf("controls %v", ctrl)
		}
	}
}

// TestManyClientsUnderLoad: clients with every kind of resume join while a
// publisher runs; each gets, per partition, exactly the offsets after its
// starting point up to the final heads.
func TestManyClientsUnderLoad(t *testing.T) {
	th := newTestHub(t, Config{WriteBatch: 8 << 10, ResumeWait: 10 * time.Second}, replay.MemoryConfig{PerPartition: 1 << 20})
	var final atomic.Pointer[map[int32]int64]
	var published atomic.Int64
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		next := [4]int64{}
		for i := 0; published.Load() < 2000; i++ {
			p := int32(i % 4)
			th.publish(p, next[p], 1+i%5)
			next[p] += int64(1 + i%5)
			published.Add(int64(1 + i%5))
			time.Sleep(200 * time.Microsecond) // spread over the clients' arrivals
		}
	}()
	resumes := []map[string]any{
		{"type": "resume", "from": "latest"},
		{"type": "resume", "from": "earliest"},
		{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": "5", "1": "-1"}},
		{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": "0", "1": "1", "2": "2", "3": "3"}},
		{"type": "resume"},
	}
	type result struct {
		start map[int32]int64
		recs  []received
		err   error
	}
	results := make([]chan result, 12)
	for i := range results {
		waitFor(t, 5*time.Second, "progress", func() bool { return published.Load() >= int64(i*150) })
		c := th.dial(t)
		msg := resumes[i%len(resumes)]
		c.send(msg)
		results[i] = make(chan result, 1)
		go func() {
			recs, rc, err := drainToFinal(c, &final)
			start := map[int32]int64{0: -1, 1: -1, 2: -1, 3: -1}
			if err == nil {
				switch {
				case msg["from"] == "latest":
					maps.Copy(start, offsetsOfNoT(rc["lastOffsetsByPartition"]))
				case msg["lastOffsetsByPartition"] != nil:
					for k, v := range msg["lastOffsetsByPartition"].(map[string]any) {
						start[int32(k[0]-'0')] = mustInt(v.(string))
					}
				}
			}
			results[i] <- result{start, recs, err}
		}()
	}
	<-pubDone
	heads := th.Heads()
	final.Store(&heads)
	for i, ch := range results {
		r := <-ch
		if r.err != nil {
			t.Fatalf("client %d (%v): %v", i, resumes[i%len(resumes)], r.err)
		}
		want := map[int32][]int64{}
		for p, h := range heads {
			want[p] = seq(r.start[p]+1, h)
		}
		checkExact(t, r.recs, want)
	}
}

func mustInt(s string) int64 {
	var o int64
	if err := json.Unmarshal([]byte(s), &o); err != nil {
		panic(err)
	}
	return o
}

func offsetsOfNoT(v any) map[int32]int64 {
	out := map[int32]int64{}
	for k, o := range v.(map[string]any) {
		p, _ := strconv.Atoi(k)
		out[int32(p)] = mustInt(o.(string))
	}
	return out
}

// drainToFinal reads (off the test goroutine) until final is set and every
// partition in it was delivered; it returns the records and the
// replay_complete frame.
func drainToFinal(c *client, final *atomic.Pointer[map[int32]int64]) ([]received, map[string]any, error) {
	var recs []received
	var rc map[string]any
	last := map[int32]int64{}
	done := func() bool {
		f := final.Load()
		if f == nil {
			return false
		}
		for p, h := range *f {
			if o, ok := last[p]; !ok || o < h {
				return false
			}
		}
		return true
	}
	var pending *received
	for !done() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		typ, b, err := c.conn.Read(ctx)
		cancel()
		if err != nil && done() {
			break // everything arrived before the publisher recorded the final heads
		}
		if err != nil {
			f := final.Load()
			return recs, rc, fmt.Errorf("read after %d records (last %v, final %v): %w", len(recs), last, f, err)
		}
		if typ == websocket.MessageBinary {
			if pending == nil {
				return recs, rc, errors.New("binary frame without cursor")
			}
			pending.value = string(b)
			recs = append(recs, *pending)
			last[pending.partition] = pending.offset
			pending = nil
			continue
		}
		if pending != nil {
			return recs, rc, errors.New("two cursors in a row")
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return recs, rc, err
		}
		switch m["type"] {
		case "cursor":
			pending = &received{partition: int32(m["partition"].(float64)), offset: mustInt(m["offset"].(string))}
		case "replay_complete":
			if rc != nil {
				return recs, rc, errors.New("second replay_complete")
			}
			rc = m
			for p, o := range offsetsOfNoT(m["lastOffsetsByPartition"]) {
				last[p] = max(last[p], o) // where live delivery continues
			}
		default:
			return recs, rc, fmt.Errorf("control %v", m)
		}
	}
	return recs, rc, nil
}

// Offsets the broker never returns (transaction markers: Prev jumps over
// them) are not gaps, in replay or live; only a cursor before a real loss
// is stale.
func TestTransactionMarkersAreNotGaps(t *testing.T) {
	th := newTestHub(t, Config{}, replay.MemoryConfig{PerPartition: 5})
	th.publish(0, 0, 5) // 0..4
	th.publish(0, 8, 5) // 8..12, Prev of 8 is 4: 5..7 are markers
	c := th.dial(t)     // memory now holds 8..12
	c.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": "4"}})
	recs, ctrl := c.readUntil(isType("replay_complete"))
	checkExact(t, recs, map[int32][]int64{0: seq(8, 12)})
	if len(ctrl) != 1 {
		t.Fatalf("controls %v", ctrl)
	}
	th.publish(0, 20, 2) // 13..19 are markers too
	live, ctrl := c.readRecords(2)
	checkExact(t, live, map[int32][]int64{0: seq(20, 21)})
	if len(ctrl) != 0 {
		t.Fatalf("live controls %v", ctrl)
	}
	// A cursor before the last lost record is stale.
	c2 := th.dial(t)
	c2.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": "3"}})
	recs, ctrl = c2.readUntil(isType("replay_complete"))
	checkExact(t, recs, map[int32][]int64{0: {10, 11, 12, 20, 21}}) // memory keeps five
	st, g := ofType(ctrl, "cursor_stale"), ofType(ctrl, "gap")
	if len(st) != 1 || parseOffset(t, st[0]["oldest"]) != 10 || len(g) != 1 ||
		parseOffset(t, g[0]["fromOffset"]) != 4 || parseOffset(t, g[0]["toOffset"]) != 9 {
		t.Fatalf("controls %v", ctrl)
	}
}

// A consumer re-delivering records after a restart changes nothing for
// clients: every offset once.
func TestRedeliveryIsIdempotent(t *testing.T) {
	th := newTestHub(t, Config{}, replay.MemoryConfig{})
	c := th.dial(t)
	c.send(map[string]any{"type": "resume", "from": "latest"})
	c.readUntil(isType("replay_complete"))
	th.publish(0, 0, 10)
	delete(th.prev, 0)
	th.publish(0, 5, 10) // 5..9 again, then 10..14
	recs, ctrl := c.readRecords(15)
	checkExact(t, recs, map[int32][]int64{0: seq(0, 14)})
	if len(ctrl) != 0 {
		t.Fatalf("controls %v", ctrl)
	}
	if h := th.Heads()[0]; h != 14 {
		t.Fatalf("head %d", h)
	}
}

// After the admin clears the store, and Kafka (here: retaining what memory
// does) no longer holds the records either, a client behind is told its
// cursor is stale, with a gap, then continues live.
func TestAfterStoreClear(t *testing.T) {
	th := newTestHub(t, Config{}, replay.MemoryConfig{})
	th.publish(0, 0, 10)
	_ = th.mem.Clear(t.Context())
	c := th.dial(t)
	c.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": "4"}})
	recs, ctrl := c.readUntil(isType("replay_complete"))
	st, g := ofType(ctrl, "cursor_stale"), ofType(ctrl, "gap")
	if len(recs) != 0 || len(st) != 1 || parseOffset(t, st[0]["oldest"]) != 10 ||
		len(g) != 1 || parseOffset(t, g[0]["fromOffset"]) != 5 || parseOffset(t, g[0]["toOffset"]) != 9 {
		t.Fatalf("%d records, controls %v", len(recs), ctrl)
	}
	th.publish(0, 10, 2)
	live, _ := c.readRecords(2)
	checkExact(t, live, map[int32][]int64{0: seq(10, 11)})
}
