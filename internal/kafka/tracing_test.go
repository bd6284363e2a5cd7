package kafka

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/dashflow/dashstream-gateway/internal/tracing"
)

// fetches builds one poll's result: per partition, n records of size bytes,
// the first traced of them carrying a traceparent header.
func fetches(topic string, parts, n, traced, size int) kgo.Fetches {
	ft := kgo.FetchTopic{Topic: topic}
	for p := range parts {
		fp := kgo.FetchPartition{Partition: int32(p)}
		for i := range n {
			r := &kgo.Record{Topic: topic, Partition: int32(p), Offset: int64(i), Value: make([]byte, size)}
			if i < traced {
				r.Headers = []kgo.RecordHeader{{Key: "Traceparent", Value: fmt.Appendf(nil, "00-%032x-%016x-01", p+1, i+1)}}
			}
			fp.Records = append(fp.Records, r)
		}
		ft.Partitions = append(ft.Partitions, fp)
	}
	return kgo.Fetches{{Topics: []kgo.FetchTopic{ft}}}
}

func TestBatchSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	c := &Consumer{cfg: Config{Topic: "events"}, tracer: tracerOf(tp)}

	// 2 partitions × 100 records, 90 of each traced: 180 producer contexts,
	// of which MaxLinks are linked.
	_, span := c.startBatch(context.Background(), fetches("events", 2, 100, 90, 10))
	endBatch(span, 3)
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	s := spans[0]
	if s.Name() != spanConsumeBatch || len(s.Links()) != tracing.MaxLinks {
		t.Fatalf("span %q with %d links", s.Name(), len(s.Links()))
	}
	if got := s.Links()[0].SpanContext.TraceID().String(); got != fmt.Sprintf("%032x", 1) {
		t.Errorf("first link trace id %s", got)
	}
	want := map[attribute.Key]int64{
		"messaging.batch.message_count": 200, "dashstream.partitions": 2, "dashstream.bytes": 2000,
		"dashstream.links_dropped": 180 - tracing.MaxLinks, "dashstream.decode_failures": 3,
	}
	got := map[attribute.Key]int64{}
	for _, kv := range s.Attributes() {
		if kv.Value.Type() == attribute.INT64 {
			got[kv.Key] = kv.Value.AsInt64()
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
}

func TestTracerOffIsNil(t *testing.T) {
	if tracerOf(nil) != nil {
		t.Fatal("a nil provider must leave tracing off")
	}
	var d deadLetters
	if d.startDLQSend(context.Background(), &kgo.Record{}, "x") != nil {
		t.Fatal("DLQ span without a tracer")
	}
	endSpan(nil, nil)
}

// BenchmarkBatchSpan is what tracing adds to one full poll when on (off,
// the consumer never calls it).
func BenchmarkBatchSpan(b *testing.B) {
	tp := sdktrace.NewTracerProvider() // no exporter: the span work alone
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	c := &Consumer{cfg: Config{Topic: "events"}, tracer: tracerOf(tp)}
	fs := fetches("events", 4, maxPollRecords/4, maxPollRecords/4, 200)
	b.ReportAllocs()
	for b.Loop() {
		_, span := c.startBatch(context.Background(), fs)
		endBatch(span, 0)
	}
}
