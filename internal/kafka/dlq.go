package kafka

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
)

// Bounds of one DLQ record (docs/PROTOCOL.md §2.6).
const (
	dlqEdgeBytes       = 16        // first_bytes_hex, last_bytes_hex
	dlqMaxPayload      = 512 << 10 // original_payload_base64, before encoding
	dlqMaxHeaders      = 32        // source_headers entries
	dlqMaxHeaderName   = 256       // bytes, cut on a UTF-8 boundary
	dlqMaxHeaderValue  = 1024
	dlqMaxErrorMessage = 1024
)

// Reasons of websocket_dlq_send_failures_total.
const (
	dlqReasonBackpressure = "backpressure" // all send slots taken: dropped
	dlqReasonTimeout      = "timeout"      // not acknowledged within SendTimeout
	dlqReasonError        = "send_error"   // the broker or client refused it
	dlqReasonEncode       = "encode_error"
)

// errDLQBackpressure marks the span of a dead letter dropped because every
// send slot was taken.
var errDLQBackpressure = errors.New("kafka: DLQ send dropped: every send slot taken")

// dlqMessage is the JSON value of a DLQ record, field for field the
// dead-letter record of docs/PROTOCOL.md §2.6.
type dlqMessage struct {
	TraceID                  string            `json:"trace_id"`
	Timestamp                string            `json:"timestamp"`
	Error                    string            `json:"error"`
	ErrorType                string            `json:"error_type"`
	SourceTopic              string            `json:"source_topic"`
	KafkaPartition           int32             `json:"kafka_partition"`
	KafkaOffset              int64             `json:"kafka_offset"`
	MessageSize              int               `json:"message_size"`
	PayloadSHA256            string            `json:"payload_sha256"`
	FirstBytesHex            string            `json:"first_bytes_hex"`
	LastBytesHex             string            `json:"last_bytes_hex"`
	OriginalPayloadBase64    *string           `json:"original_payload_base64,omitempty"`
	OriginalPayloadTruncated *bool             `json:"original_payload_truncated,omitempty"`
	SourceHeaders            map[string]string `json:"source_headers"`
	ConsumerID               string            `json:"consumer_id"`
}

// deadLetters sends dead-lettered records asynchronously on its own client.
// Sends are bounded by a semaphore (a full semaphore drops and counts) and
// by a timeout each; nothing here blocks the consumer goroutine.
type deadLetters struct {
	cl          *kgo.Client
	topic       string // DLQ topic
	source      string // source topic
	consumerID  string
	fullPayload bool
	timeout     time.Duration
	sem         chan struct{}
	m           *metrics.Metrics
	now         func() time.Time
	tracer      trace.Tracer // nil: tracing off
}

func newDeadLetters(cl *kgo.Client, cfg Config, m *metrics.Metrics, now func() time.Time) *deadLetters {
	return &deadLetters{
		cl:          cl,
		topic:       cfg.DLQTopic,
		source:      cfg.Topic,
		consumerID:  cfg.progressGroup(),
		fullPayload: cfg.DLQ.IncludeFullPayload,
		timeout:     cfg.DLQ.SendTimeout,
		sem:         make(chan struct{}, cfg.DLQ.MaxConcurrent),
		m:           m,
		now:         now,
		tracer:      tracerOf(cfg.TracerProvider),
	}
}

// dlqProducerOpts are the options of the DLQ producer client on top of the
// common ones. Idempotence is off so that a timed-out record can always be
// failed (a dead letter written twice is harmless; a stuck one is not).
func dlqProducerOpts(cfg Config) []kgo.Opt {
	return []kgo.Opt{
		kgo.DisableIdempotentWrite(),
		kgo.RecordDeliveryTimeout(max(cfg.DLQ.SendTimeout, time.Second)), // franz-go's minimum
		kgo.MaxBufferedRecords(cfg.DLQ.MaxConcurrent + 1),
		kgo.ProducerLinger(0),
	}
}

// send dead-letters r, which failed to decode with cause. Its span (a child
// of ctx's) ends when the send settles.
func (d *deadLetters) send(ctx context.Context, r *kgo.Record, kind dashstream.Kind, cause error) {
	span := d.startDLQSend(ctx, r, kind.String())
	select {
	case d.sem <- struct{}{}:
	default:
		d.m.DLQSendFailures.WithLabelValues(dlqReasonBackpressure).Inc()
		endSpan(span, errDLQBackpressure)
		return
	}
	rec, err := d.record(r, kind, cause)
	if err != nil {
		<-d.sem
		d.m.DLQSendFailures.WithLabelValues(dlqReasonEncode).Inc()
		endSpan(span, err)
		return
	}
	// The timer counts a send that is not acknowledged in time even while
	// its request is stuck in flight (the client cannot fail it then); the
	// slot stays taken until the client gives the record up, which keeps
	// the bound on records in flight exact.
	var settled atomic.Bool
	settle := func(err error) {
		if settled.CompareAndSwap(false, true) {
			d.count(kind, err)
			endSpan(span, err)
		}
	}
	timer := time.AfterFunc(d.timeout, func() { settle(context.DeadlineExceeded) })
	sendCtx, cancel := context.WithTimeout(context.Background(), d.timeout)
	d.cl.Produce(sendCtx, rec, func(_ *kgo.Record, err error) {
		timer.Stop()
		cancel()
		<-d.sem
		settle(err)
	})
}

