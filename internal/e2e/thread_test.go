package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// threadSeq is one (thread, sequence) of a record.
type threadSeq struct {
	thread string
	seq    uint64
}

// threadValue is an Event for one pair, an EventBatch (header sequence
// 0) holding one event per pair otherwise.
func threadValue(t testing.TB, ts []threadSeq) []byte {
	t.Helper()
	ev := func(x threadSeq) *dashstreampb.Event {
		return &dashstreampb.Event{Header: &dashstreampb.Header{ThreadId: x.thread, Sequence: x.seq,
			TimestampUs: time.Now().UnixMicro(), Type: dashstreampb.MessageType_MESSAGE_TYPE_EVENT, TenantId: "test"},
			EventType: dashstreampb.EventType_EVENT_TYPE_NODE_END, NodeId: "n"}
	}
	msg := &dashstreampb.DashStreamMessage{}
	if len(ts) == 1 {
		msg.Message = &dashstreampb.DashStreamMessage_Event{Event: ev(ts[0])}
	} else {
		b := &dashstreampb.EventBatch{Header: &dashstreampb.Header{ThreadId: ts[0].thread,
			TimestampUs: time.Now().UnixMicro(), Type: dashstreampb.MessageType_MESSAGE_TYPE_EVENT_BATCH, TenantId: "test"}}
		for _, x := range ts {
			b.Events = append(b.Events, ev(x))
		}
		msg.Message = &dashstreampb.DashStreamMessage_EventBatch{EventBatch: b}
	}
	v, err := dashstream.Encode(msg, dashstream.FramingPlain)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestCoreThreadResume: thread-mode resumes (lastSequencesByThread alone;
// threadId + numeric lastSequence; mode:"thread" overriding a listed
// partition cursor) replay only the retained records holding an event of a
// listed thread with a newer sequence — an EventBatch whole, when one of its
// events qualifies — per partition in offset order, then exactly one
// replay_complete{mode:"thread"}; afterwards live delivery continues with
// every new record (of any thread), no duplicate, no hole.
func TestCoreThreadResume(t *testing.T) {
	k, topic := kafkaEnv(t, 2)
	env := gatewayEnv(k, topic)
	env["WEBSOCKET_RESUME_WAIT_MS"] = "10000" // the resumes below are sent after the upgrade
	g := startGateway(t, env)

	type rec struct {
		p  int32
		ts []threadSeq
		o  int64
	}
	var recs []*rec
	produce := func(p int32, ts ...[]threadSeq) {
		t.Helper()
		vals := make([][]byte, len(ts))
		for i, x := range ts {
			vals[i] = threadValue(t, x)
		}
		for i, o := range produceRaw(t, k, topic, p, vals...) {
			recs = append(recs, &rec{p: p, ts: ts[i], o: o})
		}
	}
	one := func(th string, seq uint64) []threadSeq { return []threadSeq{{th, seq}} }
	produce(0, one("ta", 1), one("tb", 1), one("ta", 2), one("tb", 2), one("ta", 3),
		[]threadSeq{{"ta", 4}, {"tc", 1}}, one("tb", 3), one("ta", 5))
	produce(1, one("tc", 2), one("tc", 3), []threadSeq{{"tb", 4}, {"tc", 4}}, one("tc", 5), one("ta", 6), one("td", 1))
	heads := map[int32]int64{}
	for _, r := range recs {
		heads[r.p] = max(heads[r.p], r.o)
	}
	waitHeads(t, g, heads, 30*time.Second)

	// expect lists, per partition, the offsets a thread resume must replay.
	expect := func(last map[string]uint64) map[int32][]int64 {
		out := map[int32][]int64{0: nil, 1: nil}
		for _, r := range recs {
			if slices.ContainsFunc(r.ts, func(x threadSeq) bool { l, ok := last[x.thread]; return ok && x.seq > l }) {
				out[r.p] = append(out[r.p], r.o)
			}
		}
		return out
	}
	dial := func(frame any) *wsclient.Conn {
		t.Helper()
		c := g.dial(nil)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Send(ctx, frame); err != nil {
			t.Fatal(err)
		}
		return c
	}
	cases := []struct {
		name  string
		frame any
		want  map[int32][]int64
	}{
		{"lastSequencesByThread", &wsclient.Resume{Threads: map[string]uint64{"ta": 3, "tc": 3}},
			expect(map[string]uint64{"ta": 3, "tc": 3})},
		{"threadId+lastSequence", map[string]any{"type": "resume", "threadId": "tb", "lastSequence": 2},
			expect(map[string]uint64{"tb": 2})},
		{"mode thread wins over a cursor", map[string]any{"type": "resume", "mode": "thread",
			"lastOffsetsByPartition": map[string]string{"0": "0"}, "lastSequencesByThread": map[string]string{"ta": "5"}},
			expect(map[string]uint64{"ta": 5})},
	}
	streams := make([]stream, len(cases))
	conns := make([]*wsclient.Conn, len(cases))
	for i, tc := range cases {
		conns[i] = dial(tc.frame)
		s := &streams[i]
		readMore(t, conns[i], s, 20*time.Second, tc.name, untilControl("replay_complete", 1))
		rc := replayCompleteOf(t, s)
		total := len(tc.want[0]) + len(tc.want[1])
		if rc.Mode != "thread" || rc.TotalReplayed != total || s.recordsBefore("replay_complete") != total {
			t.Errorf("%s: replay_complete %+v after %d records; want mode thread, totalReplayed %d", tc.name, rc, s.recordsBefore("replay_complete"), total)
		}
		if total == 0 {
			t.Fatalf("%s: the case replays nothing; it proves nothing", tc.name)
		}
	}

	// Live: records of every thread, listed or not, reach every client.
	before := len(recs)
	produce(0, one("tb", 5), one("tz", 1))
	produce(1, one("ta", 7))
	live := map[int32][]int64{}
	for _, r := range recs[before:] {
		live[r.p] = append(live[r.p], r.o)
	}
	final := lastOf(live)
	for i, tc := range cases {
		s := &streams[i]
		readMore(t, conns[i], s, 20*time.Second, tc.name+" live", func(s *stream) bool { return s.reachedAll(final) })
		want := map[int32][]int64{}
		for p := int32(0); p < 2; p++ {
			want[p] = append(slices.Clone(tc.want[p]), live[p]...)
		}
		assertOffsets(t, tc.name, s.records(), want)
		for _, c := range s.controls("") {
			if c.Type != "replay_complete" {
				t.Errorf("%s: unexpected control frame %s", tc.name, c.Raw)
			}
		}
	}
	m := scrape(t, g)
	if v, _ := sampleValue(m, "websocket_resume_requests_total", map[string]string{"mode": "thread"}); v != 3 {
		t.Errorf("websocket_resume_requests_total{mode=thread} = %v, want 3", v)
	}
}
