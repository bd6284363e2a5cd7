package app

// The end-to-end harness: a whole gateway (app.New + Run) against the real
// Kafka and Redis started by `make test` (internal/testenv), driven by real
// WebSocket clients (internal/wsclient). Tests skip without the services
// unless DASHSTREAM_INTEGRATION=1, where a missing service fails them.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/dashflow/dashstream-gateway/internal/config"
	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// go-redis keeps a pool reaper per client until Close; kgo's
		// internal timers may outlive a closed client by a tick.
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
		// After a Redis outage, a closed go-redis pool's background dial
		// retry sleeps up to a second before it sees the pool closed and
		// returns: bounded, and the library's own.
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"),
	)
}

// gateway is one running gateway instance.
type gateway struct {
	*App
	t      testing.TB
	env    map[string]string
	cancel context.CancelFunc
	done   chan error
	base   string // http://host:port
	ws     string // ws://host:port/ws
}

// baseEnv is what every test gateway gets: loopback, free port, short
// intervals so tests are fast, earliest start so produced records are seen.
func baseEnv(t testing.TB) map[string]string {
	return map[string]string{
		"WEBSOCKET_HOST": "127.0.0.1", "WEBSOCKET_PORT": "0",
		"KAFKA_AUTO_OFFSET_RESET":       "earliest",
		"KAFKA_PROGRESS_INTERVAL_SECS":  "0.2",
		"KAFKA_LAG_CHECK_INTERVAL_SECS": "0.5",
		"WEBSOCKET_RESUME_WAIT_MS":      "300",
		"SHUTDOWN_TIMEOUT_SECS":         "10",
		"EXPECTED_SCHEMAS_PATH":         t.TempDir() + "/schemas.json",
		"INSTANCE_ID":                   "test-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		"LOG_LEVEL":                     "warn",
	}
}

// startGateway runs a gateway with baseEnv overridden by env, and stops it
// at cleanup. KAFKA_BROKERS and KAFKA_TOPIC must be in env.
func startGateway(t testing.TB, env map[string]string) *gateway {
	t.Helper()
	full := baseEnv(t)
	for k, v := range env {
		full[k] = v
	}
	g := &gateway{t: t, env: full}
	g.start()
	t.Cleanup(func() { g.stop() })
	return g
}

