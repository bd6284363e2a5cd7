package kafka

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
)

// failingValues are invalid record values and the kind each must fail as.
func failingValues(t testing.TB) []struct {
	value []byte
	kind  string
} {
	return []struct {
		value []byte
		kind  string
	}{
		{nil, "payload_missing"},
		{vector(t, "invalid_empty_value"), "empty_payload"},
		{vector(t, "invalid_framing_0x02"), "invalid_protobuf"},
		{vector(t, "invalid_plain_field_number_0"), "invalid_protobuf"},
		{vector(t, "invalid_truncated_plain"), "invalid_protobuf"},
		{vector(t, "invalid_truncated_legacy_raw"), "invalid_protobuf"},
		{vector(t, "invalid_zstd_corrupt"), "bad_zstd"},
		{vector(t, "invalid_zstd_bomb_11mib"), "decompressed_too_large"},
	}
}

var dlqFields = []string{
	"trace_id", "timestamp", "error", "error_type", "source_topic", "kafka_partition", "kafka_offset",
	"message_size", "payload_sha256", "first_bytes_hex", "last_bytes_hex", "source_headers", "consumer_id",
}

func TestDecodeFailuresSkipPolicy(t *testing.T) {
	c, topic := fakeCluster(t, 1)
	brokers := c.ListenAddrs()
	prod := producer(t, brokers)
	valid := vector(t, "event_node_end_plain")
	fails := failingValues(t)
	var values [][]byte
	for _, f := range fails {
		values = append(values, valid, f.value)
	}
	produce(t, prod, topic, 0, values...)

	r := startConsumer(t, testConfig(brokers, topic))
	eventually(t, "records and markers", func() bool { return r.sink.count() == len(values) })
	recs := r.sink.records()
	checkChain(t, recs, -1)
	for i, f := range fails {
		ok, marker := recs[2*i], recs[2*i+1]
		if ok.Skipped != "" || marker.Skipped != f.kind || marker.Value != nil || marker.Offset != int64(2*i+1) {
			t.Errorf("failure %d: valid skipped=%q, marker %+v, want kind %s", i, ok.Skipped, marker, f.kind)
		}
	}

	dead := readAll(t, brokers, topic+"-dlq", len(fails))
	byOffset := map[int64]*kgo.Record{}
	for _, d := range dead {
		var msg map[string]any
		if err := json.Unmarshal(d.Value, &msg); err != nil {
			t.Fatal(err)
		}
		byOffset[int64(msg["kafka_offset"].(float64))] = d
	}
	for i, f := range fails {
		off := int64(2*i + 1)
		checkDLQRecord(t, byOffset[off], topic, 0, off, f.value, f.kind, DefaultGroupID+".test")
	}
	for _, kind := range []string{"payload_missing", "bad_zstd", "invalid_protobuf"} {
		if testutil.ToFloat64(r.m.DecodeErrors.WithLabelValues(kind)) == 0 {
			t.Errorf("no decode error counted for %s", kind)
		}
	}
	eventually(t, "DLQ sends counted", func() bool {
		return testutil.ToFloat64(r.m.DLQSends.WithLabelValues("invalid_protobuf")) == 4
	})
}

// checkDLQRecord checks the key and every JSON field of one dead letter.
func checkDLQRecord(t testing.TB, d *kgo.Record, topic string, p int32, off int64, value []byte, kind, consumerID string) {
	t.Helper()
	if d == nil {
		t.Fatalf("no DLQ record for offset %d", off)
	}
	var msg map[string]any
	if err := json.Unmarshal(d.Value, &msg); err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(msg)); !slices.Equal(got, slices.Sorted(slices.Values(dlqFields))) {
		t.Fatalf("DLQ fields %v, want %v", got, dlqFields)
	}
	key := sha256.Sum256([]byte(topic + "/" + strconv.Itoa(int(p)) + "/" + strconv.FormatInt(off, 10)))
	wantKey := hex.EncodeToString(key[:16])
	sum := sha256.Sum256(value)
	want := map[string]any{
		"trace_id": wantKey, "error_type": kind, "source_topic": topic,
		"kafka_partition": float64(p), "kafka_offset": float64(off), "message_size": float64(len(value)),
		"payload_sha256": hex.EncodeToString(sum[:]), "first_bytes_hex": hex.EncodeToString(value[:min(16, len(value))]),
		"last_bytes_hex": hex.EncodeToString(value[max(0, len(value)-16):]), "consumer_id": consumerID,
	}
	for k, v := range want {
		if msg[k] != v {
			t.Errorf("offset %d: %s = %v, want %v", off, k, msg[k], v)
		}
	}
	if string(d.Key) != wantKey {
		t.Errorf("offset %d: key %q, want %q", off, d.Key, wantKey)
	}
	if _, err := time.Parse(time.RFC3339, msg["timestamp"].(string)); err != nil {
		t.Errorf("timestamp: %v", err)
	}
	if msg["error"] == "" {
		t.Error("empty error")
	}
}

