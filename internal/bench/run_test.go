package bench

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/devbroker"
	"github.com/dashflow/dashstream-gateway/internal/hub"
	"github.com/dashflow/dashstream-gateway/internal/kafka"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lazyTopo forwards to the consumer, which is built after the hub.
type lazyTopo struct {
	mu sync.Mutex
	c  *kafka.Consumer
}

func (t *lazyTopo) get() *kafka.Consumer { t.mu.Lock(); defer t.mu.Unlock(); return t.c }
func (t *lazyTopo) Partitions() []int32 {
	if c := t.get(); c != nil {
		return c.Partitions()
	}
	return nil
}
func (t *lazyTopo) HighWatermark(p int32) (int64, bool) {
	if c := t.get(); c != nil {
		return c.HighWatermark(p)
	}
	return 0, false
}

// LatestHighWatermark answers with the consumer's cached watermark (the
// bench resumes no cursor beyond it).
func (t *lazyTopo) LatestHighWatermark(_ context.Context, p int32) (int64, error) {
	if o, ok := t.HighWatermark(p); ok {
		return o, nil
	}
	return 0, errors.New("bench: no watermark yet")
}

// startGateway runs the real pipeline in process without the app package:
// the development broker (kfake), the Kafka consumer, the hub on httptest.
func startGateway(t *testing.T, partitions int32) Target {
	t.Helper()
	return startGatewayWith(t, partitions, false)
}

// startGatewayWith is startGateway; scan makes filtered clients scan every
// record instead of reading the thread and type indexes
// (WEBSOCKET_FILTER_INDEX=off).
func startGatewayWith(t *testing.T, partitions int32, scan bool) Target {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	b, err := devbroker.StartBroker(devbroker.BrokerConfig{Addr: "127.0.0.1:0", Partitions: partitions,
		Topics: []string{"bench", "bench-dlq"}}, log)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(nil)
	mem := replay.NewMemory(replay.MemoryConfig{})
	topo := &lazyTopo{}
	h := hub.New(hub.Config{ResumeWait: 200 * time.Millisecond, ScanFilters: scan}, replay.NewTiers(mem, nil), topo, m, log)
	c, err := kafka.New(kafka.Config{Brokers: b.Addrs(), Topic: "bench", ProgressInterval: time.Second}, h, m, log)
	if err != nil {
		t.Fatal(err)
	}
	topo.mu.Lock()
	topo.c = c
	topo.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sse" {
			h.ServeSSE(w, r, auth.Identity{})
			return
		}
		h.ServeWS(w, r, auth.Identity{}, nil)
	}))
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		h.Shutdown(sctx)
		srv.Close()
		cancel()
		<-done
		b.Close()
	})
	for deadline := time.Now().Add(10 * time.Second); !c.Reachable(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("consumer never reached the broker")
		}
	}
	return Target{URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws", Brokers: b.Addrs(), Topic: "bench",
		PID: os.Getpid(), InProcess: true, Mode: "test"}
}

