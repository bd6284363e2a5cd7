package kafka

import (
	"context"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/dashflow/dashstream-gateway/internal/tracing"
)

// tracerName is the instrumentation scope of this package's spans.
const tracerName = "github.com/dashflow/dashstream-gateway/internal/kafka"

// Span names.
const (
	spanConsumeBatch = "kafka.consume_batch"
	spanDLQSend      = "kafka.dlq_send"
	spanDeepRead     = "kafka.deep_read"
)

// tracerOf is tp's tracer for this package; nil when tracing is off.
func tracerOf(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(tracerName)
}

// startBatch starts the span of one consumed poll, linked to the producer
// span of every record that carries a traceparent header (at most
// tracing.MaxLinks, the rest counted). Called only when tracing is on.
func (c *Consumer) startBatch(ctx context.Context, fs kgo.Fetches) (context.Context, trace.Span) {
	var links tracing.Links
	parts, records, bytes := 0, 0, 0
	fs.EachPartition(func(fp kgo.FetchTopicPartition) {
		if len(fp.Records) == 0 {
			return
		}
		parts++
		for _, r := range fp.Records {
			records++
			bytes += len(r.Value)
			links.Add(traceparent(r.Headers))
		}
	})
	return c.tracer.Start(ctx, spanConsumeBatch, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(links.Links()...), trace.WithAttributes(
			attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", c.cfg.Topic),
			attribute.Int("messaging.batch.message_count", records),
			attribute.Int("dashstream.partitions", parts),
			attribute.Int("dashstream.bytes", bytes),
			links.Dropped()))
}

// endBatch ends a consumed poll's span with its decode failure count.
func endBatch(span trace.Span, failures int) {
	span.SetAttributes(attribute.Int("dashstream.decode_failures", failures))
	span.End()
}

// traceparent is the value of a record's traceparent header, nil if none.
func traceparent(hs []kgo.RecordHeader) []byte {
	for _, h := range hs {
		if strings.EqualFold(h.Key, tracing.HeaderTraceparent) {
			return h.Value
		}
	}
	return nil
}

// startDLQSend starts the span of one dead-letter send, a child of the
// consumed batch in ctx and linked to the failed record's producer span.
// It returns nil when tracing is off.
func (d *deadLetters) startDLQSend(ctx context.Context, r *kgo.Record, kind string) trace.Span {
	if d.tracer == nil {
		return nil
	}
	var links tracing.Links
	links.Add(traceparent(r.Headers))
	_, span := d.tracer.Start(ctx, spanDLQSend, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithLinks(links.Links()...), trace.WithAttributes(
			attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", d.topic),
			attribute.String("messaging.destination.partition.id", strconv.Itoa(int(r.Partition))),
			attribute.Int64("dashstream.source_offset", r.Offset),
			attribute.String("error.type", kind)))
	return span
}

// endSpan ends span (nil: tracing off), marking it failed by err.
func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
