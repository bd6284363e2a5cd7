package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// TestFaultTopicRecreated: the topic is deleted and re-created under a
// running gateway (real Kafka, Redis tier on). Within 30 s the gateway
// adopts the new topic without a restart: the connected client is closed
// with 1012 "topic re-created"; /version's resume_namespace changes; a
// resume presenting the old namespace gets cursor_stale for every listed
// partition; a client of the new namespace reading from the start gets
// exactly the new topic's records (none of the old topic's, from memory or
// Redis); /readyz was 503 in between with a /health alert. No error path
// spins: the process's CPU time and the Kafka error count over the window
// stay bounded.
func TestFaultTopicRecreated(t *testing.T) {
	k, topic := kafkaEnv(t, 2)
	r := testenv.Redis(t)
	g := startGateway(t, redisEnv(k, topic, r.URL, nil))
	oldNS := namespaceOf(t, g)
	cleanupRedisKeys(t, r.Client, oldNS)

	var oldVals [][]byte
	for p := range int32(2) {
		_, vals := produceEvents(t, k, topic, p, 0, 5)
		oldVals = append(oldVals, vals...)
	}
	first := g.dial(&wsclient.Resume{From: wsclient.FromCursor, Offsets: cursorAll(2, -1), Namespace: oldNS})
	readN(t, first, 10, 30*time.Second)
	waitRedis(t, r.Client, oldNS, map[int32]int64{0: 4, 1: 4}, 30*time.Second)

	// The first client reads on until the server closes it.
	type closed struct {
		err  error
		at   time.Time
		recs int
	}
	closedCh := make(chan closed, 1)
	go func() {
		n := 0
		for {
			m, err := first.Next(context.Background())
			if err != nil {
				closedCh <- closed{err, time.Now(), n}
				return
			}
			if m.Kind == wsclient.KindRecord {
				n++
			}
		}
	}()

	// Watch /readyz and /health meanwhile.
	watch := watchReadiness(t, g)
	errs0 := kafkaErrors(t, g)
	cpu0, wall0 := processCPU(t), time.Now()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	deleted := time.Now()
	if _, err := k.Admin.DeleteTopics(ctx, topic); err != nil {
		t.Fatalf("delete topic: %v", err)
	}
	time.Sleep(3 * time.Second) // the gateway sees the topic missing for a while
	recreateTopic(t, k, topic, 2)
	created := time.Now()
	var newVals [][]byte
	for p, n := range map[int32]int{0: 3, 1: 2} {
		for i := range n {
			newVals = append(newVals, event(t, "new"+strconv.Itoa(int(p)), uint64(i+1)))
		}
		produceFresh(t, k.Brokers, topic, p, newVals[len(newVals)-n:])
	}

	var c closed
	select {
	case c = <-closedCh:
	case <-time.After(30*time.Second - time.Since(created)):
		t.Fatalf("client not closed within 30s of the topic's re-creation (readyz 503 seen: %v)", watch.saw503())
	}
	closeAfter := c.at.Sub(created)
	var ce *wsclient.CloseError
	if !errors.As(c.err, &ce) || ce.Code != 1012 || ce.Reason != "topic re-created" {
		t.Fatalf("client ended with %v, want close 1012 \"topic re-created\"", c.err)
	}
	if c.recs != 0 {
		t.Fatalf("client got %d records between the deletion and its close", c.recs)
	}
	cpu, wall := processCPU(t)-cpu0, time.Since(wall0)
	errs := kafkaErrors(t, g) - errs0

	newNS := namespaceOf(t, g)
	if newNS == oldNS {
		t.Fatalf("resume_namespace still %s after the client was closed", oldNS)
	}
	cleanupRedisKeys(t, r.Client, newNS)
	testenv.WaitFor(t, 30*time.Second, func() bool { code, _ := g.get("/readyz"); return code == http.StatusOK }, "/readyz 200 after adoption")
	ready := time.Since(created)
	first503, alert := watch.stop()
	if first503.IsZero() {
		t.Fatal("/readyz never 503 between the deletion and the adoption")
	}
	if !strings.Contains(alert, "topic") {
		t.Fatalf("/health alert while not ready = %q, want one about the topic", alert)
	}

	// A resume in the old namespace: stale for every listed partition, even
	// where the offset exists in the new topic.
	old := g.dial(&wsclient.Resume{From: wsclient.FromCursor, Offsets: map[int32]int64{0: 1, 1: 0}, Namespace: oldNS})
	got := readUntil(t, old, 30*time.Second, func(r *stream) bool { return r.hasControl("replay_complete") })
	var stale []int32
	for _, ctl := range got.controls("") {
		if ctl.Type == "cursor_stale" {
			var cs wsclient.CursorStale
			if err := ctl.Decode(&cs); err != nil {
				t.Fatal(err)
			}
			stale = append(stale, cs.Partition)
		}
	}
	slices.Sort(stale)
	if !slices.Equal(stale, []int32{0, 1}) {
		t.Fatalf("old-namespace resume: cursor_stale for %v, want [0 1] (controls %s)", stale, controlTypes(got.controls("")))
	}
	assertNoOld(t, "old-namespace resume", got.records(), oldVals)

	// The new namespace from the start: exactly the new topic's records.
	fresh := g.dial(&wsclient.Resume{From: wsclient.FromCursor, Offsets: cursorAll(2, -1), Namespace: newNS})
	got = readUntil(t, fresh, 30*time.Second, func(r *stream) bool {
		return r.hasControl("replay_complete") && r.n >= len(newVals)
	})
	recs := append(got.records(), drain(fresh, time.Second)...)
	assertOffsets(t, "new namespace from the start", recs, map[int32][]int64{0: {0, 1, 2}, 1: {0, 1}})
	assertNoOld(t, "new namespace", recs, oldVals)
	for _, rec := range recs {
		if !slices.ContainsFunc(newVals, func(v []byte) bool { return bytes.Equal(v, rec.Value) }) {
			t.Fatalf("p%d@%d is not a record of the new topic", rec.Partition, rec.Offset)
		}
	}
	// Redis: the new records went to the new namespace's keys only.
	waitRedis(t, r.Client, newNS, map[int32]int64{0: 2, 1: 1}, 30*time.Second)
	for p := range int32(2) {
		if n, newest := redisLen(r.Client, oldNS, p); newest != 4 || n != 5 {
			t.Fatalf("old namespace's p%d in Redis: %d entries up to %d, want its 5 old ones", p, n, newest)
		}
	}

	share := cpu.Seconds() / wall.Seconds()
	rate := errs / wall.Seconds()
	t.Logf("topic re-created: /readyz 503 %v after the deletion; client closed 1012 %v after the re-creation; ready again %v after it; "+
		"process CPU %.0f%% of a core over %v; %.0f Kafka errors (%.1f/s)",
		first503.Sub(deleted).Round(time.Millisecond), closeAfter.Round(time.Millisecond), ready.Round(time.Millisecond),
		100*share, wall.Round(time.Millisecond), errs, rate)
	if share > 0.3 {
		t.Errorf("process used %.0f%% of a core while the topic was re-created (spinning?)", 100*share)
	}
	if rate > 20 {
		t.Errorf("%.0f Kafka errors in %v: an error path spins", errs, wall)
	}
}

