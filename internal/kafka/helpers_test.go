package kafka

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/dashflow/dashstream-gateway/internal/metrics"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// vectorDir holds the DashStream test vectors (the repo's copy).
func vectorDir(t testing.TB) string {
	t.Helper()
	dir := "../../testdata/dashstream"
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST.json")); err != nil {
		t.Fatalf("no test vectors: %v", err)
	}
	return dir
}

// vector returns the record value of one test vector file.
func vector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir(t), name+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// manifestEntry is the part of MANIFEST.json these tests check.
type manifestEntry struct {
	File       *string `json:"file"`
	Name       string  `json:"name"`
	Valid      bool    `json:"valid"`
	ErrorClass string  `json:"error_class"`
	Header     *struct {
		ThreadID    string `json:"thread_id"`
		Sequence    string `json:"sequence"`
		TimestampUs int64  `json:"timestamp_us"`
	} `json:"header"`
	InnerEvents []struct {
		ThreadID    string `json:"thread_id"`
		Sequence    string `json:"sequence"`
		TimestampUs int64  `json:"timestamp_us"`
	} `json:"inner_events"`
}

func manifest(t testing.TB) []manifestEntry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir(t), "MANIFEST.json"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []manifestEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		t.Fatal(err)
	}
	return entries
}

// validVectors are the values of every valid vector file, in manifest order.
func validVectors(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, e := range manifest(t) {
		if e.Valid && e.File != nil {
			out = append(out, vector(t, e.Name))
		}
	}
	return out
}

// recordingSink keeps every published record and counts Publish calls.
type recordingSink struct {
	mu    sync.Mutex
	recs  []*replay.Record
	calls int
	// added is what PartitionsAdded reported; early counts the records of
	// such a partition published before it was reported.
	added map[int32]int64
	early int
}

// PartitionsAdded implements PartitionSink.
func (s *recordingSink) PartitionsAdded(first map[int32]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.added == nil {
		s.added = map[int32]int64{}
	}
	for p, o := range first {
		s.added[p] = o
		for _, r := range s.recs {
			if r.Partition == p {
				s.early++
			}
		}
	}
}

func (s *recordingSink) addedPartitions() (map[int32]int64, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.added), s.early
}

func (s *recordingSink) Publish(recs []*replay.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, recs...)
	s.calls++
}

func (s *recordingSink) records() []*replay.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*replay.Record(nil), s.recs...)
}

// byPartition groups records by partition, in publish order.
func (s *recordingSink) byPartition() map[int32][]*replay.Record {
	out := map[int32][]*replay.Record{}
	for _, r := range s.records() {
		out[r.Partition] = append(out[r.Partition], r)
	}
	return out
}

func (s *recordingSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}

// eventually polls cond until it holds, failing the test after a while.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func quietLogger() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}

// fakeCluster starts a kfake cluster with topic and its DLQ topic.
func fakeCluster(t testing.TB, partitions int32, opts ...kfake.Opt) (*kfake.Cluster, string) {
	t.Helper()
	const topic = "dashstream-test"
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic, topic+"-dlq")}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, topic
}

// testConfig is a Config with fast loops for tests.
func testConfig(brokers []string, topic string) Config {
	return Config{
		Brokers:                brokers,
		Topic:                  topic,
		InstanceID:             "test",
		AutoOffsetReset:        ResetEarliest,
		ProgressInterval:       50 * time.Millisecond,
		LagCheckInterval:       50 * time.Millisecond,
		PartitionCheckInterval: 50 * time.Millisecond,
		ShutdownTimeout:        2 * time.Second,
		ExtraOpts:              []kgo.Opt{kgo.FetchMaxWait(200 * time.Millisecond), kgo.MetadataMinAge(100 * time.Millisecond)},
	}
}

// running is a Consumer run by a test.
type running struct {
	*Consumer
	sink *recordingSink
	m    *metrics.Metrics
	stop func() // cancels Run and waits for it
}

// startConsumer runs a Consumer until stop or the end of the test.
func startConsumer(t testing.TB, cfg Config) *running {
	t.Helper()
	sink := &recordingSink{}
	m := metrics.New(nil)
	c, err := New(cfg, sink, m, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &running{Consumer: c, sink: sink, m: m, stop: stop}
}

// producer returns a client that produces to explicit partitions.
func producer(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produce writes values to topic/partition and returns their offsets.
func produce(t testing.TB, cl *kgo.Client, topic string, p int32, values ...[]byte) []int64 {
	t.Helper()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Partition: p, Value: v}
	}
	return produceRecords(t, cl, recs...)
}

func produceRecords(t testing.TB, cl *kgo.Client, recs ...*kgo.Record) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	offs := make([]int64, len(res))
	for i, r := range res {
		offs[i] = r.Record.Offset
	}
	return offs
}

// readAll consumes n records of topic from the start.
func readAll(t testing.TB, brokers []string, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200 * time.Millisecond)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", len(out), n, topic)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// checkChain verifies per-partition order and the Prev chain: each record's
// Prev is the offset of the record published before it.
func checkChain(t testing.TB, recs []*replay.Record, firstPrev int64) {
	t.Helper()
	prev := firstPrev
	for _, r := range recs {
		if r.Prev != prev {
			t.Fatalf("p%d offset %d: Prev %d, want %d", r.Partition, r.Offset, r.Prev, prev)
		}
		if r.Offset <= prev {
			t.Fatalf("p%d offset %d not after %d", r.Partition, r.Offset, prev)
		}
		prev = r.Offset
	}
}
