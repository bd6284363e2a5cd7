package devbroker

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func startTestBroker(t *testing.T, topics ...string) *Broker {
	t.Helper()
	b, err := StartBroker(BrokerConfig{Addr: "127.0.0.1:0", Topics: topics}, discardLogger())
	if err != nil {
		t.Fatalf("StartBroker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

func newTestClient(t *testing.T, b *Broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addrs()...)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func TestBrokerProduceConsume(t *testing.T) {
	const topic = "dashstream-quality"
	b := startTestBroker(t, topic, topic+"-dlq")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	producer := newTestClient(t, b)
	want := map[string][]byte{"thread-a": []byte("one"), "thread-b": []byte("two"), "thread-c": []byte("three")}
	for k, v := range want {
		if err := producer.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(k), Value: v}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	consumer := newTestClient(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[string][]byte{}
	for len(got) < len(want) {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(got), len(want), err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Key)] = r.Value })
	}
	for k, v := range want {
		if !bytes.Equal(got[k], v) {
			t.Errorf("key %s: got %q, want %q", k, got[k], v)
		}
	}
}

func TestBrokerCreatesTopics(t *testing.T) {
	b := startTestBroker(t, "t1", "t1-dlq")
	cl := newTestClient(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	details, err := kadm.NewClient(cl).ListTopics(ctx, "t1", "t1-dlq")
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	for _, topic := range []string{"t1", "t1-dlq"} {
		d := details[topic]
		if d.Err != nil || len(d.Partitions) != defaultPartitions {
			t.Errorf("topic %s: %d partitions (err %v), want %d", topic, len(d.Partitions), d.Err, defaultPartitions)
		}
	}
}

func TestBrokerAddrTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err := StartBroker(BrokerConfig{Addr: ln.Addr().String()}, discardLogger())
	if err == nil {
		b.Close()
		t.Fatalf("StartBroker on taken address %s succeeded (listening on %v)", ln.Addr(), b.Addrs())
	}
}

func TestBrokerListensOnGivenAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	b, err := StartBroker(BrokerConfig{Addr: addr}, discardLogger())
	if err != nil {
		t.Fatalf("StartBroker(%s): %v", addr, err)
	}
	defer b.Close()
	if got := b.Addrs(); len(got) != 1 || got[0] != addr {
		t.Fatalf("Addrs() = %v, want [%s]", got, addr)
	}
}

func TestBrokerInvalidConfig(t *testing.T) {
	tests := map[string]BrokerConfig{
		"no port":             {Addr: "127.0.0.1"},
		"bad port":            {Addr: "127.0.0.1:99999"},
		"negative partitions": {Addr: "127.0.0.1:0", Partitions: -1},
	}
	for name, cfg := range tests {
		t.Run(name, func(t *testing.T) {
			if b, err := StartBroker(cfg, discardLogger()); err == nil {
				b.Close()
				t.Fatal("StartBroker succeeded")
			}
		})
	}
}

func TestBrokerWarnsOnce(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := StartBroker(BrokerConfig{Addr: "127.0.0.1:0"}, log)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if n := strings.Count(buf.String(), "level=WARN"); n != 1 {
		t.Fatalf("got %d warnings, want 1:\n%s", n, buf.String())
	}
}

func TestBrokerDataDirPersists(t *testing.T) {
	dir := t.TempDir()
	cfg := BrokerConfig{Addr: "127.0.0.1:0", Topics: []string{"persisted"}, DataDir: dir}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	b, err := StartBroker(cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: "persisted", Value: []byte("kept")}).FirstErr()
	cl.Close()
	b.Close()
	if err != nil {
		t.Fatalf("produce: %v", err)
	}

	b2 := func() *Broker {
		b, err := StartBroker(cfg, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		return b
	}()
	consumer := newTestClient(t, b2, kgo.ConsumeTopics("persisted"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("record not found after restart: %v", err)
		}
		var found bool
		fs.EachRecord(func(r *kgo.Record) { found = found || string(r.Value) == "kept" })
		if found {
			return
		}
	}
}