// assertNoOld fails when a record carries a value of the old topic.
func assertNoOld(t *testing.T, what string, recs []wsclient.Record, oldVals [][]byte) {
	t.Helper()
	for _, rec := range recs {
		if slices.ContainsFunc(oldVals, func(v []byte) bool { return bytes.Equal(v, rec.Value) }) {
			t.Fatalf("%s: p%d@%d is a record of the old topic", what, rec.Partition, rec.Offset)
		}
	}
}

// drain reads what else arrives within d (nothing is expected).
func drain(c *wsclient.Conn, d time.Duration) []wsclient.Record {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out []wsclient.Record
	for {
		m, err := c.Next(ctx)
		if err != nil {
			return out
		}
		if m.Kind == wsclient.KindRecord {
			rec := m.Record
			rec.Value = bytes.Clone(rec.Value)
			out = append(out, rec)
		}
	}
}

// recreateTopic creates topic again, retrying while Kafka still finishes
// deleting it.
func recreateTopic(t *testing.T, k *testenv.KafkaEnv, topic string, partitions int32) {
	t.Helper()
	testenv.WaitFor(t, 60*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := k.Admin.CreateTopic(ctx, partitions, 1, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			t.Logf("create topic: %v", err)
		}
		return err == nil
	}, "topic re-created")
}

// produceFresh produces values to p with a new client (one that never saw the
// old topic's metadata), retrying while the new topic's leaders settle.
func produceFresh(t *testing.T, brokers []string, topic string, p int32, values [][]byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, v := range values { // one at a time: offsets in order
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: v}).FirstErr(); err != nil {
			t.Fatalf("produce to the new topic: %v", err)
		}
	}
}

// processCPU is the CPU time this process used so far (user + system).
func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// kafkaErrors is the sum of websocket_kafka_errors_by_type_total.
func kafkaErrors(t *testing.T, g *gateway) float64 {
	t.Helper()
	v, _ := sampleValue(scrape(t, g), "websocket_kafka_errors_by_type_total", nil)
	return v
}

// readinessWatch polls /readyz every 100 ms and remembers the first 503 and
// the /health alert at that time.
type readinessWatch struct {
	mu      sync.Mutex
	first   time.Time
	alert   string
	cancel  context.CancelFunc
	stopped chan struct{}
}

func watchReadiness(t *testing.T, g *gateway) *readinessWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &readinessWatch{cancel: cancel, stopped: make(chan struct{})}
	t.Cleanup(func() { w.stop() })
	go func() {
		defer close(w.stopped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			code, _ := tryGet(ctx, g.base+"/readyz")
			if code != http.StatusServiceUnavailable {
				continue
			}
			_, body := tryGet(ctx, g.base+"/health")
			var h struct {
				Alert string `json:"alert"`
			}
			_ = json.Unmarshal(body, &h)
			w.mu.Lock()
			if w.first.IsZero() {
				w.first = time.Now()
			}
			if strings.Contains(h.Alert, "topic") || w.alert == "" {
				w.alert = h.Alert
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *readinessWatch) saw503() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.first.IsZero()
}

// stop ends the watch and returns the first 503's time and the alert seen.
func (w *readinessWatch) stop() (time.Time, string) {
	w.cancel()
	<-w.stopped
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.first, w.alert
}
