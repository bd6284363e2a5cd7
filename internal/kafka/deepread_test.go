package kafka

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// fetchCounter counts the Fetch requests (key 1) a client sends.
type fetchCounter struct{ n atomic.Int64 }

func (f *fetchCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == 1 && err == nil {
		f.n.Add(1)
	}
}

func newDeepReader(t *testing.T, brokers []string, topic string, hooks ...kgo.Hook) *DeepReader {
	t.Helper()
	d, err := NewDeepReader(DeepReadConfig{Brokers: brokers, Topic: topic, MaxConcurrent: 2,
		ExtraOpts: []kgo.Opt{kgo.WithHooks(hooks...)}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// TestIntegrationDeepReadExactPages: pages read straight from real Kafka
// return exactly the records after the requested offset, with encoded
// frames, a Prev chain starting at the requested offset, decode failures as
// skipped markers, and the log start once records were deleted.
func TestIntegrationDeepReadExactPages(t *testing.T) {
	t.Parallel()
	k, topic, _ := realKafka(t, 2)
	values := validVectors(t)
	offs := k.Produce(t, topic, 1, values...)
	bad := k.Produce(t, topic, 1, []byte{0x02, 0xff})
	d := newDeepReader(t, k.Brokers, topic)
	ctx := context.Background()

	recs, logStart, err := d.ReadAfter(ctx, 1, offs[2], 1000)
	if err != nil {
		t.Fatal(err)
	}
	if logStart != 0 || len(recs) != len(values)-3+1 {
		t.Fatalf("log start %d, %d records; want 0 and %d", logStart, len(recs), len(values)-2)
	}
	prev := offs[2]
	for i, r := range recs[:len(recs)-1] {
		if r.Offset != offs[3+i] || r.Prev != prev || !bytes.Equal(r.Value, values[3+i]) || len(r.Frame) == 0 {
			t.Fatalf("record %d: offset %d prev %d (want %d, %d) or value/frame wrong", i, r.Offset, r.Prev, offs[3+i], prev)
		}
		prev = r.Offset
	}
	if last := recs[len(recs)-1]; last.Offset != bad[0] || last.Skipped != "invalid_protobuf" {
		t.Fatalf("last record %+v, want a skipped marker at %d", last, bad[0])
	}
	if page, _, _ := d.ReadAfter(ctx, 1, offs[0], 2); len(page) != 2 || page[1].Offset != offs[2] {
		t.Fatalf("max 2: got %d records", len(page))
	}

	k.DeleteRecords(t, topic, 1, offs[5])
	recs, logStart, err = d.ReadAfter(ctx, 1, offs[1], 10)
	if err != nil || logStart != offs[5] || len(recs) != 0 {
		t.Fatalf("after deletion: %d records, log start %d, err %v; want none and %d", len(recs), logStart, err, offs[5])
	}
	if end, err := d.EndOffset(ctx, 1); err != nil || end != bad[0]+1 {
		t.Fatalf("end offset %d, %v; want %d", end, err, bad[0]+1)
	}
	if ls, err := d.LogStart(ctx, 1, 0); err != nil || ls != offs[5] {
		t.Fatalf("log start %d, %v; want %d", ls, err, offs[5])
	}
}

// TestIntegrationDeepReadLogStartAge: a cached log start is answered only
// while it is younger than the caller's maxAge; an older one is asked of
// Kafka again (a moved log start shows), and maxAge 0 always asks.
func TestIntegrationDeepReadLogStartAge(t *testing.T) {
	t.Parallel()
	k, topic, _ := realKafka(t, 1)
	offs := k.Produce(t, topic, 0, validVectors(t)...)
	d := newDeepReader(t, k.Brokers, topic)
	ctx := context.Background()
	if ls, err := d.LogStart(ctx, 0, time.Minute); err != nil || ls != offs[0] {
		t.Fatalf("log start %d, %v; want %d", ls, err, offs[0])
	}
	k.DeleteRecords(t, topic, 0, offs[3])
	if ls, err := d.LogStart(ctx, 0, time.Minute); err != nil || ls != offs[0] {
		t.Fatalf("cached log start %d, %v; want the cached %d", ls, err, offs[0])
	}
	d.startMu.Lock()
	d.startAt = d.startAt.Add(-6 * time.Second) // the cached answer is now 6 s old
	d.startMu.Unlock()
	if ls, err := d.LogStart(ctx, 0, 5*time.Second); err != nil || ls != offs[3] {
		t.Fatalf("log start with a 6 s old cache and maxAge 5 s: %d, %v; want Kafka's %d", ls, err, offs[3])
	}
	k.DeleteRecords(t, topic, 0, offs[4])
	if ls, err := d.LogStart(ctx, 0, 0); err != nil || ls != offs[4] {
		t.Fatalf("log start with maxAge 0: %d, %v; want %d", ls, err, offs[4])
	}
}

// TestDeepReadUnreachable: with no broker listening, a log start look-up
// and a read fail within a few seconds (deepRetryTimeout), not after the
// caller's whole deadline, so a resume can answer REPLAY_UNAVAILABLE.
func TestDeepReadUnreachable(t *testing.T) {
	t.Parallel()
	brokers := []string{"127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))}
	d := newDeepReader(t, brokers, "unreachable")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if ls, err := d.LogStart(ctx, 0, 0); err == nil {
		t.Fatalf("log start %d without a broker", ls)
	}
	if recs, _, err := d.ReadAfter(ctx, 0, 10, 5); err == nil {
		t.Fatalf("%d records without a broker", len(recs))
	}
	if took := time.Since(start); took > 40*time.Second {
		t.Fatalf("failing took %v", took)
	}
	t.Logf("both failed after %v", time.Since(start).Round(time.Millisecond))
}

// TestIntegrationDeepReadCoalesces: identical reads in flight at once share
// one fetch.
func TestIntegrationDeepReadCoalesces(t *testing.T) {
	t.Parallel()
	k, topic, _ := realKafka(t, 1)
	k.Produce(t, topic, 0, validVectors(t)...)
	var fetches fetchCounter
	d := newDeepReader(t, k.Brokers, topic, &fetches)
	if _, _, err := d.ReadAfter(context.Background(), 0, -1, 5); err != nil { // warm metadata
		t.Fatal(err)
	}
	before := fetches.n.Load()
	d.sem <- struct{}{} // hold the reads until all have joined
	d.sem <- struct{}{}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if recs, _, err := d.ReadAfter(context.Background(), 0, 0, 3); err != nil || len(recs) != 3 {
				t.Errorf("read: %d records, %v", len(recs), err)
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // let every reader join the flight
	<-d.sem
	<-d.sem
	wg.Wait()
	if n := fetches.n.Load() - before; n != 1 {
		t.Fatalf("20 identical concurrent reads sent %d fetches, want 1", n)
	}
}

// TestIntegrationDeepReadSkipsAbortedTransactions: when a whole fetch
// response holds only an aborted transaction (bigger than FetchMaxBytes),
// the read goes on past it and returns the committed records after it,
// Prev-chained from the requested offset; without that the page would be
// empty and prove nothing.
func TestIntegrationDeepReadSkipsAbortedTransactions(t *testing.T) {
	t.Parallel()
	k, topic, _ := realKafka(t, 1)
	v := vector(t, "event_node_end_plain")
	before := k.Produce(t, topic, 0, v)[0]
	txn := k.Client(t, kgo.TransactionalID(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for range 3 { // three aborted transactions of 16 KiB each
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		big := make([][]byte, 16)
		for i := range big {
			big[i] = make([]byte, 1<<10)
			crand.Read(big[i]) // incompressible: the batch stays 16 KiB
		}
		produce(t, txn, topic, 0, big...)
		if err := txn.EndTransaction(context.Background(), kgo.TryAbort); err != nil {
			t.Fatal(err)
		}
	}
	committed := k.Produce(t, topic, 0, v, v)
	d, err := NewDeepReader(DeepReadConfig{Brokers: k.Brokers, Topic: topic, FetchMaxBytes: 4 << 10}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	recs, _, err := d.ReadAfter(context.Background(), 0, before, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Offset != committed[0] || recs[1].Offset != committed[1] ||
		recs[0].Prev != before || recs[1].Prev != committed[0] {
		t.Fatalf("read after %d: %d records %+v; want %v, Prev-chained from %d", before, len(recs), recs, committed, before)
	}
}

// A partition added to the topic after the deep reader cached the topic's
// metadata is read at once (the cache is asked again), not refused as
// unknown until the cached metadata ages out.
func TestIntegrationDeepReadAddedPartition(t *testing.T) {
	t.Parallel()
	k, topic, _ := realKafka(t, 1)
	v := vector(t, "event_node_end_plain")
	k.Produce(t, topic, 0, v)
	d := newDeepReader(t, k.Brokers, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := d.ReadAfter(ctx, 0, -1, 10); err != nil { // caches the metadata
		t.Fatal(err)
	}
	resp, err := k.Admin.CreatePartitions(ctx, 1, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	cl := k.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner())) // its metadata knows p1
	var offs []int64
	for range 2 {
		r, err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 1, Value: v}).First()
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, r.Offset)
	}
	recs, logStart, err := d.ReadAfter(ctx, 1, -1, 10)
	if err != nil {
		t.Fatalf("read of the added partition: %v", err)
	}
	if logStart != 0 || len(recs) != 2 || recs[0].Offset != offs[0] || recs[1].Offset != offs[1] {
		t.Fatalf("added partition: log start %d, %d records; want 0 and offsets %v", logStart, len(recs), offs)
	}
}
