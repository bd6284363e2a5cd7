package client_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/hub/hubtest"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/pkg/client"
)

// publishMessages publishes msgs as partition p from offset from (see
// records).
func publishMessages(t *testing.T, gw *hubtest.Server, p int32, from int64, msgs ...*pb.DashStreamMessage) {
	t.Helper()
	recs, err := records(msgs...)
	if err != nil {
		t.Fatal(err)
	}
	gw.PublishRecords(p, from, recs)
}

// records encodes msgs (zstd frames) as records carrying the facts the
// Kafka consumer computes once per record (threads, tenant, type, event
// types, run facts).
func records(msgs ...*pb.DashStreamMessage) ([]*replay.Record, error) {
	dec := dashstream.NewDecoder(dashstream.DecoderConfig{})
	recs := make([]*replay.Record, len(msgs))
	for i, m := range msgs {
		v, err := dashstream.Encode(m, dashstream.FramingZstd)
		if err != nil {
			return nil, err
		}
		d, err := dec.Decode(v)
		if err != nil {
			return nil, err
		}
		r := &replay.Record{Value: v, Tenant: d.Tenant(), Type: uint8(d.Type()), EventTypes: d.EventTypes()}
		r.GraphName, r.FullState = d.RunFacts()
		for _, h := range d.Headers {
			r.Threads = append(r.Threads, replay.ThreadSeq{Thread: h.ThreadID, Sequence: h.Sequence})
		}
		if len(d.Headers) > 0 {
			r.TimestampUs = d.Headers[0].TimestampUs
		}
		recs[i] = r
	}
	return recs, nil
}

func ev(thread string, seq uint64, typ pb.EventType) *pb.Event {
	return &pb.Event{Header: &pb.Header{ThreadId: thread, Sequence: seq, Type: pb.MessageType_MESSAGE_TYPE_EVENT}, EventType: typ}
}

// TestJoinCheckpoint: a client joining from latest with join "checkpoint"
// first gets each active run from its latest full-state record (not a run
// that ended, not what came before), then live records.
func TestJoinCheckpoint(t *testing.T) {
	gw := testGateway(t, nil)
	now := uint64(time.Now().UnixMicro())
	stamp := func(m *pb.DashStreamMessage) *pb.DashStreamMessage {
		if e := m.GetEvent(); e != nil {
			e.Header.TimestampUs = int64(now)
		}
		if d := m.GetStateDiff(); d != nil {
			d.Header.TimestampUs = int64(now)
		}
		return m
	}
	event := func(thread string, seq uint64, typ pb.EventType) *pb.DashStreamMessage {
		return stamp(&pb.DashStreamMessage{Message: &pb.DashStreamMessage_Event{Event: ev(thread, seq, typ)}})
	}
	diff := func(thread string, seq uint64, full bool) *pb.DashStreamMessage {
		d := &pb.StateDiff{Header: &pb.Header{ThreadId: thread, Sequence: seq, Type: pb.MessageType_MESSAGE_TYPE_STATE_DIFF}}
		if full {
			d.FullState = []byte(`{"step":` + strconv.FormatUint(seq, 10) + `}`)
		}
		return stamp(&pb.DashStreamMessage{Message: &pb.DashStreamMessage_StateDiff{StateDiff: d}})
	}
	start := event("run-1", 1, pb.EventType_EVENT_TYPE_GRAPH_START)
	start.GetEvent().Attributes = map[string]*pb.AttributeValue{"initial_state_json": {Value: &pb.AttributeValue_StringValue{StringValue: "{}"}}}
	publishMessages(t, gw, 0, 0,
		start, // 0: run-1's first full state
		event("run-1", 2, pb.EventType_EVENT_TYPE_NODE_START),  // 1
		diff("run-1", 3, true),                                 // 2: run-1's latest full state
		event("run-2", 1, pb.EventType_EVENT_TYPE_GRAPH_START), // 3: run-2 ends below
		event("run-1", 4, pb.EventType_EVENT_TYPE_NODE_END),    // 4
		event("run-2", 2, pb.EventType_EVENT_TYPE_GRAPH_END),   // 5
		diff("run-1", 5, false),                                // 6
	)
	var controls []string
	c := dial(t, gw.URL, client.Options{Join: client.JoinCheckpoint, V2: true,
		OnControl: func(ctl client.Control) { controls = append(controls, ctl.Type) }})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []int64
	for len(got) < 3 {
		r, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, r.Offset)
	}
	if !slices.Equal(got, []int64{2, 4, 6}) {
		t.Fatalf("join replayed %v, want run-1 from its latest full state: [2 4 6]", got)
	}
	publishMessages(t, gw, 0, 7, event("run-1", 6, pb.EventType_EVENT_TYPE_NODE_START))
	if r, err := c.Next(ctx); err != nil || r.Offset != 7 {
		t.Fatalf("live after the join: %+v %v", r, err)
	}
	if !slices.Contains(controls, "replay_complete") {
		t.Fatalf("controls %v", controls)
	}
}

