package kafka

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dashflow/dashstream-gateway/internal/metrics"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

func TestConsumesEveryPartitionExactly(t *testing.T) {
	c, topic := fakeCluster(t, 4)
	brokers := c.ListenAddrs()
	prod := producer(t, brokers)
	values := validVectors(t)
	want := map[int32][][]byte{}
	for i, v := range values {
		p := int32(i % 4)
		want[p] = append(want[p], v)
	}
	for p, vs := range want {
		produce(t, prod, topic, p, vs...)
	}

	r := startConsumer(t, testConfig(brokers, topic))
	eventually(t, "every record", func() bool { return r.sink.count() == len(values) })

	for p, recs := range r.sink.byPartition() {
		checkChain(t, recs, -1)
		for i, rec := range recs {
			if rec.Offset != int64(i) || !bytes.Equal(rec.Value, want[p][i]) || rec.Skipped != "" {
				t.Fatalf("p%d record %d: offset %d skipped %q, value equal %v", p, i, rec.Offset, rec.Skipped, bytes.Equal(rec.Value, want[p][i]))
			}
		}
	}
	if got := r.Partitions(); !slices.Equal(got, []int32{0, 1, 2, 3}) {
		t.Fatalf("Partitions() = %v", got)
	}
	if got := testutil.ToFloat64(r.m.KafkaMessages.WithLabelValues(metrics.StatusSuccess)); got != float64(len(values)) {
		t.Fatalf("success counter %v, want %d", got, len(values))
	}
	if r.Namespace() == "" || !r.Reachable() || r.LastMessage().IsZero() {
		t.Fatalf("namespace %q reachable %v last message %v", r.Namespace(), r.Reachable(), r.LastMessage())
	}
	eventually(t, "high watermarks", func() bool {
		hwm, ok := r.HighWatermark(0)
		return ok && hwm == int64(len(want[0]))
	})
}

func TestRecordMetadataFromHeaders(t *testing.T) {
	c, topic := fakeCluster(t, 1)
	brokers := c.ListenAddrs()
	var entries []manifestEntry
	for _, e := range manifest(t) {
		if e.Valid && e.File != nil {
			entries = append(entries, e)
		}
	}
	prod := producer(t, brokers)
	for _, e := range entries {
		produce(t, prod, topic, 0, vector(t, e.Name))
	}
	r := startConsumer(t, testConfig(brokers, topic))
	eventually(t, "every record", func() bool { return r.sink.count() == len(entries) })

	for i, rec := range r.sink.records() {
		e := entries[i]
		var want []replay.ThreadSeq
		var wantTs int64
		switch {
		case len(e.InnerEvents) > 0:
			for _, ev := range e.InnerEvents {
				want = append(want, replay.ThreadSeq{Thread: ev.ThreadID, Sequence: mustUint(t, ev.Sequence)})
			}
			wantTs = e.InnerEvents[0].TimestampUs
		case e.Header != nil:
			want = []replay.ThreadSeq{{Thread: e.Header.ThreadID, Sequence: mustUint(t, e.Header.Sequence)}}
			wantTs = e.Header.TimestampUs
		}
		if !slices.Equal(rec.Threads, want) || rec.TimestampUs != wantTs {
			t.Errorf("%s: threads %v ts %d, want %v ts %d", e.Name, rec.Threads, rec.TimestampUs, want, wantTs)
		}
	}
}

