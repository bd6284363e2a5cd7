package dashstream

import (
	"slices"
	"testing"

	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// TestDecodedFacts: Type is the oneof field number of every body, and
// EventTypes lines up with Headers, one per inner event of a batch.
func TestDecodedFacts(t *testing.T) {
	dec := NewDecoder(DecoderConfig{})
	wantType := map[string]pb.MessageType{
		"none": 0, "event": 1, "state_diff": 2, "token_chunk": 3, "tool_execution": 4,
		"checkpoint": 5, "metrics": 6, "error": 7, "event_batch": 8, "execution_trace": 9,
	}
	for name, msg := range sampleMessages() {
		t.Run(name, func(t *testing.T) {
			v, err := Encode(msg, FramingZstd)
			if err != nil {
				t.Fatal(err)
			}
			d, err := dec.Decode(v)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Type(); got != wantType[name] || got != wantType[d.MessageType()] {
				t.Errorf("Type() = %v, want %v", got, wantType[name])
			}
			var want []int32
			switch name {
			case "event":
				want = []int32{int32(pb.EventType_EVENT_TYPE_NODE_START)}
			case "event_batch":
				want = []int32{int32(pb.EventType_EVENT_TYPE_NODE_START), int32(pb.EventType_EVENT_TYPE_NODE_START)}
			}
			if got := d.EventTypes(); !slices.Equal(got, want) {
				t.Errorf("EventTypes() = %v, want %v", got, want)
			}
		})
	}
}

// TestBatchFactsSpanThreads: a batch over two threads and two event types
// keeps Headers[i] and EventTypes()[i] about the same inner event, also for
// an inner event without a header.
func TestBatchFactsSpanThreads(t *testing.T) {
	ev := func(thread string, typ pb.EventType) *pb.Event {
		e := &pb.Event{EventType: typ}
		if thread != "" {
			e.Header = &pb.Header{ThreadId: thread, Sequence: 3}
		}
		return e
	}
	msg := &pb.DashStreamMessage{Message: &pb.DashStreamMessage_EventBatch{EventBatch: &pb.EventBatch{Events: []*pb.Event{
		ev("a", pb.EventType_EVENT_TYPE_NODE_START), ev("", pb.EventType_EVENT_TYPE_LLM_END), ev("b", pb.EventType_EVENT_TYPE_GRAPH_END),
	}}}}
	v, err := Encode(msg, FramingPlain)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDecoder(DecoderConfig{}).Decode(v)
	if err != nil {
		t.Fatal(err)
	}
	threads := make([]string, len(d.Headers))
	for i, h := range d.Headers {
		threads[i] = h.ThreadID
	}
	if want := []string{"a", "", "b"}; !slices.Equal(threads, want) {
		t.Errorf("threads %q, want %q", threads, want)
	}
	if got, want := d.EventTypes(), []int32{10, 31, 2}; !slices.Equal(got, want) {
		t.Errorf("event types %v, want %v", got, want)
	}
}