// workload is a run of three threads: events, state diffs and a batch that
// spans two of them, in one partition.
func workload(n int) []*pb.DashStreamMessage {
	threads := []string{"run-a", "run-b", "run-c"}
	var out []*pb.DashStreamMessage
	for i := range n {
		th := threads[i%3]
		switch i % 5 {
		case 0, 1, 2:
			out = append(out, &pb.DashStreamMessage{Message: &pb.DashStreamMessage_Event{Event: ev(th, uint64(i+1), pb.EventType_EVENT_TYPE_NODE_START+pb.EventType(i%2))}})
		case 3:
			out = append(out, &pb.DashStreamMessage{Message: &pb.DashStreamMessage_StateDiff{StateDiff: &pb.StateDiff{
				Header: &pb.Header{ThreadId: th, Sequence: uint64(i + 1), Type: pb.MessageType_MESSAGE_TYPE_STATE_DIFF}, FullState: []byte(`{"i":1}`)}}})
		case 4:
			out = append(out, &pb.DashStreamMessage{Message: &pb.DashStreamMessage_EventBatch{EventBatch: &pb.EventBatch{
				Header: &pb.Header{ThreadId: th, Type: pb.MessageType_MESSAGE_TYPE_EVENT_BATCH},
				Events: []*pb.Event{ev(threads[(i+1)%3], uint64(i+1), pb.EventType_EVENT_TYPE_TOOL_END), ev(threads[(i+2)%3], uint64(i+1), pb.EventType_EVENT_TYPE_LLM_END)}}}})
		}
	}
	return out
}

// matchesThread: a record is of thread th when its body header or any inner
// event of a batch names th (written out independently of the filter
// package).
func matchesThread(m *pb.DashStreamMessage, th string) bool {
	if b := m.GetEventBatch(); b != nil {
		return slices.ContainsFunc(b.GetEvents(), func(e *pb.Event) bool { return e.GetHeader().GetThreadId() == th })
	}
	switch {
	case m.GetEvent() != nil:
		return m.GetEvent().GetHeader().GetThreadId() == th
	case m.GetStateDiff() != nil:
		return m.GetStateDiff().GetHeader().GetThreadId() == th
	}
	return false
}

// TestFilterExactV1V2JSON: a client following one thread receives exactly
// that thread's records (batches naming it included), in order, over v1,
// v2 binary and v2 JSON, across a cut and reconnect in the middle.
func TestFilterExactV1V2JSON(t *testing.T) {
	gw := testGateway(t, nil)
	msgs := workload(90)
	publishMessages(t, gw, 0, 0, msgs[:45]...)
	var want []int64
	for i, m := range msgs {
		if matchesThread(m, "run-b") {
			want = append(want, int64(i))
		}
	}
	px := hubtest.NewProxy(t, gw.Addr())
	published := false
	for _, mode := range []struct {
		name     string
		v2, json bool
	}{{"v1", false, false}, {"v2", true, false}, {"v2 json", true, true}} {
		t.Run(mode.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c := dial(t, px.URL(), client.Options{From: client.FromEarliest, V2: mode.v2, JSON: mode.json,
				Filter: client.Filter{Threads: []string{"run-b"}}, MinBackoff: time.Millisecond})
			if c.V2() != mode.v2 {
				t.Fatalf("V2() = %v", c.V2())
			}
			var got []int64
			for len(got) < len(want) {
				if len(got) == len(want)/3 {
					px.Cut()
					if !published {
						publishMessages(t, gw, 0, 45, msgs[45:]...)
						published = true
					}
				}
				r, err := c.Next(ctx)
				if err != nil {
					t.Fatalf("after %v: %v", got, err)
				}
				got = append(got, r.Offset)
				checkPayload(t, r, msgs[r.Offset], mode.json)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("offsets\n got %v\nwant %v", got, want)
			}
			short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancelShort()
			if r, err := c.Next(short); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("one more record (%+v) or error %v after the thread's last", r, err)
			}
		})
	}
}

func checkPayload(t *testing.T, r client.Record, want *pb.DashStreamMessage, asJSON bool) {
	t.Helper()
	got := new(pb.DashStreamMessage)
	if asJSON {
		if r.Value != nil || protojson.Unmarshal(r.JSON, got) != nil {
			t.Fatalf("p%d@%d: JSON record %q (value %d bytes)", r.Partition, r.Offset, r.JSON, len(r.Value))
		}
	} else {
		d, err := dashstream.NewDecoder(dashstream.DecoderConfig{}).Decode(r.Value)
		if err != nil || r.JSON != nil {
			t.Fatalf("p%d@%d: %v", r.Partition, r.Offset, err)
		}
		got = d.Message
	}
	if !proto.Equal(got, want) {
		t.Fatalf("p%d@%d: message %v, want %v", r.Partition, r.Offset, got, want)
	}
}
