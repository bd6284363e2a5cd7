package hub

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// TestJoinFullStateAfterHeads: a join reads the heads, then (once it holds
// a replay slot) the run index. A thread whose newest full-state record was
// published in between is past the heads, so it is not replayed; the
// records it published between the heads and that full state are not sent
// live either, so the first record the client gets of the thread is still
// a full state (docs/PROTOCOL.md §3.8). The slot is held by the test to
// open that window deterministically.
func TestJoinFullStateAfterHeads(t *testing.T) {
	start := dashstreampb.EventType_EVENT_TYPE_GRAPH_START
	node := dashstreampb.EventType_EVENT_TYPE_NODE_START
	for _, v2 := range []bool{true, false} {
		th := newTestHub(t, Config{ReplaySlots: 1, LatestJoin: "checkpoint"}, replay.MemoryConfig{})
		th.publishMsgs(t, 0, 0,
			msgSpec{thread: "r1", seq: 1, etype: start, full: true}, // 0: r1's older full state
			msgSpec{thread: "r1", seq: 2, etype: node})              // 1
		th.replaySlots <- struct{}{} // the only slot: the resume waits after reading the heads
		var c *client
		resume := map[string]any{"type": "resume", "from": "latest"}
		if v2 {
			c = th.dialV2(t, "", "dashstream.v2")
			resume["join"] = "checkpoint"
		} else {
			c = th.dial(t)
		}
		before := testutil.ToFloat64(th.m.ResumeRequests.WithLabelValues("latest"))
		c.send(resume)
		waitFor(t, 5*time.Second, "the resume", func() bool {
			return testutil.ToFloat64(th.m.ResumeRequests.WithLabelValues("latest")) > before
		})
		time.Sleep(200 * time.Millisecond) // past its heads (read right after the count), into the slot wait
		th.publishMsgs(t, 0, 2,
			msgSpec{thread: "r1", seq: 3, etype: node},                   // 2: after the heads, before the full state
			msgSpec{thread: "r1", seq: 4, typ: "state_diff", full: true}, // 3: r1's newest full state
			msgSpec{thread: "r1", seq: 5, typ: "state_diff"},             // 4
			msgSpec{thread: "other", seq: 1, etype: node})                // 5: a thread not being joined
		<-th.replaySlots
		got, rc := readFiltered(c, v2)
		if len(got) != 0 || rc["lastOffsetsByPartition"].(map[string]any)["0"] != "1" {
			t.Fatalf("v2 %v: joined %v, replay_complete %v; want nothing up to heads 1", v2, got, rc)
		}
		if live := readLive(c, v2, 3, 200*time.Millisecond); !mapsEqual(live, map[int32][]int64{0: {3, 4, 5}}) {
			t.Fatalf("v2 %v: live %v, want r1 from its full state (3) on and the other thread", v2, live)
		}
	}
}
