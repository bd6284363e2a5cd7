package dashstream

import (
	"testing"

	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

func TestRunFacts(t *testing.T) {
	str := func(s string) *pb.AttributeValue {
		return &pb.AttributeValue{Value: &pb.AttributeValue_StringValue{StringValue: s}}
	}
	start := func(attrs map[string]*pb.AttributeValue) *pb.Event {
		return &pb.Event{Header: &pb.Header{ThreadId: "t"}, EventType: pb.EventType_EVENT_TYPE_GRAPH_START, Attributes: attrs}
	}
	event := func(ev *pb.Event) *pb.DashStreamMessage {
		return &pb.DashStreamMessage{Message: &pb.DashStreamMessage_Event{Event: ev}}
	}
	cases := []struct {
		name  string
		msg   *pb.DashStreamMessage
		graph string
		full  bool
	}{
		{"graph start with state", event(start(map[string]*pb.AttributeValue{"graph_name": str("planner"), "initial_state_json": str("{}")})), "planner", true},
		{"graph start without state", event(start(map[string]*pb.AttributeValue{"graph_name": str("planner")})), "planner", false},
		{"other event", event(&pb.Event{EventType: pb.EventType_EVENT_TYPE_NODE_START,
			Attributes: map[string]*pb.AttributeValue{"graph_name": str("x"), "initial_state_json": str("{}")}}), "", false},
		{"checkpoint", &pb.DashStreamMessage{Message: &pb.DashStreamMessage_Checkpoint{Checkpoint: &pb.Checkpoint{}}}, "", true},
		{"full state diff", &pb.DashStreamMessage{Message: &pb.DashStreamMessage_StateDiff{StateDiff: &pb.StateDiff{FullState: []byte("{}")}}}, "", true},
		{"partial state diff", &pb.DashStreamMessage{Message: &pb.DashStreamMessage_StateDiff{StateDiff: &pb.StateDiff{}}}, "", false},
		{"batch with a start", &pb.DashStreamMessage{Message: &pb.DashStreamMessage_EventBatch{EventBatch: &pb.EventBatch{Events: []*pb.Event{
			{EventType: pb.EventType_EVENT_TYPE_NODE_END},
			start(map[string]*pb.AttributeValue{"graph_name": str("coder"), "initial_state_json": str("{}")}),
		}}}}, "coder", true},
		{"token chunk", &pb.DashStreamMessage{Message: &pb.DashStreamMessage_TokenChunk{TokenChunk: &pb.TokenChunk{}}}, "", false},
		{"no body", &pb.DashStreamMessage{}, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			graph, full := (&Decoded{Message: tc.msg}).RunFacts()
			if graph != tc.graph || full != tc.full {
				t.Fatalf("RunFacts = %q, %v; want %q, %v", graph, full, tc.graph, tc.full)
			}
		})
	}
}