func TestOldDataClassification(t *testing.T) {
	c, topic := fakeCluster(t, 1)
	brokers := c.ListenAddrs()
	prod := producer(t, brokers)
	bad := vector(t, "invalid_zstd_corrupt")
	produce(t, prod, topic, 0, bad, bad) // history, below the startup high watermark

	r := startConsumer(t, testConfig(brokers, topic))
	eventually(t, "history", func() bool { return r.sink.count() == 2 })
	produce(t, prod, topic, 0, bad) // new data
	eventually(t, "new failure", func() bool { return r.sink.count() == 3 })

	if got := testutil.ToFloat64(r.m.OldDataDecodeErrors); got != 2 {
		t.Errorf("old data decode errors %v, want 2", got)
	}
	if got := testutil.ToFloat64(r.m.KafkaMessages.WithLabelValues(metrics.StatusOldDataError)); got != 2 {
		t.Errorf("old_data_error %v, want 2", got)
	}
	if got := testutil.ToFloat64(r.m.KafkaMessages.WithLabelValues(metrics.StatusError)); got != 1 {
		t.Errorf("error %v, want 1", got)
	}
}

func TestPayloadTooLargeAndFullPayload(t *testing.T) {
	c, topic := fakeCluster(t, 1)
	brokers := c.ListenAddrs()
	big := make([]byte, 1026) // 0x00 + 1 KiB + 1 byte: over a 1 KiB cap plus the framing byte
	for i := 1; i < len(big); i++ {
		big[i] = 0x0a
	}
	rec := &kgo.Record{Topic: topic, Value: big, Headers: []kgo.RecordHeader{
		{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
		{Key: "source", Value: []byte("test")},
	}}
	produceRecords(t, producer(t, brokers), rec)

	cfg := testConfig(brokers, topic)
	cfg.MaxPayload, cfg.DLQ.IncludeFullPayload = 1024, true
	r := startConsumer(t, cfg)
	eventually(t, "marker", func() bool { return r.sink.count() == 1 })
	if got := r.sink.records()[0].Skipped; got != "payload_too_large" {
		t.Fatalf("skipped %q", got)
	}
	d := readAll(t, brokers, topic+"-dlq", 1)[0]
	var msg dlqMessage
	if err := json.Unmarshal(d.Value, &msg); err != nil {
		t.Fatal(err)
	}
	if string(d.Key) != "4bf92f3577b34da6a3ce929d0e0e4736" || msg.TraceID != string(d.Key) {
		t.Fatalf("key %q trace id %q: want the traceparent's trace id", d.Key, msg.TraceID)
	}
	payload, _ := base64.StdEncoding.DecodeString(*msg.OriginalPayloadBase64)
	if string(payload) != string(big) || *msg.OriginalPayloadTruncated {
		t.Fatal("full payload not carried")
	}
	if msg.SourceHeaders["source"] != "test" || len(d.Headers) != 1 || d.Headers[0].Key != "traceparent" {
		t.Fatalf("headers: source %v, DLQ headers %v", msg.SourceHeaders, d.Headers)
	}
}

func TestPausePolicyAndResume(t *testing.T) {
	c, topic := fakeCluster(t, 2)
	brokers := c.ListenAddrs()
	prod := producer(t, brokers)
	v, bad := vector(t, "event_node_end_plain"), vector(t, "invalid_truncated_plain")
	produce(t, prod, topic, 0, v, bad, v, v)
	produce(t, prod, topic, 1, v)

	cfg := testConfig(brokers, topic)
	cfg.OnDecodeError = PolicyPause
	r := startConsumer(t, cfg)
	eventually(t, "paused", func() bool { return slices.Equal(r.Paused(), []int32{0}) })
	eventually(t, "records before the failure and of p1", func() bool { return r.sink.count() == 2 })
	if got := testutil.ToFloat64(r.m.PartitionsPaused); got != 1 {
		t.Fatalf("paused gauge %v", got)
	}
	produce(t, prod, topic, 1, v) // other partitions go on
	eventually(t, "p1 continues", func() bool { return len(r.sink.byPartition()[1]) == 2 })
	if n := len(r.sink.byPartition()[0]); n != 1 {
		t.Fatalf("%d records of the paused partition published, want 1", n)
	}
	if r.Stalled(0) {
		t.Fatal("a paused partition made the consumer stalled")
	}

	if err := r.ResumePartition(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "resumed records", func() bool { return len(r.sink.byPartition()[0]) == 4 })
	p0 := r.sink.byPartition()[0]
	checkChain(t, p0, -1)
	if p0[1].Skipped != "invalid_protobuf" || p0[1].Offset != 1 || p0[3].Offset != 3 {
		t.Fatalf("after resume: %+v %+v", p0[1], p0[3])
	}
	if len(r.Paused()) != 0 || testutil.ToFloat64(r.m.PartitionsPaused) != 0 {
		t.Fatal("still reported paused")
	}
	d := readAll(t, brokers, topic+"-dlq", 1)[0]
	checkDLQRecord(t, d, topic, 0, 1, bad, "invalid_protobuf", DefaultGroupID+".test")
}

func TestPauseSurvivesRestartUntilResumed(t *testing.T) {
	c, topic := fakeCluster(t, 1)
	brokers := c.ListenAddrs()
	v := vector(t, "event_node_end_plain")
	produce(t, producer(t, brokers), topic, 0, v, nil, v)
	cfg := testConfig(brokers, topic)
	cfg.OnDecodeError = PolicyPause
	first := startConsumer(t, cfg)
	eventually(t, "paused", func() bool { return len(first.Paused()) == 1 })
	first.stop()

	second := startConsumer(t, cfg) // retries the failing record: pauses again
	eventually(t, "paused again", func() bool { return len(second.Paused()) == 1 })
	if second.sink.count() != 0 {
		t.Fatalf("restart re-published %d records before the failure", second.sink.count())
	}
	if got := testutil.ToFloat64(second.m.KafkaPayloadMissing); got != 1 {
		t.Fatalf("payload missing %v", got)
	}
}

// swallowProduce makes the cluster never answer produce requests from now
// on (the DLQ producer's; the test's own records are written already).
func swallowProduce(c interface {
	ControlKey(int16, func(kmsg.Request) (kmsg.Response, error, bool))
	KeepControl()
}) {
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return nil, nil, true
	})
}