func (g *gateway) start() {
	g.t.Helper()
	cfg, err := config.Load(nil, func(k string) string { return g.env[k] })
	if err != nil {
		g.t.Fatalf("config: %v", err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{g.t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := New(cfg, log, Options{})
	if err != nil {
		g.t.Fatalf("app.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.App, g.cancel, g.done = a, cancel, make(chan error, 1)
	go func() { g.done <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-g.done:
		g.done <- err
		g.t.Fatalf("gateway stopped before ready: %v", err)
	case <-time.After(60 * time.Second):
		g.t.Fatal("gateway not ready within 60s")
	}
	g.base = "http://" + a.HTTPAddr()
	g.ws = "ws://" + a.HTTPAddr() + "/ws"
}

// stop shuts the gateway down (idempotent) and returns Run's error.
func (g *gateway) stop() error {
	if g.cancel == nil {
		return nil
	}
	g.cancel()
	g.cancel = nil
	select {
	case err := <-g.done:
		return err
	case <-time.After(30 * time.Second):
		g.t.Error("gateway did not stop within 30s")
		return nil
	}
}

// restart stops the gateway and starts a new one with the same settings
// (same INSTANCE_ID, so it continues from its saved progress).
func (g *gateway) restart() {
	g.t.Helper()
	if err := g.stop(); err != nil {
		g.t.Fatalf("stop: %v", err)
	}
	g.start()
}

// get fetches a path of the gateway's HTTP API.
func (g *gateway) get(path string) (int, []byte) {
	g.t.Helper()
	resp, err := http.Get(g.base + path)
	if err != nil {
		g.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// dial connects a client that sends resume (nil: none).
func (g *gateway) dial(resume *wsclient.Resume) *wsclient.Conn {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := wsclient.Dial(ctx, g.ws, wsclient.Options{Resume: resume})
	if err != nil {
		g.t.Fatalf("dial: %v", err)
	}
	g.t.Cleanup(func() { c.CloseNow() })
	return c
}

// kafkaEnv is the shared real Kafka with a fresh topic of n partitions.
func kafkaEnv(t testing.TB, partitions int32) (*testenv.KafkaEnv, string) {
	t.Helper()
	k := testenv.Kafka(t)
	return k, k.Topic(t, partitions)
}

// gatewayEnv is the env for a gateway on k's brokers and topic.
func gatewayEnv(k *testenv.KafkaEnv, topic string) map[string]string {
	return map[string]string{"KAFKA_BROKERS": strings.Join(k.Brokers, ","), "KAFKA_TOPIC": topic}
}

// event encodes a valid DashStream Event of thread at seq (plain framing).
func event(t testing.TB, thread string, seq uint64) []byte {
	t.Helper()
	msg := &dashstreampb.DashStreamMessage{Message: &dashstreampb.DashStreamMessage_Event{Event: &dashstreampb.Event{
		Header: &dashstreampb.Header{ThreadId: thread, Sequence: seq, TimestampUs: time.Now().UnixMicro(),
			Type: dashstreampb.MessageType_MESSAGE_TYPE_EVENT, TenantId: "test"},
		EventType: dashstreampb.EventType_EVENT_TYPE_NODE_START, NodeId: "n"}}}
	v, err := dashstream.Encode(msg, dashstream.FramingPlain)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// produceEvents produces n events of thread "t<p>" to partition p (sequences
// continuing from seq0+1) and returns their offsets and values.
func produceEvents(t testing.TB, k *testenv.KafkaEnv, topic string, p int32, seq0 uint64, n int) ([]int64, [][]byte) {
	t.Helper()
	vals := make([][]byte, n)
	for i := range vals {
		vals[i] = event(t, "t"+strconv.Itoa(int(p)), seq0+uint64(i)+1)
	}
	return k.Produce(t, topic, p, vals...), vals
}

// produceRaw produces arbitrary values (invalid ones included) to p.
func produceRaw(t testing.TB, k *testenv.KafkaEnv, topic string, p int32, values ...[]byte) []int64 {
	t.Helper()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Partition: p, Value: v}
	}
	return k.ProduceRecords(t, recs...)
}

// received is what a client got: records and control frames in order.
type received struct {
	records  []wsclient.Record
	controls []wsclient.Control
}

// readN reads until n records arrived (controls are collected too).
func readN(t testing.TB, c *wsclient.Conn, n int, timeout time.Duration) received {
	t.Helper()
	return readUntil(t, c, timeout, func(r received) bool { return len(r.records) >= n })
}

// readUntil reads until done returns true or fails the test at timeout.
func readUntil(t testing.TB, c *wsclient.Conn, timeout time.Duration, done func(received) bool) received {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var r received
	for !done(r) {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("read after %d records, controls %s: %v", len(r.records), controlTypes(r.controls), err)
		}
		if m.Kind == wsclient.KindRecord {
			rec := m.Record
			rec.Value = append([]byte(nil), rec.Value...)
			r.records = append(r.records, rec)
		} else {
			r.controls = append(r.controls, m.Control)
		}
	}
	return r
}

// hasControl reports whether a control frame of type typ was received.
func (r received) hasControl(typ string) bool {
	for _, c := range r.controls {
		if c.Type == typ {
			return true
		}
	}
	return false
}

func controlTypes(cs []wsclient.Control) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s ", c.Type)
	}
	return b.String()
}

// offsetsOf groups received offsets per partition, in arrival order.
func offsetsOf(recs []wsclient.Record) map[int32][]int64 {
	out := map[int32][]int64{}
	for _, r := range recs {
		out[r.Partition] = append(out[r.Partition], r.Offset)
	}
	return out
}

// testWriter sends log lines to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