func (d *deadLetters) count(kind dashstream.Kind, err error) {
	switch {
	case err == nil:
		d.m.DLQSends.WithLabelValues(kind.String()).Inc()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, kgo.ErrRecordTimeout):
		d.m.DLQSendFailures.WithLabelValues(dlqReasonTimeout).Inc()
	default:
		d.m.DLQSendFailures.WithLabelValues(dlqReasonError).Inc()
	}
}

// flush waits for the sends in flight, or for ctx.
func (d *deadLetters) flush(ctx context.Context) error {
	return d.cl.Flush(ctx)
}

// record builds the DLQ record of r: key = trace id, JSON value, and the
// source's trace context headers.
func (d *deadLetters) record(r *kgo.Record, kind dashstream.Kind, cause error) (*kgo.Record, error) {
	msg := d.message(r, kind, cause)
	value, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: d.topic, Key: []byte(msg.TraceID), Value: value, Headers: traceHeaders(r.Headers)}, nil
}

func (d *deadLetters) message(r *kgo.Record, kind dashstream.Kind, cause error) *dlqMessage {
	sum := sha256.Sum256(r.Value)
	msg := &dlqMessage{
		TraceID:        dlqTraceID(r),
		Timestamp:      d.now().UTC().Format(time.RFC3339Nano),
		Error:          dashstream.TruncateID(cause.Error(), dlqMaxErrorMessage),
		ErrorType:      kind.String(),
		SourceTopic:    d.source,
		KafkaPartition: r.Partition,
		KafkaOffset:    r.Offset,
		MessageSize:    len(r.Value),
		PayloadSHA256:  hex.EncodeToString(sum[:]),
		FirstBytesHex:  hex.EncodeToString(r.Value[:min(len(r.Value), dlqEdgeBytes)]),
		LastBytesHex:   hex.EncodeToString(r.Value[max(0, len(r.Value)-dlqEdgeBytes):]),
		SourceHeaders:  sourceHeaders(r.Headers),
		ConsumerID:     d.consumerID,
	}
	if d.fullPayload {
		kept := r.Value[:min(len(r.Value), dlqMaxPayload)]
		b64, truncated := base64.StdEncoding.EncodeToString(kept), len(kept) < len(r.Value)
		msg.OriginalPayloadBase64, msg.OriginalPayloadTruncated = &b64, &truncated
	}
	return msg
}

// dlqTraceID is the trace id of r's valid W3C traceparent header, else the
// first 16 bytes of SHA-256("<topic>/<partition>/<offset>") in hex, so every
// instance derives the same key for the same record.
func dlqTraceID(r *kgo.Record) string {
	for _, h := range r.Headers {
		if strings.EqualFold(h.Key, "traceparent") {
			if id, ok := parseTraceparent(string(h.Value)); ok {
				return id
			}
		}
	}
	coord := r.Topic + "/" + strconv.FormatInt(int64(r.Partition), 10) + "/" + strconv.FormatInt(r.Offset, 10)
	sum := sha256.Sum256([]byte(coord))
	return hex.EncodeToString(sum[:16])
}

// parseTraceparent returns the trace id of a W3C traceparent value
// ("<version>-<trace id>-<parent id>-<flags>", lower-case hex). Version ff,
// all-zero ids and malformed fields are invalid; a future version may append
// "-" and more fields.
func parseTraceparent(v string) (string, bool) {
	const size = 55 // 2+1+32+1+16+1+2
	if len(v) < size || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return "", false
	}
	version, trace, parent, flags := v[:2], v[3:35], v[36:52], v[53:55]
	if !lowerHex(version) || version == "ff" || !lowerHex(flags) {
		return "", false
	}
	if (version == "00" && len(v) != size) || (len(v) > size && v[size] != '-') {
		return "", false
	}
	if !lowerHex(trace) || !lowerHex(parent) || allZero(trace) || allZero(parent) {
		return "", false
	}
	return trace, true
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	return strings.Trim(s, "0") == ""
}

// sourceHeaders copies at most dlqMaxHeaders headers, names and values cut
// on a UTF-8 boundary. Values are kept as text (invalid UTF-8 becomes U+FFFD
// in the JSON); the first of several headers with one name wins.
func sourceHeaders(hs []kgo.RecordHeader) map[string]string {
	out := make(map[string]string, min(len(hs), dlqMaxHeaders))
	for _, h := range hs {
		if len(out) == dlqMaxHeaders {
			break
		}
		name := dashstream.TruncateID(h.Key, dlqMaxHeaderName)
		if _, dup := out[name]; !dup {
			out[name] = dashstream.TruncateID(string(h.Value), dlqMaxHeaderValue)
		}
	}
	return out
}

// traceHeaders keeps the W3C trace context of the source record so that the
// dead letter joins the same trace.
func traceHeaders(hs []kgo.RecordHeader) []kgo.RecordHeader {
	var out []kgo.RecordHeader
	for _, h := range hs {
		if strings.EqualFold(h.Key, "traceparent") || strings.EqualFold(h.Key, "tracestate") {
			out = append(out, h)
		}
	}
	return out
}