func mustUint(t testing.TB, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestProgressSavedAndRestartContinuesExactly(t *testing.T) {
	c, topic := fakeCluster(t, 4)
	brokers := c.ListenAddrs()
	prod := producer(t, brokers)
	v := vector(t, "event_node_end_plain")
	for p := range int32(4) {
		produce(t, prod, topic, p, v, v, v)
	}
	cfg := testConfig(brokers, topic)
	first := startConsumer(t, cfg)
	eventually(t, "first run", func() bool { return first.sink.count() == 12 })
	first.stop()

	adm := kadm.NewClient(producer(t, brokers))
	saved, err := adm.FetchOffsets(context.Background(), DefaultGroupID+".test")
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(4) {
		if o, ok := saved.Lookup(topic, p); !ok || o.At != 3 {
			t.Fatalf("saved progress p%d = %+v, want 3", p, o)
		}
	}

	for p := range int32(4) {
		produce(t, prod, topic, p, v, v)
	}
	second := startConsumer(t, cfg)
	eventually(t, "second run", func() bool { return second.sink.count() == 8 })
	for p, recs := range second.sink.byPartition() {
		checkChain(t, recs, 2)
		if recs[0].Offset != 3 || recs[len(recs)-1].Offset != 4 {
			t.Fatalf("p%d restarted at %d..%d, want 3..4", p, recs[0].Offset, recs[len(recs)-1].Offset)
		}
	}
}

func TestLatestStartsWarmRecordsBeforeEnd(t *testing.T) {
	c, topic := fakeCluster(t, 2)
	brokers := c.ListenAddrs()
	prod := producer(t, brokers)
	v := vector(t, "event_node_end_plain")
	produce(t, prod, topic, 0, slices.Repeat([][]byte{v}, 20)...)
	produce(t, prod, topic, 1, v, v, v)

	cfg := testConfig(brokers, topic)
	cfg.AutoOffsetReset, cfg.WarmRecords = ResetLatest, 5
	r := startConsumer(t, cfg)
	eventually(t, "warm records", func() bool { return r.sink.count() == 8 })
	got := r.sink.byPartition()
	if got[0][0].Offset != 15 || got[0][0].Prev != 14 || len(got[0]) != 5 {
		t.Fatalf("p0 started at %d (prev %d) with %d records, want 15 (prev 14) with 5", got[0][0].Offset, got[0][0].Prev, len(got[0]))
	}
	if got[1][0].Offset != 0 || len(got[1]) != 3 {
		t.Fatalf("p1 started at %d with %d records, want 0 with 3", got[1][0].Offset, len(got[1]))
	}
	checkChain(t, got[0], 14)

	produce(t, prod, topic, 0, v)
	eventually(t, "live record", func() bool { return r.sink.count() == 9 })
}

func TestNewPartitionPickedUp(t *testing.T) {
	c, topic := fakeCluster(t, 2)
	brokers := c.ListenAddrs()
	r := startConsumer(t, testConfig(brokers, topic))
	eventually(t, "connected", func() bool { return len(r.Partitions()) == 2 })

	adm := kadm.NewClient(producer(t, brokers))
	if _, err := adm.CreatePartitions(context.Background(), 2, topic); err != nil {
		t.Fatal(err)
	}
	eventually(t, "new partitions", func() bool { return slices.Equal(r.Partitions(), []int32{0, 1, 2, 3}) })
	prod := producer(t, brokers)
	v := vector(t, "event_node_end_plain")
	produce(t, prod, topic, 3, v, v)
	eventually(t, "records of the new partition", func() bool { return r.sink.count() == 2 })
	checkChain(t, r.sink.byPartition()[3], -1)
}

func TestTransactionsReadCommittedAndNoFalseStall(t *testing.T) {
	c, topic := fakeCluster(t, 1)
	brokers := c.ListenAddrs()
	v := vector(t, "event_node_end_plain")
	txn := producer(t, brokers, kgo.TransactionalID("gw-test"))
	ctx := context.Background()
	for _, commit := range []bool{true, false, true} {
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		produce(t, txn, topic, 0, v, v)
		if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	r := startConsumer(t, testConfig(brokers, topic))
	eventually(t, "committed records", func() bool { return r.sink.count() == 4 })
	// Markers are never published but move the position to the end.
	eventually(t, "lag 0", func() bool {
		return testutil.ToFloat64(r.m.KafkaConsumerLag.WithLabelValues("0")) == 0 && !r.Stalled(0)
	})
	recs := r.sink.records()
	checkChain(t, recs, -1)
	if recs[2].Offset <= recs[1].Offset+1 {
		t.Fatalf("aborted records were delivered: offsets %d, %d", recs[1].Offset, recs[2].Offset)
	}
}

func TestLagMetrics(t *testing.T) {
	c, topic := fakeCluster(t, 1)
	brokers := c.ListenAddrs()
	prod := producer(t, brokers)
	v := vector(t, "event_node_end_plain")
	produce(t, prod, topic, 0, v, v, v)
	r := startConsumer(t, testConfig(brokers, topic))
	eventually(t, "records", func() bool { return r.sink.count() == 3 })
	eventually(t, "lag metrics", func() bool {
		return testutil.ToFloat64(r.m.KafkaConsumerLag.WithLabelValues("0")) == 0 &&
			testutil.ToFloat64(r.m.KafkaCatchupPhase.WithLabelValues("0")) == 0 &&
			testutil.ToFloat64(r.m.KafkaLagOffsetAge.WithLabelValues("0")) == 0
	})
	if r.Stalled(0) {
		t.Fatal("caught-up consumer reported stalled")
	}
}

func TestResumePartitionErrors(t *testing.T) {
	c, topic := fakeCluster(t, 1)
	cfg := testConfig(c.ListenAddrs(), topic)
	r := startConsumer(t, cfg)
	ctx := context.Background()
	eventually(t, "running", func() bool { return !errors.Is(r.ResumePartition(ctx, 0), ErrNotRunning) })
	if err := r.ResumePartition(ctx, 0); !errors.Is(err, ErrNotPaused) {
		t.Fatalf("resume of a running partition: %v", err)
	}
	if err := r.ResumePartition(ctx, 9); !errors.Is(err, ErrUnknownPartition) {
		t.Fatalf("resume of an unknown partition: %v", err)
	}
	r.stop()
	if err := r.ResumePartition(ctx, 0); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("resume after stop: %v", err)
	}
	if err := r.Run(ctx); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second Run: %v", err)
	}
}