func TestRunDeliversExactly(t *testing.T) {
	tg := startGateway(t, 4)
	cfg := Config{Clients: 20, IdleClients: 10, Rate: 200, Size: 256, Duration: 2 * time.Second,
		Warmup: 300 * time.Millisecond, Grace: 5 * time.Second}
	res, err := Run(context.Background(), cfg, tg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v latency %+v", *res, res.LatencyMs)
	if res.Lost != 0 || res.Duplicated != 0 || res.OutOfOrder != 0 || res.ClientErrors != 0 || res.ProduceErrors != 0 {
		t.Fatalf("inexact delivery: %+v", *res)
	}
	if res.Partitions != 4 || res.Produced < 400 || res.RateProduced < 150 || res.RateProduced > 250 {
		t.Fatalf("produced %d at %.0f/s over %d partitions", res.Produced, res.RateProduced, res.Partitions)
	}
	if want := int64(cfg.Clients) * int64(res.RateProduced*res.DurationS); res.DeliveredTotal != want {
		t.Fatalf("delivered %d, want %d", res.DeliveredTotal, want)
	}
	l := res.LatencyMs
	if l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.Max || l.Max > 2000 {
		t.Fatalf("latency %+v", l)
	}
	if res.ProcessRSSBytes == nil || *res.ProcessRSSBytes <= 0 || res.RSSPerIdleConnBytes == nil {
		t.Fatalf("memory not measured: %+v", *res)
	}
}

func TestConfigAndTargetChecks(t *testing.T) {
	good := Config{Clients: 1, Rate: 1, Size: 64, Duration: time.Second}
	if _, err := good.withDefaults(); err != nil {
		t.Fatal(err)
	}
	typed := Config{Clients: 1, Rate: 1, Size: 64, Duration: time.Second, FilterTypes: []string{"checkpoint", "event"}}
	if _, err := typed.withDefaults(); err != nil {
		t.Fatal(err)
	}
	bad := []Config{
		{Rate: 1, Size: 64, Duration: time.Second},
		{Clients: 1, Rate: 1, Size: 10, Duration: time.Second},
		{Clients: 1, Rate: 1, Size: 64},
		{Clients: 1, Rate: 1000000, Size: 64, Duration: time.Hour},
		{Clients: 1, Rate: 1, Size: 64, Duration: time.Second, FilterTypes: []string{"nope"}},
		{Clients: 1, Rate: 1, Size: 64, Duration: time.Second, FilterTypes: []string{"checkpoint"}, Threads: 2, FilterPerClient: true},
		{Clients: 1, Rate: 1, Size: 64, Duration: time.Second, FilterTypes: []string{"checkpoint"}, Threads: 2, JoinClients: 1},
	}
	for _, c := range bad {
		if _, err := c.withDefaults(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	targets := []Target{
		{URL: "ws://10.0.0.1:3002/ws", Brokers: []string{"127.0.0.1:9092"}, Topic: "t"},
		{URL: "ws://127.0.0.1:3002/ws", Brokers: []string{"kafka.example.com:9092"}, Topic: "t"},
		{URL: "http://127.0.0.1:3002/ws", Brokers: []string{"127.0.0.1:9092"}, Topic: "t"},
		{URL: "ws://127.0.0.1:3002/ws", Topic: "t"},
	}
	for _, tg := range targets {
		if err := checkTarget(tg); err == nil {
			t.Errorf("%+v accepted", tg)
		}
	}
	if err := checkTarget(Target{URL: "ws://localhost:1/ws", Brokers: []string{"[::1]:9092"}, Topic: "t"}); err != nil {
		t.Fatal(err)
	}
}

func TestClientAccounting(t *testing.T) {
	win := &window{}
	win.from.Store(100)
	win.to.Store(200)
	c := &client{cursor: wsclient.NewCursor(), win: win}
	before := map[int32]int64{0: 9, 1: -1, 2: 4}
	for p, o := range before {
		c.cursor.Set(p, o)
	}
	rb, _ := newRecordBuilder(64)
	rec := func(p int32, o int64, ts int64) {
		v, _ := rb.build(threadID(p, -1), 1, ts)
		c.record(wsclient.Record{Partition: p, Offset: o, Value: v}, time.Now().UnixMicro())
	}
	rec(0, 10, 150)
	rec(0, 13, 150) // 11, 12 missing
	rec(0, 12, 250) // late: fills 12, outside the window
	rec(0, 13, 150) // duplicate
	rec(1, 0, 50)
	last := map[int32]int64{0: 15, 1: 0, 2: 6} // 14, 15 and p2's 5, 6 never arrive
	if got := c.lost(before, last); got != 1+2+2 {
		t.Fatalf("lost %d, want 5", got)
	}
	if c.cursor.Duplicates != 1 || c.cursor.OutOfOrder != 1 || c.applied.Load() != 4 || c.delivered != 2 {
		t.Fatalf("dups %d ooo %d applied %d delivered %d", c.cursor.Duplicates, c.cursor.OutOfOrder, c.applied.Load(), c.delivered)
	}
}

// TestClientAccountingFiltered: a client filtered to one thread counts
// only that thread's records, flags others as foreign, and loses what its
// thread produced but never came.
func TestClientAccountingFiltered(t *testing.T) {
	win := &window{}
	win.from.Store(100)
	win.to.Store(200)
	c := &client{cursor: wsclient.NewCursor(), win: win, thread: []byte("bench-t3"), want: func() int64 { return 4 }}
	c.cursor.Set(0, -1)
	rb, _ := newRecordBuilder(64)
	rec := func(thread string, o int64) {
		v, _ := rb.build(thread, 1, 150)
		c.record(wsclient.Record{Partition: 0, Offset: o, Value: v}, time.Now().UnixMicro())
	}
	rec("bench-t3", 2) // offsets 0 and 1 belong to other threads: no loss
	rec("bench-t3", 5)
	rec("bench-t13", 6) // not its thread
	rec("bench-t3", 5)  // duplicate
	rec("bench-t3", 9)
	if got := c.lost(map[int32]int64{0: -1}, map[int32]int64{0: 9}); got != 1 {
		t.Fatalf("lost %d, want 1 (4 produced, 3 received)", got)
	}
	if c.foreign != 1 || c.cursor.Duplicates != 1 || c.applied.Load() != 3 || c.delivered != 3 {
		t.Fatalf("foreign %d dups %d applied %d delivered %d", c.foreign, c.cursor.Duplicates, c.applied.Load(), c.delivered)
	}
}

// TestRunThreads: records spread over threads (each on one partition) reach
// unfiltered clients exactly, over v1 and with v2 offered.
func TestRunThreads(t *testing.T) {
	tg := startGateway(t, 3)
	for _, v2 := range []bool{false, true} {
		cfg := Config{Clients: 6, Rate: 150, Size: 128, Duration: time.Second, Warmup: 200 * time.Millisecond,
			Grace: 5 * time.Second, Threads: 7, V2: v2}
		res, err := Run(context.Background(), cfg, tg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Lost != 0 || res.Duplicated != 0 || res.OutOfOrder != 0 || res.Foreign != 0 || res.ClientErrors != 0 || res.Produced < 100 {
			t.Fatalf("v2 %v: inexact delivery: %+v", v2, *res)
		}
		if res.V2 != v2 || res.Threads != 7 {
			t.Fatalf("result does not say what ran: %+v", *res)
		}
	}
}

// TestRunJoinAndJSON: runs with full states are joined by a burst of
// clients, each of which gets its run's full state first, while the other
// clients (v2 JSON records) receive everything exactly; CPU is measured.
func TestRunJoinAndJSON(t *testing.T) {
	tg := startGateway(t, 3)
	cfg := Config{Clients: 4, Rate: 150, Size: 256, Duration: 2 * time.Second, Warmup: 300 * time.Millisecond,
		Grace: 5 * time.Second, Threads: 5, V2: true, Format: "json", JoinClients: 12, FullStateEvery: 10}
	res, err := Run(context.Background(), cfg, tg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Lost != 0 || res.Duplicated != 0 || res.OutOfOrder != 0 || res.ClientErrors != 0 || res.DeliveredTotal == 0 {
		t.Fatalf("inexact delivery: %+v", *res)
	}
	j := res.Join
	if j == nil || j.Clients != 12 || j.Runs != 5 || j.Failed != 0 || j.FirstFullMs.P50 <= 0 || j.FirstFullMs.Max > 15000 {
		t.Fatalf("join %+v", j)
	}
	if j.LiveP99BeforeMs <= 0 || j.LiveP99DuringMs <= 0 {
		t.Fatalf("live phases not measured: %+v", j)
	}
	if res.GatewayCPUCores == nil || res.CPUMicrosPerDelivery == nil || !res.CPUIncludesLoad || res.Format != "json" {
		t.Fatalf("cpu %v per delivery %v, format %q", res.GatewayCPUCores, res.CPUMicrosPerDelivery, res.Format)
	}
}
