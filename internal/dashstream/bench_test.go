package dashstream

import (
	"strings"
	"testing"

	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// typicalEvent is a ~500-byte NODE_END event, the most common record.
func typicalEvent() *pb.DashStreamMessage {
	ev := sampleEvent(42)
	ev.EventType = pb.EventType_EVENT_TYPE_NODE_END
	ev.Attributes["state_json"] = &pb.AttributeValue{Value: &pb.AttributeValue_StringValue{
		StringValue: `{"messages":[{"role":"assistant","content":"` + strings.Repeat("lorem ipsum ", 25) + `"}]}`}}
	return &pb.DashStreamMessage{Message: &pb.DashStreamMessage_Event{Event: ev}}
}

func BenchmarkDecode(b *testing.B) {
	msg := typicalEvent()
	for _, f := range []Framing{FramingPlain, FramingZstd} {
		value := mustEncode(b, msg, f)
		b.Run(f.String(), func(b *testing.B) {
			dec := NewDecoder(DecoderConfig{})
			b.ReportAllocs()
			b.SetBytes(int64(len(value)))
			b.ReportMetric(float64(len(value)), "value_bytes")
			for b.Loop() {
				if _, err := dec.Decode(value); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
