package devbroker

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
)

func TestRunDemoProducesToBroker(t *testing.T) {
	const topic = "dashstream-quality"
	b := startTestBroker(t, topic, topic+"-dlq")
	producer := newTestClient(t, b)

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := RunDemo(ctx, producer, topic, WorkloadConfig{Rate: 200, Seed: 11}, log); err != nil {
		t.Fatalf("RunDemo: %v", err)
	}
	if !strings.Contains(logs.String(), "demo workload stopped") || strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("unexpected log:\n%s", logs.String())
	}

	// About a second at 200 records/s.
	if n := loggedCount(t, logs.String(), "produced"); n < 50 || n > 300 {
		t.Fatalf("produced %d records in 1s at 200/s", n)
	}

	got := consumeAll(t, b, topic, 50)
	dec := dashstream.NewDecoder(dashstream.DecoderConfig{})
	for _, r := range got {
		d, err := dec.Decode(r.Value)
		if err != nil {
			t.Fatalf("offset %d: %v", r.Offset, err)
		}
		if h := d.Headers[0]; h.ThreadID != string(r.Key) {
			t.Fatalf("offset %d: key %q, thread %q", r.Offset, r.Key, h.ThreadID)
		}
	}
}

// loggedCount returns the integer logged as key=N.
func loggedCount(t *testing.T, logs, key string) int {
	t.Helper()
	_, rest, ok := strings.Cut(logs, " "+key+"=")
	if !ok {
		t.Fatalf("no %s in log:\n%s", key, logs)
	}
	digits, _, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(strings.TrimSpace(digits))
	if err != nil {
		t.Fatalf("%s=%q: %v", key, digits, err)
	}
	return n
}

// consumeAll reads topic from the start until at least want records arrived
// and a poll returns nothing more.
func consumeAll(t *testing.T, b *Broker, topic string, want int) []*kgo.Record {
	t.Helper()
	cl := newTestClient(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var out []*kgo.Record
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		before := len(out)
		out = append(out, fs.Records()...)
		if len(out) >= want && len(out) == before {
			return out
		}
	}
	t.Fatalf("consumed %d records, want at least %d", len(out), want)
	return nil
}

func TestRunDemoLogsEachFailureKindOnce(t *testing.T) {
	b := startTestBroker(t, "t")
	// Every record is larger than a batch may be: each fails at once with
	// MESSAGE_TOO_LARGE.
	cl := newTestClient(t, b, kgo.ProducerBatchMaxBytes(512))
	cfg := WorkloadConfig{Rate: 200, Tenant: strings.Repeat("x", 600), CompressAbove: -1}

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := RunDemo(ctx, cl, "t", cfg, log); err != nil {
		t.Fatalf("RunDemo: %v", err)
	}
	if n := strings.Count(logs.String(), "demo produce failed"); n != 1 {
		t.Fatalf("logged %d produce failures, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "produced=0") || strings.Contains(logs.String(), "failed=0") || strings.Contains(logs.String(), "failed=1 ") {
		t.Fatalf("summary does not count failures:\n%s", logs.String())
	}
}

func TestRunDemoRejectsEmptyTopic(t *testing.T) {
	if err := RunDemo(context.Background(), nil, "", WorkloadConfig{}, discardLogger()); err == nil {
		t.Fatal("want error")
	}
}
