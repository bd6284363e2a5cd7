package e2e

// Tracing end to end: a gateway exporting over OTLP/HTTP to an in-process
// receiver that decodes the collector's protobuf requests, against real
// Kafka. It checks the spans of a consumed batch (linked to the producer's
// traceparent), a DLQ send, a resume that needs a Kafka deep read, the
// resource, and a log line carrying its span's trace id.

import (
	"bytes"
	cryptorand "crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/dashflow/dashstream-gateway/internal/config"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// otlpReceiver is an OTLP/HTTP traces endpoint that keeps what it receives.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []receivedSpan
}

type receivedSpan struct {
	*tracepb.Span
	resource map[string]string
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	var ex coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &ex); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, rs := range ex.GetResourceSpans() {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, receivedSpan{Span: s, resource: res})
			}
		}
	}
	r.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// named returns the spans received under name.
func (r *otlpReceiver) named(name string) []receivedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []receivedSpan
	for _, s := range r.spans {
		if s.GetName() == name {
			out = append(out, s)
		}
	}
	return out
}

// attrs flattens OTLP attributes to strings (ints and bools formatted).
func attrs(kvs []*commonpb.KeyValue) map[string]string {
	out := map[string]string{}
	for _, kv := range kvs {
		v := kv.GetValue()
		switch v.GetValue().(type) {
		case *commonpb.AnyValue_IntValue:
			out[kv.GetKey()] = strconv.FormatInt(v.GetIntValue(), 10)
		case *commonpb.AnyValue_BoolValue:
			out[kv.GetKey()] = strconv.FormatBool(v.GetBoolValue())
		default:
			out[kv.GetKey()] = v.GetStringValue()
		}
	}
	return out
}

func TestTracingExportsSpans(t *testing.T) {
	k, topic := kafkaEnv(t, 1)
	recv := &otlpReceiver{}
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "")
	t.Setenv("OTEL_SDK_DISABLED", "")
	t.Setenv("OTEL_TRACES_SAMPLER", "")

	// Twenty records, each with its producer's traceparent; then one that
	// cannot be decoded (dead-lettered). Produced before the gateway starts,
	// they are read from the earliest offset.
	const n = 20
	parents := make([]string, n)
	recs := make([]*kgo.Record, 0, n+1)
	for i := range n {
		parents[i] = "00-" + hex.EncodeToString(randomBytes(t, 16)) + "-" + hex.EncodeToString(randomBytes(t, 8)) + "-01"
		recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Value: event(t, "t0", uint64(i+1)),
			Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte(parents[i])}}})
	}
	recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Value: []byte("not a DashStream record"),
		Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte(parents[0])}}})
	k.ProduceRecords(t, recs...)

	logs := &testenv.SyncBuffer{}
	env := gatewayEnv(k, topic)
	env["REPLAY_BUFFER_MEMORY_SIZE"] = "5" // a resume from the start needs Kafka
	g := startGateway(t, env, logTo(logs), processEnv("OTEL_"), checkConfig(func(t testing.TB, cfg *config.Config) {
		if !cfg.Tracing.Enabled {
			t.Fatal("tracing not enabled by OTEL_EXPORTER_OTLP_ENDPOINT")
		}
	}))
	waitHeads(t, g, map[int32]int64{0: n}, 30*time.Second)

	c := g.dial(&wsclient.Resume{From: wsclient.FromCursor, Offsets: map[int32]int64{0: -1}})
	r := readUntil(t, c, 30*time.Second, func(r *stream) bool { return r.hasControl("replay_complete") })
	if len(r.records()) != n {
		t.Fatalf("replayed %d records, want %d", len(r.records()), n)
	}
	var rc wsclient.ReplayComplete
	for _, ctl := range r.controls("") {
		if ctl.Type == "replay_complete" {
			if err := ctl.Decode(&rc); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.CloseNow()
	if err := g.stop(); err != nil { // flushes the spans
		t.Fatalf("stop: %v", err)
	}

	batch := assertBatchSpans(t, recv, parents)
	assertDLQSpan(t, recv, parents[0])
	assertResumeSpans(t, recv, rc.TotalReplayed)
	assertTraceIDLogged(t, logs.String(), batch)
}

// assertBatchSpans checks that the consumed batches link every producer
// span, and returns the span that holds the dead-lettered record.
func assertBatchSpans(t *testing.T, recv *otlpReceiver, parents []string) receivedSpan {
	t.Helper()
	batches := recv.named("kafka.consume_batch")
	if len(batches) == 0 {
		t.Fatal("no kafka.consume_batch span exported")
	}
	linked := map[string]bool{}
	records, failures := 0, 0
	var failed receivedSpan
	for _, b := range batches {
		if b.GetKind() != tracepb.Span_SPAN_KIND_CONSUMER {
			t.Errorf("batch span kind %v", b.GetKind())
		}
		for _, l := range b.GetLinks() {
			linked["00-"+hex.EncodeToString(l.GetTraceId())+"-"+hex.EncodeToString(l.GetSpanId())+"-01"] = true
		}
		a := attrs(b.GetAttributes())
		records += atoiT(t, a["messaging.batch.message_count"])
		if f := atoiT(t, a["dashstream.decode_failures"]); f > 0 {
			failures += f
			failed = b
		}
		if a["dashstream.partitions"] != "1" || atoiT(t, a["dashstream.bytes"]) <= 0 || a["dashstream.links_dropped"] != "0" {
			t.Errorf("batch span attributes %v", a)
		}
		if b.resource["service.name"] != "dashstream-gateway" || b.resource["service.version"] == "" {
			t.Errorf("resource %v", b.resource)
		}
	}
	for _, p := range parents {
		if !linked[p] {
			t.Errorf("no batch span links the producer span of %s (links %v)", p, linked)
		}
	}
	if records != len(parents)+1 || failures != 1 {
		t.Errorf("batch spans count %d records, %d decode failures; want %d and 1", records, failures, len(parents)+1)
	}
	return failed
}

func assertDLQSpan(t *testing.T, recv *otlpReceiver, parent string) {
	t.Helper()
	sends := recv.named("kafka.dlq_send")
	if len(sends) != 1 {
		t.Fatalf("%d kafka.dlq_send spans, want 1", len(sends))
	}
	s := sends[0]
	batches := recv.named("kafka.consume_batch")
	if !hasSpanID(batches, s.GetParentSpanId()) {
		t.Error("the DLQ send is not a child of a consumed batch")
	}
	if len(s.GetLinks()) != 1 || "00-"+hex.EncodeToString(s.GetLinks()[0].GetTraceId())+"-"+hex.EncodeToString(s.GetLinks()[0].GetSpanId())+"-01" != parent {
		t.Errorf("DLQ send links %v, want the producer span %s", s.GetLinks(), parent)
	}
	if a := attrs(s.GetAttributes()); a["error.type"] == "" || s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("DLQ send attributes %v, status %v", a, s.GetStatus())
	}
}

