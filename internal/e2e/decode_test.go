package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// vector reads a test vector of the repository's testdata/dashstream.
func vector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "dashstream", name))
	if err != nil {
		t.Fatal(err)
	}
	if b == nil {
		b = []byte{} // an empty file is an empty (not a null) value
	}
	return b
}

// TestCoreDecodeFailuresSkippedAndDeadLettered: undecodable values between
// valid ones never reach clients as records. A live client and a client
// replaying afterwards each get, per partition, every offset exactly once
// and in order — valid ones as records (byte for byte), dead-lettered ones
// as a "skipped" frame with their error type — so a failure never looks
// like a gap. The DLQ topic on real Kafka receives one JSON record per
// failure with the docs/PROTOCOL.md §2.6 fields, and /health and /metrics count them.
func TestCoreDecodeFailuresSkippedAndDeadLettered(t *testing.T) {
	k, topic := kafkaEnv(t, 2)
	g := startGateway(t, gatewayEnv(k, topic))
	live := g.dial(&wsclient.Resume{From: wsclient.FromLatest})
	var ls stream
	readMore(t, live, &ls, 10*time.Second, "live client replay", untilControl("replay_complete", 1))

	type item struct {
		value []byte
		kind  string // "" = valid
	}
	plan := map[int32][]item{
		0: {
			{event(t, "d0", 1), ""},
			{vector(t, "invalid_truncated_plain.bin"), "invalid_protobuf"},
			{event(t, "d0", 2), ""},
			{vector(t, "invalid_zstd_corrupt.bin"), "bad_zstd"},
			{event(t, "d0", 3), ""},
			{vector(t, "invalid_empty_value.bin"), "empty_payload"},
			{event(t, "d0", 4), ""},
			{nil, "payload_missing"}, // a tombstone
			{event(t, "d0", 5), ""},
		},
		1: {
			{event(t, "d1", 1), ""},
			{vector(t, "invalid_framing_0x02.bin"), "invalid_protobuf"},
			{vector(t, "invalid_zstd_bomb_11mib.bin"), "decompressed_too_large"},
			{vector(t, "legacy_zstd_event.bin"), ""}, // valid, unusual framing
			{event(t, "d1", 2), ""},
		},
	}
	type coord struct {
		p int32
		o int64
	}
	kinds := map[coord]string{}
	values := map[coord][]byte{}
	all := map[int32][]int64{}
	for p, items := range plan {
		vals := make([][]byte, len(items))
		for i, it := range items {
			vals[i] = it.value
		}
		offs := produceRaw(t, k, topic, p, vals...)
		for i, o := range offs {
			kinds[coord{p, o}], values[coord{p, o}] = items[i].kind, items[i].value
		}
		all[p] = offs
	}
	final := lastOf(all)

	// check: per partition, records and skipped frames together cover every
	// offset once, in order; records are the valid values byte for byte.
	check := func(name string, s *stream, from map[int32]int64) {
		t.Helper()
		seen := map[int32][]int64{}
		for _, m := range s.msgs {
			switch {
			case m.Kind == wsclient.KindRecord:
				c := coord{m.Record.Partition, m.Record.Offset}
				if kinds[c] != "" {
					t.Errorf("%s: p%d@%d (%s) delivered as a record", name, c.p, c.o, kinds[c])
				} else if !slices.Equal(m.Record.Value, values[c]) {
					t.Errorf("%s: p%d@%d: value differs from what was produced", name, c.p, c.o)
				}
				seen[c.p] = append(seen[c.p], c.o)
			case m.Control.Type == "skipped":
				sk := decodeControl[wsclient.Skipped](t, m.Control)
				c := coord{sk.Partition, int64(sk.Offset)}
				if kinds[c] == "" || sk.ErrorType != kinds[c] {
					t.Errorf("%s: skipped %s; produced kind there: %q", name, m.Control.Raw, kinds[c])
				}
				seen[c.p] = append(seen[c.p], c.o)
			case m.Control.Type == "replay_complete":
			default:
				t.Errorf("%s: unexpected control frame %s", name, m.Control.Raw)
			}
		}
		want := map[int32][]int64{}
		for p, offs := range all {
			f, ok := from[p]
			if !ok {
				f = -1 // no head at the resume: everything is new
			}
			want[p] = offsetsAfter(offs, f)
		}
		for p := range want {
			if !slices.Equal(seen[p], want[p]) {
				t.Errorf("%s: partition %d: records+skipped cover %s, want %s", name, p, fmtOffsets(seen[p]), fmtOffsets(want[p]))
			}
		}
	}
	readMore(t, live, &ls, 30*time.Second, "live client", func(s *stream) bool { return s.reachedAll(final) })
	check("live client", &ls, rcLast(replayCompleteOf(t, &ls)))

	replayer := g.dial(&wsclient.Resume{Offsets: map[int32]int64{0: -1, 1: -1}})
	var rs stream
	readMore(t, replayer, &rs, 30*time.Second, "replaying client", untilControl("replay_complete", 1))
	check("replaying client", &rs, map[int32]int64{0: -1, 1: -1})
	rc := replayCompleteOf(t, &rs)
	t.Logf("replay_complete totalReplayed %d with %d records and %d skipped frames", rc.TotalReplayed, len(rs.records()), len(rs.controls("skipped")))

	// The DLQ topic: one JSON record per failure.
	cl := k.Client(t, kgo.ConsumeTopics(topic+"-dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	failures := 0
	for _, kd := range kinds {
		if kd != "" {
			failures++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var dlq []*kgo.Record
	for len(dlq) < failures {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("DLQ: %d of %d records: %v", len(dlq), failures, ctx.Err())
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("DLQ fetch: %v", err) })
		dlq = append(dlq, fs.Records()...)
	}
	got := map[coord]bool{}
	for _, r := range dlq {
		var msg struct {
			TraceID        string            `json:"trace_id"`
			Timestamp      string            `json:"timestamp"`
			Error          string            `json:"error"`
			ErrorType      string            `json:"error_type"`
			SourceTopic    string            `json:"source_topic"`
			KafkaPartition *int32            `json:"kafka_partition"`
			KafkaOffset    *int64            `json:"kafka_offset"`
			MessageSize    *int              `json:"message_size"`
			PayloadSHA256  string            `json:"payload_sha256"`
			FirstBytesHex  *string           `json:"first_bytes_hex"`
			LastBytesHex   *string           `json:"last_bytes_hex"`
			SourceHeaders  map[string]string `json:"source_headers"`
			ConsumerID     string            `json:"consumer_id"`
		}
		if err := json.Unmarshal(r.Value, &msg); err != nil {
			t.Fatalf("DLQ value %q: %v", r.Value, err)
		}
		if msg.KafkaPartition == nil || msg.KafkaOffset == nil || msg.MessageSize == nil || msg.FirstBytesHex == nil || msg.LastBytesHex == nil {
			t.Errorf("DLQ record misses fields: %s", r.Value)
			continue
		}
		c := coord{*msg.KafkaPartition, *msg.KafkaOffset}
		v := values[c]
		sum := sha256.Sum256(v)
		coordSum := sha256.Sum256([]byte(topic + "/" + strconv.Itoa(int(c.p)) + "/" + strconv.FormatInt(c.o, 10)))
		switch {
		case kinds[c] == "":
			t.Errorf("DLQ record for p%d@%d, which is valid: %s", c.p, c.o, r.Value)
		case got[c]:
			t.Errorf("two DLQ records for p%d@%d", c.p, c.o)
		case msg.ErrorType != kinds[c], msg.SourceTopic != topic, *msg.MessageSize != len(v),
			msg.PayloadSHA256 != hex.EncodeToString(sum[:]),
			*msg.FirstBytesHex != hex.EncodeToString(v[:min(16, len(v))]),
			*msg.LastBytesHex != hex.EncodeToString(v[max(0, len(v)-16):]),
			msg.Error == "", msg.ConsumerID == "":
			t.Errorf("DLQ record for p%d@%d (%s, %d bytes): %s", c.p, c.o, kinds[c], len(v), r.Value)
		case msg.TraceID != hex.EncodeToString(coordSum[:16]) || string(r.Key) != msg.TraceID:
			t.Errorf("DLQ record for p%d@%d: trace_id %q key %q, want %x", c.p, c.o, msg.TraceID, r.Key, coordSum[:16])
		}
		if _, err := time.Parse(time.RFC3339, msg.Timestamp); err != nil {
			t.Errorf("DLQ timestamp %q: %v", msg.Timestamp, err)
		}
		got[c] = true
	}

	// /health and /metrics count the same failures.
	_, h := getJSON(t, g, "/health")
	hm := h["metrics"].(map[string]any)
	valid := int64(len(kinds) - failures)
	if n := jsonInt(t, hm, "decode_errors"); n != int64(failures) {
		t.Errorf("/health decode_errors = %d, want %d", n, failures)
	}
	if n := jsonInt(t, hm, "payload_missing"); n != 1 {
		t.Errorf("/health payload_missing = %d, want 1", n)
	}
	if n := jsonInt(t, hm, "kafka_messages_received"); n != valid {
		t.Errorf("/health kafka_messages_received = %d, want %d", n, valid)
	}
	m := scrape(t, g)
	for _, kind := range []string{"invalid_protobuf", "bad_zstd", "empty_payload", "payload_missing", "decompressed_too_large"} {
		want := 0.0
		for _, kd := range kinds {
			if kd == kind {
				want++
			}
		}
		if v, _ := sampleValue(m, "websocket_decode_errors_total", map[string]string{"error_type": kind}); v != want {
			t.Errorf("websocket_decode_errors_total{error_type=%s} = %v, want %v", kind, v, want)
		}
	}
	waitMetric(t, g, "websocket_dlq_sends_total", nil, float64(failures))
}

// waitMetric polls /metrics until the (summed) sample equals want.
func waitMetric(t testing.TB, g *gateway, name string, labels map[string]string, want float64) {
	t.Helper()
	var last float64
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if last, _ = sampleValue(scrape(t, g), name, labels); last == want {
			return
		}
		time.Sleep(50 * time.Millisecond) // polling a condition, not synchronizing on time
	}
	t.Errorf("%s%v = %v, want %v", name, labels, last, want)
}
