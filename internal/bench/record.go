package bench

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// recordBuilder encodes valid DashStream records (a NODE_PROGRESS event,
// plain framing) of about a target size: a "pad" attribute makes up the
// difference.
type recordBuilder struct {
	pad string
}

// newRecordBuilder sizes the pad so that a record is size bytes (±2: the
// sequence varint grows over a run).
func newRecordBuilder(size int) (*recordBuilder, error) {
	b := &recordBuilder{}
	for range 4 { // the pad's own length prefix may change by a byte or two
		v, err := b.build(threadID(0, 0), 1, time.Now().UnixMicro())
		if err != nil {
			return nil, err
		}
		n := max(len(b.pad)+size-len(v), 0)
		if n == len(b.pad) {
			break
		}
		b.pad = strings.Repeat("x", n)
	}
	return b, nil
}

// threadID names a record's thread: "bench-t<t>" in a run with threads,
// else (t < 0) "bench-p<p>", one per partition. Both spellings have the
// same length for the same number of digits, so records stay the same size.
func threadID(p int32, t int) string {
	if t < 0 {
		return "bench-p" + strconv.Itoa(int(p))
	}
	return "bench-t" + strconv.Itoa(t)
}

// build encodes the record with sequence seq of thread and header timestamp
// ts (µs since the epoch).
func (b *recordBuilder) build(thread string, seq uint64, ts int64) ([]byte, error) {
	ev := &pb.Event{
		Header: &pb.Header{TimestampUs: ts, TenantId: "bench", ThreadId: thread,
			Sequence: seq, Type: pb.MessageType_MESSAGE_TYPE_EVENT, SchemaVersion: 1},
		EventType: pb.EventType_EVENT_TYPE_NODE_PROGRESS,
		NodeId:    "bench",
	}
	ev.Attributes = map[string]*pb.AttributeValue{"pad": {Value: &pb.AttributeValue_StringValue{StringValue: b.pad}}}
	v, err := dashstream.Encode(&pb.DashStreamMessage{Message: &pb.DashStreamMessage_Event{Event: ev}}, dashstream.FramingPlain)
	if err != nil {
		return nil, fmt.Errorf("bench: encode record: %w", err)
	}
	return v, nil
}

// Kinds of full-state records a run's thread carries (join benchmark).
const (
	fullNone       = iota // a NODE_PROGRESS event
	fullGraphStart        // GRAPH_START with initial_state_json: the run begins
	fullCheckpoint        // a Checkpoint: the run's whole state again
)

// buildFull encodes record seq of thread as the given kind, about the
// builder's size: the pad is the attribute, the initial state or the
// checkpoint's state.
func (b *recordBuilder) buildFull(thread string, seq uint64, ts int64, kind int) ([]byte, error) {
	if kind == fullNone {
		return b.build(thread, seq, ts)
	}
	h := &pb.Header{TimestampUs: ts, TenantId: "bench", ThreadId: thread, Sequence: seq, SchemaVersion: 1}
	var m *pb.DashStreamMessage
	if kind == fullGraphStart {
		h.Type = pb.MessageType_MESSAGE_TYPE_EVENT
		m = &pb.DashStreamMessage{Message: &pb.DashStreamMessage_Event{Event: &pb.Event{Header: h,
			EventType: pb.EventType_EVENT_TYPE_GRAPH_START, NodeId: "bench",
			Attributes: map[string]*pb.AttributeValue{
				"graph_name":         {Value: &pb.AttributeValue_StringValue{StringValue: "bench"}},
				"initial_state_json": {Value: &pb.AttributeValue_StringValue{StringValue: `{"pad":"` + b.pad + `"}`}},
			}}}}
	} else {
		h.Type = pb.MessageType_MESSAGE_TYPE_CHECKPOINT
		m = &pb.DashStreamMessage{Message: &pb.DashStreamMessage_Checkpoint{Checkpoint: &pb.Checkpoint{Header: h,
			CheckpointId: []byte(thread + "/" + strconv.FormatUint(seq, 10)), State: []byte(b.pad), StateType: "json"}}}
	}
	v, err := dashstream.Encode(m, dashstream.FramingPlain)
	if err != nil {
		return nil, fmt.Errorf("bench: encode record: %w", err)
	}
	return v, nil
}

// fullKind is the kind of record seq (from 1) of a run's thread when the
// runs carry full states every 'every' records (0: never).
func fullKind(seq uint64, every int) int {
	switch {
	case every <= 0:
		return fullNone
	case seq == 1:
		return fullGraphStart
	case seq%uint64(every) == 0:
		return fullCheckpoint
	}
	return fullNone
}

// headerTimestamp reads header.timestamp_us of a plain-framed record without
// decoding the message: envelope body (any oneof field 1..9) → header
// (field 1) → timestamp_us (field 2). It allocates nothing.
func headerTimestamp(v []byte) (int64, bool) {
	if len(v) == 0 || v[0] != 0x00 {
		return 0, false
	}
	body, ok := lenField(v[1:], 1, 9)
	if !ok {
		return 0, false
	}
	header, ok := lenField(body, 1, 1)
	if !ok {
		return 0, false
	}
	return varintField(header, 2)
}

// headerThread reads header.thread_id of a plain-framed record the same way
// (field 4 of the header), aliasing v.
func headerThread(v []byte) ([]byte, bool) {
	if len(v) == 0 || v[0] != 0x00 {
		return nil, false
	}
	body, ok := lenField(v[1:], 1, 9)
	if !ok {
		return nil, false
	}
	header, ok := lenField(body, 1, 1)
	if !ok {
		return nil, false
	}
	return lenField(header, 4, 4)
}

// lenField returns the first length-delimited field numbered lo..hi.
func lenField(b []byte, lo, hi protowire.Number) ([]byte, bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		if typ == protowire.BytesType && num >= lo && num <= hi {
			v, n := protowire.ConsumeBytes(b)
			return v, n >= 0
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return nil, false
		}
		b = b[n:]
	}
	return nil, false
}

func varintField(b []byte, want protowire.Number) (int64, bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, false
		}
		b = b[n:]
		if typ == protowire.VarintType && num == want {
			v, n := protowire.ConsumeVarint(b)
			return int64(v), n >= 0
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return 0, false
		}
		b = b[n:]
	}
	return 0, false
}