func TestDLQBackpressureDropsAndCounts(t *testing.T) {
	c, topic := fakeCluster(t, 1)
	brokers := c.ListenAddrs()
	bad := vector(t, "invalid_zstd_corrupt")
	produce(t, producer(t, brokers), topic, 0, bad, bad, bad)
	swallowProduce(c)

	cfg := testConfig(brokers, topic)
	cfg.DLQ.MaxConcurrent, cfg.DLQ.SendTimeout, cfg.ShutdownTimeout = 1, time.Minute, 200*time.Millisecond
	r := startConsumer(t, cfg)
	eventually(t, "markers", func() bool { return r.sink.count() == 3 })
	if got := testutil.ToFloat64(r.m.DLQSendFailures.WithLabelValues(dlqReasonBackpressure)); got != 2 {
		t.Fatalf("backpressure drops %v, want 2", got)
	}
	r.stop()
}

func TestDLQSendTimeoutCounted(t *testing.T) {
	c, topic := fakeCluster(t, 1)
	brokers := c.ListenAddrs()
	produce(t, producer(t, brokers), topic, 0, vector(t, "invalid_zstd_corrupt"))
	swallowProduce(c)

	cfg := testConfig(brokers, topic)
	cfg.DLQ.SendTimeout = 300 * time.Millisecond
	r := startConsumer(t, cfg)
	eventually(t, "timeout counted", func() bool {
		return testutil.ToFloat64(r.m.DLQSendFailures.WithLabelValues(dlqReasonTimeout)) == 1
	})
}

func TestTraceparent(t *testing.T) {
	const id = "4bf92f3577b34da6a3ce929d0e0e4736"
	for value, ok := range map[string]bool{
		"00-" + id + "-00f067aa0ba902b7-01":                                 true,
		"01-" + id + "-00f067aa0ba902b7-01-future":                          true,
		"00-" + id + "-00f067aa0ba902b7-01-extra":                           false, // version 00 has exactly 4 fields
		"ff-" + id + "-00f067aa0ba902b7-01":                                 false,
		"00-" + "4BF92F3577B34DA6A3CE929D0E0E4736" + "-00f067aa0ba902b7-01": false,
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01":           false,
		"00-" + id + "-0000000000000000-01":                                 false,
		"00-" + id + "-00f067aa0ba902b7":                                    false,
		"00_" + id + "-00f067aa0ba902b7-01":                                 false,
		"":                                                                  false,
	} {
		got, gotOK := parseTraceparent(value)
		if gotOK != ok || (ok && got != id) {
			t.Errorf("parseTraceparent(%q) = %q, %v; want ok=%v", value, got, gotOK, ok)
		}
	}
}

func TestDLQMessageBounds(t *testing.T) {
	d := &deadLetters{source: "src", consumerID: "g.i", fullPayload: true, now: time.Now}
	value := make([]byte, dlqMaxPayload+10)
	var hs []kgo.RecordHeader
	for i := range 100 {
		hs = append(hs, kgo.RecordHeader{Key: "h" + strconv.Itoa(i), Value: make([]byte, 5000)})
	}
	msg := d.message(&kgo.Record{Topic: "src", Value: value, Headers: hs}, dashstream.KindPayloadTooLarge,
		&dashstream.DecodeError{Kind: dashstream.KindPayloadTooLarge, Err: errors.New("too big")})
	raw, _ := base64.StdEncoding.DecodeString(*msg.OriginalPayloadBase64)
	if len(raw) != dlqMaxPayload || !*msg.OriginalPayloadTruncated {
		t.Fatalf("payload %d bytes, truncated %v", len(raw), *msg.OriginalPayloadTruncated)
	}
	if len(msg.SourceHeaders) != dlqMaxHeaders || len(msg.SourceHeaders["h0"]) != dlqMaxHeaderValue {
		t.Fatalf("%d headers, first %d bytes", len(msg.SourceHeaders), len(msg.SourceHeaders["h0"]))
	}
}
