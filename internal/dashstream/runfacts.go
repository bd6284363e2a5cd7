package dashstream

import "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"

// RunFacts is what the run index needs from a record (docs/PROTOCOL.md
// §3.9), read once where the record is decoded.
//
// GraphName is the graph_name attribute of a GRAPH_START event the record
// carries (in an EventBatch, the first inner GRAPH_START's); "" otherwise.
//
// FullState reports that the record restates a run's whole state, so that a
// reader can start there (docs/PROTOCOL.md §3.8, "Join at the last full
// state"): a Checkpoint, a StateDiff with full_state, or a GRAPH_START event
// carrying initial_state_json — in an EventBatch such an inner event, the
// full state of that event's thread.
func (d *Decoded) RunFacts() (graphName string, fullState bool) {
	switch b := d.Message.GetMessage().(type) {
	case *dashstreampb.DashStreamMessage_Checkpoint:
		return "", true
	case *dashstreampb.DashStreamMessage_StateDiff:
		return "", len(b.StateDiff.GetFullState()) > 0
	case *dashstreampb.DashStreamMessage_Event:
		return graphStart(b.Event)
	case *dashstreampb.DashStreamMessage_EventBatch:
		for _, ev := range b.EventBatch.GetEvents() {
			if name, full := graphStart(ev); name != "" || full {
				return name, full
			}
		}
	}
	return "", false
}

// graphStart returns the graph name of a GRAPH_START event and whether it
// carries the initial state; nothing for any other event.
func graphStart(ev *dashstreampb.Event) (graphName string, fullState bool) {
	if ev.GetEventType() != dashstreampb.EventType_EVENT_TYPE_GRAPH_START {
		return "", false
	}
	attrs := ev.GetAttributes()
	_, full := attrs["initial_state_json"]
	return attrs["graph_name"].GetStringValue(), full
}
