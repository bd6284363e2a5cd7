package kafka

// Integration tests against real Apache Kafka (internal/testenv): skipped
// without KAFKA_BROKERS, failed instead under DASHSTREAM_INTEGRATION=1.

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dashflow/dashstream-gateway/internal/metrics"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// realKafka returns the shared cluster, a fresh topic (and its DLQ topic)
// and a consumer Config reading it with a progress group of its own.
func realKafka(t *testing.T, partitions int32) (*testenv.KafkaEnv, string, Config) {
	t.Helper()
	k := testenv.Kafka(t)
	topic := k.Topic(t, partitions)
	cfg := testConfig(k.Brokers, topic)
	cfg.InstanceID = topic
	return k, topic, cfg
}

func TestIntegrationExactDeliveryEveryPartition(t *testing.T) {
	t.Parallel()
	k, topic, cfg := realKafka(t, 4)
	values := validVectors(t)
	type coord struct {
		p   int32
		off int64
	}
	want := map[coord][]byte{}
	for p := range int32(4) {
		for i, off := range k.Produce(t, topic, p, values...) {
			want[coord{p, off}] = values[i]
		}
	}
	r := startConsumer(t, cfg)
	eventually(t, "every record", func() bool { return r.sink.count() == len(want) })
	for p, recs := range r.sink.byPartition() {
		checkChain(t, recs, -1)
		for _, rec := range recs {
			if v, ok := want[coord{p, rec.Offset}]; !ok || !bytes.Equal(v, rec.Value) {
				t.Fatalf("p%d offset %d: not the produced record", p, rec.Offset)
			}
		}
	}
	if got := r.Partitions(); !slices.Equal(got, []int32{0, 1, 2, 3}) {
		t.Fatalf("partitions %v", got)
	}
}

func TestIntegrationBatchCompressionCodecs(t *testing.T) {
	t.Parallel()
	codecs := map[string]kgo.CompressionCodec{
		"zstd": kgo.ZstdCompression(), "lz4": kgo.Lz4Compression(),
		"snappy": kgo.SnappyCompression(), "gzip": kgo.GzipCompression(),
	}
	values := validVectors(t)
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			k, topic, cfg := realKafka(t, 1)
			prod := k.Client(t, kgo.ProducerBatchCompression(codec), kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.ProducerLinger(50*time.Millisecond))
			offs := produce(t, prod, topic, 0, values...)
			r := startConsumer(t, cfg)
			eventually(t, "every record", func() bool { return r.sink.count() == len(values) })
			for i, rec := range r.sink.records() {
				if rec.Offset != offs[i] || !bytes.Equal(rec.Value, values[i]) || rec.Skipped != "" {
					t.Fatalf("record %d: offset %d (want %d), skipped %q, value equal %v",
						i, rec.Offset, offs[i], rec.Skipped, bytes.Equal(rec.Value, values[i]))
				}
			}
		})
	}
}

func TestIntegrationDLQRecord(t *testing.T) {
	t.Parallel()
	k, topic, cfg := realKafka(t, 2)
	bad := vector(t, "invalid_zstd_corrupt")
	offs := k.Produce(t, topic, 1, vector(t, "event_node_end_plain"), bad, nil)
	r := startConsumer(t, cfg)
	eventually(t, "records and markers", func() bool { return r.sink.count() == 3 })
	recs := r.sink.records()
	if recs[1].Skipped != "bad_zstd" || recs[2].Skipped != "payload_missing" {
		t.Fatalf("markers %q %q", recs[1].Skipped, recs[2].Skipped)
	}
	dead := readAll(t, k.Brokers, topic+"-dlq", 2)
	byOffset := map[int64]*kgo.Record{}
	for _, d := range dead {
		var msg dlqMessage
		if err := json.Unmarshal(d.Value, &msg); err != nil {
			t.Fatal(err)
		}
		byOffset[msg.KafkaOffset] = d
	}
	checkDLQRecord(t, byOffset[offs[1]], topic, 1, offs[1], bad, "bad_zstd", DefaultGroupID+"."+topic)
	checkDLQRecord(t, byOffset[offs[2]], topic, 1, offs[2], nil, "payload_missing", DefaultGroupID+"."+topic)
	eventually(t, "DLQ sends counted", func() bool {
		return testutil.ToFloat64(r.m.DLQSends.WithLabelValues("bad_zstd")) == 1
	})
}

