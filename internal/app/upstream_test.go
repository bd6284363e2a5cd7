package app

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/config"
	"github.com/dashflow/dashstream-gateway/internal/kafka"
)

// TestUpstreamLifecycle: before Run attaches the Kafka parts, upstream
// answers the hub and the status callbacks as "nothing known yet"; after
// attach it hands out exactly the parts it was given. No I/O: franz-go
// dials lazily, and the broker address is never reached.
func TestUpstreamLifecycle(t *testing.T) {
	env := map[string]string{"KAFKA_BROKERS": "127.0.0.1:1", "KAFKA_TOPIC": "upstream-test",
		"EXPECTED_SCHEMAS_PATH": t.TempDir() + "/schemas.json"}
	cfg, err := config.Load(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	u := a.up
	if u.Consumer() != nil || u.Brokers() != nil || u.deepReader() != nil || u.Partitions() != nil || u.Namespace() != "" {
		t.Fatalf("before attach: consumer %v, brokers %v, deep reader %v, partitions %v, namespace %q; want none",
			u.Consumer(), u.Brokers(), u.deepReader(), u.Partitions(), u.Namespace())
	}
	if _, ok := u.HighWatermark(0); ok {
		t.Error("before attach: a high watermark is known")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := u.LatestHighWatermark(ctx, 0); err == nil {
		t.Error("before attach: Kafka's high watermark is known")
	}
	if resp := a.status(); !resp.Starting {
		t.Errorf("/health before attach: starting = false, want true")
	}
	if err := a.resumePartition(ctx, 0); err == nil {
		t.Error("resuming a partition before attach succeeded")
	}

	brokers := cfg.Kafka.Brokers
	deep, err := a.newDeepReader(brokers)
	if err != nil {
		t.Fatal(err)
	}
	defer deep.Close()
	c, err := kafka.New(a.kafkaConfig(brokers), a.hub, a.m, a.log)
	if err != nil {
		t.Fatal(err)
	}
	u.attach(brokers, c, deep)
	if u.Consumer() != c || u.deepReader() != deep || !slices.Equal(u.Brokers(), brokers) || !slices.Equal(a.KafkaBrokers(), brokers) {
		t.Fatalf("after attach: consumer %p (want %p), deep reader %p (want %p), brokers %v (want %v)",
			u.Consumer(), c, u.deepReader(), deep, u.Brokers(), brokers)
	}
	if resp := a.status(); resp.Starting {
		t.Errorf("/health after attach: starting = true, want false")
	}
	if ns := u.Namespace(); ns != c.Namespace() {
		t.Errorf("namespace %q, the consumer's is %q", ns, c.Namespace())
	}
}
