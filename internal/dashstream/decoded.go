package dashstream

import (
	"cmp"

	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// Decoded is a successfully decoded record value.
type Decoded struct {
	Framing Framing
	Message *dashstreampb.DashStreamMessage
	// Headers are the (thread, sequence, timestamp) triples to index: the
	// body header, or for an EventBatch one per inner event in wire order
	// (the batch envelope's own header is not included).
	Headers []HeaderRef
}

// MessageType returns the name of the envelope's oneof field that is set
// ("event", "state_diff", ..., "execution_trace"), or "none".
func (d *Decoded) MessageType() string {
	return messageTypeName(d.Message)
}

// Header returns the top-level body header (for a batch, the batch envelope
// header), or nil when the message has no body or the body no header.
func (d *Decoded) Header() *dashstreampb.Header {
	return bodyHeader(d.Message)
}

// envelopeOneof is the descriptor of DashStreamMessage's body oneof.
var envelopeOneof = (&dashstreampb.DashStreamMessage{}).ProtoReflect().Descriptor().Oneofs().ByName("message")

func messageTypeName(m *dashstreampb.DashStreamMessage) string {
	fd := m.ProtoReflect().WhichOneof(envelopeOneof)
	if fd == nil {
		return "none"
	}
	return string(fd.Name())
}

// bodyHeader avoids reflection: it runs for every record.
func bodyHeader(m *dashstreampb.DashStreamMessage) *dashstreampb.Header {
	switch b := m.GetMessage().(type) {
	case *dashstreampb.DashStreamMessage_Event:
		return b.Event.GetHeader()
	case *dashstreampb.DashStreamMessage_StateDiff:
		return b.StateDiff.GetHeader()
	case *dashstreampb.DashStreamMessage_TokenChunk:
		return b.TokenChunk.GetHeader()
	case *dashstreampb.DashStreamMessage_ToolExecution:
		return b.ToolExecution.GetHeader()
	case *dashstreampb.DashStreamMessage_Checkpoint:
		return b.Checkpoint.GetHeader()
	case *dashstreampb.DashStreamMessage_Metrics:
		return b.Metrics.GetHeader()
	case *dashstreampb.DashStreamMessage_Error:
		return b.Error.GetHeader()
	case *dashstreampb.DashStreamMessage_EventBatch:
		return b.EventBatch.GetHeader()
	case *dashstreampb.DashStreamMessage_ExecutionTrace:
		return b.ExecutionTrace.GetHeader()
	}
	return nil
}

// Tenant is the tenant_id the record belongs to: its body header's, or for
// an EventBatch the one tenant its envelope and every inner event name (an
// inner event without one inherits the envelope's). "" when none is named
// or a batch names several: such a record belongs to no single tenant, and
// is not delivered to tenant-restricted clients.
func (d *Decoded) Tenant() string {
	tenant := d.Header().GetTenantId()
	batch := d.Message.GetEventBatch()
	if batch == nil {
		return tenant
	}
	envelope := tenant
	for _, ev := range batch.GetEvents() {
		t := cmp.Or(ev.GetHeader().GetTenantId(), envelope)
		switch {
		case t == "":
			return ""
		case tenant == "":
			tenant = t
		case t != tenant:
			return ""
		}
	}
	return tenant
}

// Type is the envelope's body as a MessageType: the oneof field number
// (1 event … 9 execution_trace), MESSAGE_TYPE_UNSPECIFIED when no body is
// set. It reads the oneof wrapper's Go type, no reflection: it runs for every
// record.
func (d *Decoded) Type() dashstreampb.MessageType {
	switch d.Message.GetMessage().(type) {
	case *dashstreampb.DashStreamMessage_Event:
		return dashstreampb.MessageType_MESSAGE_TYPE_EVENT
	case *dashstreampb.DashStreamMessage_StateDiff:
		return dashstreampb.MessageType_MESSAGE_TYPE_STATE_DIFF
	case *dashstreampb.DashStreamMessage_TokenChunk:
		return dashstreampb.MessageType_MESSAGE_TYPE_TOKEN_CHUNK
	case *dashstreampb.DashStreamMessage_ToolExecution:
		return dashstreampb.MessageType_MESSAGE_TYPE_TOOL_EXECUTION
	case *dashstreampb.DashStreamMessage_Checkpoint:
		return dashstreampb.MessageType_MESSAGE_TYPE_CHECKPOINT
	case *dashstreampb.DashStreamMessage_Metrics:
		return dashstreampb.MessageType_MESSAGE_TYPE_METRICS
	case *dashstreampb.DashStreamMessage_Error:
		return dashstreampb.MessageType_MESSAGE_TYPE_ERROR
	case *dashstreampb.DashStreamMessage_EventBatch:
		return dashstreampb.MessageType_MESSAGE_TYPE_EVENT_BATCH
	case *dashstreampb.DashStreamMessage_ExecutionTrace:
		return dashstreampb.MessageType_MESSAGE_TYPE_EXECUTION_TRACE
	}
	return dashstreampb.MessageType_MESSAGE_TYPE_UNSPECIFIED
}

// EventTypes lists the EventType values a subscription filter matches on:
// the event's own for an Event; for an EventBatch one per inner event in wire
// order, lined up with Headers (Headers[i] and EventTypes()[i] describe the
// same inner event); nil for every other body. It reads the decoded message:
// no second decode.
func (d *Decoded) EventTypes() []int32 {
	if ev := d.Message.GetEvent(); ev != nil {
		return []int32{int32(ev.GetEventType())}
	}
	batch := d.Message.GetEventBatch()
	if batch == nil {
		return nil
	}
	out := make([]int32, len(batch.GetEvents()))
	for i, ev := range batch.GetEvents() {
		out[i] = int32(ev.GetEventType())
	}
	return out
}