func TestIntegrationRestartContinuity(t *testing.T) {
	t.Parallel()
	k, topic, cfg := realKafka(t, 4)
	v := vector(t, "event_node_end_plain")
	for p := range int32(4) {
		k.Produce(t, topic, p, v, v, v)
	}
	first := startConsumer(t, cfg)
	eventually(t, "first run", func() bool { return first.sink.count() == 12 })
	first.stop()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	saved, err := k.Admin.FetchOffsets(ctx, DefaultGroupID+"."+cfg.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(4) {
		if o, ok := saved.Lookup(topic, p); !ok || o.At != 3 {
			t.Fatalf("saved progress of p%d: %+v, want 3", p, o)
		}
	}
	for p := range int32(4) {
		k.Produce(t, topic, p, v, v)
	}
	second := startConsumer(t, cfg)
	eventually(t, "second run", func() bool { return second.sink.count() == 8 })
	for p, recs := range second.sink.byPartition() {
		checkChain(t, recs, 2)
		if recs[0].Offset != 3 || len(recs) != 2 {
			t.Fatalf("p%d: restart at %d with %d records, want 3 with 2", p, recs[0].Offset, len(recs))
		}
	}
}

func TestIntegrationOldDataClassification(t *testing.T) {
	t.Parallel()
	k, topic, cfg := realKafka(t, 1)
	bad := vector(t, "invalid_truncated_plain")
	k.Produce(t, topic, 0, bad, bad)
	r := startConsumer(t, cfg)
	eventually(t, "history", func() bool { return r.sink.count() == 2 })
	k.Produce(t, topic, 0, bad)
	eventually(t, "new data", func() bool { return r.sink.count() == 3 })
	if got := testutil.ToFloat64(r.m.OldDataDecodeErrors); got != 2 {
		t.Errorf("old data errors %v, want 2", got)
	}
	if got := testutil.ToFloat64(r.m.KafkaMessages.WithLabelValues(metrics.StatusError)); got != 1 {
		t.Errorf("new data errors %v, want 1", got)
	}
}

func TestIntegrationNewPartitionPickedUp(t *testing.T) {
	t.Parallel()
	k, topic, cfg := realKafka(t, 2)
	r := startConsumer(t, cfg)
	eventually(t, "connected", func() bool { return len(r.Partitions()) == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := k.Admin.CreatePartitions(ctx, 1, topic); err != nil {
		t.Fatal(err)
	}
	eventually(t, "new partition", func() bool { return slices.Equal(r.Partitions(), []int32{0, 1, 2}) })
	v := vector(t, "event_node_end_plain")
	offs := k.Produce(t, topic, 2, v, v)
	eventually(t, "records of the new partition", func() bool { return len(r.sink.byPartition()[2]) == 2 })
	if got := r.sink.byPartition()[2]; got[0].Offset != offs[0] || got[1].Offset != offs[1] {
		t.Fatalf("new partition offsets %d, %d", got[0].Offset, got[1].Offset)
	}
}

// Partitions added to the topic are read within a few seconds without the
// slow partition check (the 1 s metadata health check finds them), from
// their log start, and the sink hears of them, with that offset, before any
// of their records is published. Partitions read from the consumer's start
// are not reported.
func TestIntegrationNewPartitionsSeenByHealthCheck(t *testing.T) {
	t.Parallel()
	k, topic, cfg := realKafka(t, 2)
	cfg.PartitionCheckInterval = time.Hour
	r := startConsumer(t, cfg)
	eventually(t, "connected", func() bool { return len(r.Partitions()) == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	created := time.Now()
	resp, err := k.Admin.CreatePartitions(ctx, 2, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	v := vector(t, "event_node_end_plain")
	offs := k.Produce(t, topic, 3, v, v, v)
	eventually(t, "new partitions", func() bool { return slices.Equal(r.Partitions(), []int32{0, 1, 2, 3}) })
	seen := time.Since(created)
	eventually(t, "records of the new partition", func() bool { return len(r.sink.byPartition()[3]) == 3 })
	if got := r.sink.byPartition()[3]; got[0].Offset != offs[0] || offs[0] != 0 {
		t.Fatalf("new partition starts at %d, produced from %d", got[0].Offset, offs[0])
	}
	added, early := r.sink.addedPartitions()
	if !maps.Equal(added, map[int32]int64{2: 0, 3: 0}) || early != 0 {
		t.Fatalf("PartitionsAdded reported %v with %d of their records published before, want {2:0 3:0} before any", added, early)
	}
	t.Logf("new partitions read %v after their creation", seen.Round(time.Millisecond))
	if seen > 10*time.Second {
		t.Errorf("new partitions read %v after their creation, want within a few seconds", seen)
	}
}

func TestIntegrationTransactionsAndPause(t *testing.T) {
	t.Parallel()
	k, topic, cfg := realKafka(t, 1)
	v, bad := vector(t, "event_node_end_plain"), vector(t, "invalid_framing_0x02")
	txn := k.Client(t, kgo.TransactionalID(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
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
	k.Produce(t, topic, 0, bad, v)

	cfg.OnDecodeError = PolicyPause
	r := startConsumer(t, cfg)
	eventually(t, "paused after the committed records", func() bool { return len(r.Paused()) == 1 && r.sink.count() == 4 })
	if err := r.ResumePartition(ctx, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "marker and the record after it", func() bool { return r.sink.count() == 6 })
	recs := r.sink.records()
	checkChain(t, recs, -1)
	if recs[4].Skipped != "invalid_protobuf" || recs[5].Skipped != "" {
		t.Fatalf("after resume: %+v, %+v", recs[4], recs[5])
	}
	eventually(t, "caught up, not stalled", func() bool {
		return testutil.ToFloat64(r.m.KafkaConsumerLag.WithLabelValues("0")) == 0 && !r.Stalled(0)
	})
}