func TestRunWaitsForKafkaAndStopsCleanly(t *testing.T) {
	cfg := testConfig([]string{"127.0.0.1:1"}, "nowhere")
	cfg.ExtraOpts = append(cfg.ExtraOpts, kgo.RetryTimeout(100*time.Millisecond))
	r := startConsumer(t, cfg)
	eventually(t, "a failed dial", func() bool {
		return testutil.ToFloat64(r.m.KafkaErrorsByType.WithLabelValues("connect")) >= 1
	})
	if r.Reachable() || r.Namespace() != "" || len(r.Partitions()) != 0 {
		t.Fatal("unreachable cluster reported as reachable")
	}
	r.stop()
}

func TestConfigValidation(t *testing.T) {
	sink, m, log := &recordingSink{}, metrics.New(nil), quietLogger()
	for name, cfg := range map[string]Config{
		"no brokers":    {},
		"bad reset":     {Brokers: []string{"x:1"}, AutoOffsetReset: "middle"},
		"bad policy":    {Brokers: []string{"x:1"}, OnDecodeError: "explode"},
		"negative warm": {Brokers: []string{"x:1"}, WarmRecords: -1},
		"dlq is source": {Brokers: []string{"x:1"}, Topic: "a", DLQTopic: "a"},
		"bad security":  {Brokers: []string{"x:1"}, Security: Security{Protocol: "carrier-pigeon"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(cfg, sink, m, log); err == nil {
				t.Fatal("invalid config accepted")
			}
		})
	}
	c, err := New(Config{Brokers: []string{"x:1"}}, sink, m, log)
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.Topic != DefaultTopic || c.cfg.DLQTopic != DefaultTopic+"-dlq" || c.cfg.AutoOffsetReset != ResetLatest ||
		c.cfg.OnDecodeError != PolicySkip || c.group != DefaultGroupID+"."+c.cfg.InstanceID {
		t.Fatalf("defaults: %+v", c.cfg)
	}
}