// assertResumeSpans checks the resume's span: it replayed n records (as
// replay_complete counted them) from Kafka, and the deep reads are its
// children.
func assertResumeSpans(t *testing.T, recv *otlpReceiver, n int) {
	t.Helper()
	resumes := recv.named("hub.resume")
	if len(resumes) != 1 {
		t.Fatalf("%d hub.resume spans, want 1", len(resumes))
	}
	a := attrs(resumes[0].GetAttributes())
	if a["dashstream.replay.tier"] != "kafka" || a["dashstream.replay.records"] != strconv.Itoa(n) || a["dashstream.replay.capped"] != "false" {
		t.Errorf("resume span attributes %v", a)
	}
	reads := recv.named("kafka.deep_read")
	if len(reads) == 0 {
		t.Fatal("no kafka.deep_read span exported")
	}
	for _, d := range reads {
		if !bytes.Equal(d.GetParentSpanId(), resumes[0].GetSpanId()) || !bytes.Equal(d.GetTraceId(), resumes[0].GetTraceId()) {
			t.Error("a deep read is not a child of the resume")
		}
	}
}

// assertTraceIDLogged checks that the dead letter's log line carries the
// trace and span id of the batch that read the record.
func assertTraceIDLogged(t *testing.T, logs string, batch receivedSpan) {
	t.Helper()
	line := regexp.MustCompile(`(?m)^.*kafka: record dead-lettered.*$`).FindString(logs)
	if line == "" {
		t.Fatalf("no dead-letter log line in\n%s", logs)
	}
	want := "trace_id=" + hex.EncodeToString(batch.GetTraceId()) + " span_id=" + hex.EncodeToString(batch.GetSpanId())
	if !strings.Contains(line, want) {
		t.Errorf("log line %q lacks %q", line, want)
	}
}

func hasSpanID(spans []receivedSpan, id []byte) bool {
	for _, s := range spans {
		if bytes.Equal(s.GetSpanId(), id) {
			return true
		}
	}
	return false
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := cryptorand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func atoiT(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("attribute %q: %v", s, err)
	}
	return n
}
