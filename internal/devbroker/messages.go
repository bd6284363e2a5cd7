package devbroker

import (
	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// Builders for message bodies. Headers carry only their type here; the
// workload stamps ids, time and sequence when the message is emitted.

type attrs = map[string]*pb.AttributeValue

func strAttr(s string) *pb.AttributeValue {
	return &pb.AttributeValue{Value: &pb.AttributeValue_StringValue{StringValue: s}}
}

func intAttr(i int64) *pb.AttributeValue {
	return &pb.AttributeValue{Value: &pb.AttributeValue_IntValue{IntValue: i}}
}

func floatAttr(f float64) *pb.AttributeValue {
	return &pb.AttributeValue{Value: &pb.AttributeValue_FloatValue{FloatValue: f}}
}

func boolAttr(b bool) *pb.AttributeValue {
	return &pb.AttributeValue{Value: &pb.AttributeValue_BoolValue{BoolValue: b}}
}

func header(t pb.MessageType) *pb.Header { return &pb.Header{Type: t} }

func newEvent(t pb.EventType, node string, a attrs) *pb.Event {
	return &pb.Event{Header: header(pb.MessageType_MESSAGE_TYPE_EVENT), EventType: t, NodeId: node, Attributes: a}
}

func eventMsg(t pb.EventType, node string, a attrs) *pb.DashStreamMessage {
	return wrapEvent(newEvent(t, node, a))
}

func wrapEvent(e *pb.Event) *pb.DashStreamMessage {
	return &pb.DashStreamMessage{Message: &pb.DashStreamMessage_Event{Event: e}}
}

func batchMsg(events []*pb.Event) *pb.DashStreamMessage {
	b := &pb.EventBatch{Header: header(pb.MessageType_MESSAGE_TYPE_EVENT_BATCH), Events: events}
	return &pb.DashStreamMessage{Message: &pb.DashStreamMessage_EventBatch{EventBatch: b}}
}

func diffMsg(d *pb.StateDiff) *pb.DashStreamMessage {
	d.Header = header(pb.MessageType_MESSAGE_TYPE_STATE_DIFF)
	return &pb.DashStreamMessage{Message: &pb.DashStreamMessage_StateDiff{StateDiff: d}}
}

func tokenMsg(c *pb.TokenChunk) *pb.DashStreamMessage {
	c.Header = header(pb.MessageType_MESSAGE_TYPE_TOKEN_CHUNK)
	return &pb.DashStreamMessage{Message: &pb.DashStreamMessage_TokenChunk{TokenChunk: c}}
}

func toolMsg(t *pb.ToolExecution) *pb.DashStreamMessage {
	t.Header = header(pb.MessageType_MESSAGE_TYPE_TOOL_EXECUTION)
	return &pb.DashStreamMessage{Message: &pb.DashStreamMessage_ToolExecution{ToolExecution: t}}
}

func checkpointMsg(c *pb.Checkpoint) *pb.DashStreamMessage {
	c.Header = header(pb.MessageType_MESSAGE_TYPE_CHECKPOINT)
	return &pb.DashStreamMessage{Message: &pb.DashStreamMessage_Checkpoint{Checkpoint: c}}
}

func metricsMsg(m *pb.Metrics) *pb.DashStreamMessage {
	m.Header = header(pb.MessageType_MESSAGE_TYPE_METRICS)
	return &pb.DashStreamMessage{Message: &pb.DashStreamMessage_Metrics{Metrics: m}}
}

func errorMsg(e *pb.Error) *pb.DashStreamMessage {
	e.Header = header(pb.MessageType_MESSAGE_TYPE_ERROR)
	return &pb.DashStreamMessage{Message: &pb.DashStreamMessage_Error{Error: e}}
}

func floatMetric(v float64, unit string, t pb.MetricType) *pb.MetricValue {
	return &pb.MetricValue{Value: &pb.MetricValue_FloatValue{FloatValue: v}, Unit: unit, Type: t}
}

func intMetric(v int64, unit string, t pb.MetricType) *pb.MetricValue {
	return &pb.MetricValue{Value: &pb.MetricValue_IntValue{IntValue: v}, Unit: unit, Type: t}
}

// diffOp builds a DiffOperation with op and encoding always present, even
// when they are 0 (ADD, JSON): the reference dashboard needs them on the
// wire.
func diffOp(op pb.DiffOperation_OpType, path string, value []byte) *pb.DiffOperation {
	return &pb.DiffOperation{
		Op:       op.Enum(),
		Path:     path,
		Value:    value,
		Encoding: pb.DiffOperation_VALUE_ENCODING_JSON.Enum(),
	}
}

// headersOf lists the headers a message carries, in the order they are
// stamped: the body header, then for a batch every inner event's.
func headersOf(m *pb.DashStreamMessage) []*pb.Header {
	switch b := m.GetMessage().(type) {
	case *pb.DashStreamMessage_Event:
		return []*pb.Header{b.Event.GetHeader()}
	case *pb.DashStreamMessage_EventBatch:
		hs := []*pb.Header{b.EventBatch.GetHeader()}
		for _, e := range b.EventBatch.GetEvents() {
			hs = append(hs, e.GetHeader())
		}
		return hs
	case *pb.DashStreamMessage_StateDiff:
		return []*pb.Header{b.StateDiff.GetHeader()}
	case *pb.DashStreamMessage_TokenChunk:
		return []*pb.Header{b.TokenChunk.GetHeader()}
	case *pb.DashStreamMessage_ToolExecution:
		return []*pb.Header{b.ToolExecution.GetHeader()}
	case *pb.DashStreamMessage_Checkpoint:
		return []*pb.Header{b.Checkpoint.GetHeader()}
	case *pb.DashStreamMessage_Metrics:
		return []*pb.Header{b.Metrics.GetHeader()}
	case *pb.DashStreamMessage_Error:
		return []*pb.Header{b.Error.GetHeader()}
	}
	return nil
}
