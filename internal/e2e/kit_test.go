package e2e

// The kit's gateway harness, environment, HTTP helpers and event
// producers (doc.go describes the whole kit).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/dashflow/dashstream-gateway/internal/app"
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

// gateway is one running gateway instance (app.New + Run in this process).
type gateway struct {
	*app.App
	t      testing.TB
	env    map[string]string
	opts   gatewayOptions
	cancel context.CancelFunc
	done   chan error // Run's result
	base   string     // http://host:port
	ws     string     // ws://host:port/ws
}

// gatewayOptions change how startGateway runs a gateway.
type gatewayOptions struct {
	logTo      io.Writer                        // also receives the gateway's log lines
	wrapLog    func(slog.Handler) slog.Handler  // wraps the gateway's log handler
	processEnv string                           // variables with this prefix not in env come from the process
	unready    bool                             // return once HTTP listens, before Kafka is reachable
	check      func(testing.TB, *config.Config) // sees the configuration before the gateway starts
	demo       bool                             // also produce the demo workload (dashstream demo)
}

// gatewayOption is one of startGateway's options.
type gatewayOption func(*gatewayOptions)

// logTo also writes the gateway's log lines (warn and above) to w, which
// must be safe for concurrent use (testenv.SyncBuffer).
func logTo(w io.Writer) gatewayOption { return func(o *gatewayOptions) { o.logTo = w } }

// wrapLog wraps the gateway's log handler (e.g. to see its info lines).
func wrapLog(f func(slog.Handler) slog.Handler) gatewayOption {
	return func(o *gatewayOptions) { o.wrapLog = f }
}

// processEnv reads the variables with prefix that env does not set from the
// process environment (the OTel SDK's OTEL_*, set with t.Setenv).
func processEnv(prefix string) gatewayOption {
	return func(o *gatewayOptions) { o.processEnv = prefix }
}

// checkConfig has f check the configuration before the gateway starts.
func checkConfig(f func(testing.TB, *config.Config)) gatewayOption {
	return func(o *gatewayOptions) { o.check = f }
}

// demo also runs the synthetic DashFlow workload into the topic, as
// `dashstream demo` does (app.Options.Demo).
func demo() gatewayOption { return func(o *gatewayOptions) { o.demo = true } }

// unready returns as soon as HTTP listens, without waiting for Kafka.
func unready() gatewayOption { return func(o *gatewayOptions) { o.unready = true } }

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

// startGateway runs a gateway with baseEnv overridden by env, waits until
// it is ready (Kafka reachable, the topic found; see unready), and stops it
// at cleanup. KAFKA_BROKERS and KAFKA_TOPIC must be in env.
func startGateway(t testing.TB, env map[string]string, opts ...gatewayOption) *gateway {
	t.Helper()
	full := baseEnv(t)
	for k, v := range env {
		full[k] = v
	}
	g := &gateway{t: t, env: full}
	for _, o := range opts {
		o(&g.opts)
	}
	g.start()
	t.Cleanup(func() { _ = g.stop() })
	return g
}

func (g *gateway) start() {
	g.t.Helper()
	cfg, err := config.Load(nil, g.lookup)
	if err != nil {
		g.t.Fatalf("config: %v", err)
	}
	if g.opts.check != nil {
		g.opts.check(g.t, cfg)
	}
	var w io.Writer = testWriter{g.t}
	if g.opts.logTo != nil {
		w = io.MultiWriter(g.opts.logTo, w)
	}
	var h slog.Handler = slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})
	if g.opts.wrapLog != nil {
		h = g.opts.wrapLog(h)
	}
	a, err := app.New(cfg, slog.New(h), app.Options{Demo: g.opts.demo})
	if err != nil {
		g.t.Fatalf("app.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.App, g.cancel, g.done = a, cancel, make(chan error, 1)
	go func() { g.done <- a.Run(ctx) }()
	if g.opts.unready {
		testenv.WaitFor(g.t, 10*time.Second, func() bool { return a.HTTPAddr() != "" }, "HTTP listening")
	} else {
		select {
		case <-a.Ready():
		case err := <-g.done:
			g.done <- err
			g.t.Fatalf("gateway stopped before ready: %v", err)
		case <-time.After(60 * time.Second):
			g.t.Fatal("gateway not ready within 60s")
		}
	}
	g.base = "http://" + a.HTTPAddr()
	g.ws = "ws://" + a.HTTPAddr() + "/ws"
}

// lookup is the gateway's environment: env, then the process's for the
// processEnv prefix.
func (g *gateway) lookup(k string) string {
	if v, ok := g.env[k]; ok || g.opts.processEnv == "" || !strings.HasPrefix(k, g.opts.processEnv) {
		return v
	}
	return os.Getenv(k)
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

// dialCursor connects a client resuming from cursor (from:"cursor"; last
// offsets received, per partition).
func dialCursor(g *gateway, cursor map[int32]int64) *wsclient.Conn {
	g.t.Helper()
	return g.dial(&wsclient.Resume{From: wsclient.FromCursor, Offsets: cursor})
}

// cursorAll is a cursor of o on partitions 0..n-1.
func cursorAll(n int32, o int64) map[int32]int64 {
	out := make(map[int32]int64, n)
	for p := range n {
		out[p] = o
	}
	return out
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

// redisEnv is a gateway env on k's topic and the Redis at redisURL ("":
// none) plus extra settings.
func redisEnv(k *testenv.KafkaEnv, topic, redisURL string, extra map[string]string) map[string]string {
	env := gatewayEnv(k, topic)
	if redisURL != "" {
		env["REDIS_URL"] = redisURL
	}
	for key, v := range extra {
		env[key] = v
	}
	return env
}

// testWriter sends log lines to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// get fetches a path of the gateway's HTTP API, failing the test when the
// request fails.
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

// tryGet fetches url; status 0 when the request failed (usable from
// goroutines and while the gateway is down).
func tryGet(ctx context.Context, url string) (int, []byte) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

// waitReadyz polls /readyz every 50 ms until it answers code.
func waitReadyz(t *testing.T, g *gateway, code int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, _ := tryGet(context.Background(), g.base+"/readyz")
		if got == code {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not %d within %v (last %d)", code, timeout, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// post sends POST path with an optional bearer token.
func post(t testing.TB, g *gateway, path, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// getJSON fetches path and decodes its JSON body with numbers kept exact.
func getJSON(t testing.TB, g *gateway, path string) (int, map[string]any) {
	t.Helper()
	code, body := g.get(path)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("GET %s: %d, body %q is not a JSON object: %v", path, code, body, err)
	}
	return code, v
}

// jsonInt reads an integer JSON number at key of obj (failing on anything
// else: a string, a float, null, missing).
func jsonInt(t testing.TB, obj map[string]any, key string) int64 {
	t.Helper()
	n, ok := obj[key].(json.Number)
	if !ok {
		t.Fatalf("%s = %#v, want a JSON number", key, obj[key])
	}
	v, err := n.Int64()
	if err != nil {
		t.Fatalf("%s = %s, want an integer: %v", key, n, err)
	}
	return v
}

// healthDoc is the part of /health the tests read.
type healthDoc struct {
	Status       string `json:"status"`
	Alert        string `json:"alert"`
	ReplayBuffer struct {
		MemoryBufferSize   int    `json:"memory_buffer_size"`
		RedisEnabled       bool   `json:"redis_enabled"`
		MemoryHits         uint64 `json:"memory_hits"`
		RedisHits          uint64 `json:"redis_hits"`
		RedisMisses        uint64 `json:"redis_misses"`
		RedisWriteDropped  uint64 `json:"redis_write_dropped"`
		RedisWriteFailures uint64 `json:"redis_write_failures"`
	} `json:"replay_buffer"`
}

// getHealth reads /health, which must answer 200.
func getHealth(t testing.TB, g *gateway) healthDoc {
	t.Helper()
	code, body := g.get("/health")
	if code != http.StatusOK {
		t.Fatalf("/health: %d %s", code, body)
	}
	var h healthDoc
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatalf("/health: %v: %s", err, body)
	}
	return h
}

// namespaceOf is g's resume namespace (/version), which names its Redis
// keys.
func namespaceOf(t testing.TB, g *gateway) string {
	t.Helper()
	var ns string
	testenv.WaitFor(t, 10*time.Second, func() bool {
		_, body := g.get("/version")
		var v struct {
			NS string `json:"resume_namespace"`
		}
		if json.Unmarshal(body, &v) == nil {
			ns = v.NS
		}
		return ns != ""
	}, "resume_namespace in /version")
	return ns
}

// promSample is one sample line of the Prometheus text format.
type promSample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseProm parses the sample lines of a Prometheus text exposition.
func parseProm(t testing.TB, body []byte) []promSample {
	t.Helper()
	var out []promSample
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, parsePromLine(t, line))
	}
	return out
}

// parsePromLine parses one sample line: name{labels} value [timestamp].
func parsePromLine(t testing.TB, line string) promSample {
	t.Helper()
	s := promSample{labels: map[string]string{}}
	var rest string
	if i := strings.IndexAny(line, "{ "); i >= 0 && line[i] == '{' {
		s.name = line[:i]
		j := strings.LastIndex(line, "}")
		for _, kv := range splitLabels(line[i+1 : j]) {
			k, v, _ := strings.Cut(kv, "=")
			uq, err := strconv.Unquote(v)
			if err != nil {
				t.Fatalf("metrics line %q: label %q: %v", line, kv, err)
			}
			s.labels[k] = uq
		}
		rest = strings.TrimSpace(line[j+1:])
	} else {
		s.name, rest, _ = strings.Cut(line, " ")
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		t.Fatalf("metrics line %q has no value", line)
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		t.Fatalf("metrics line %q: value: %v", line, err)
	}
	s.value = v
	return s
}

// splitLabels splits `a="x",b="y,z"` at the commas outside quotes.
func splitLabels(s string) []string {
	var out []string
	start, inQ := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			inQ = !inQ
		case ',':
			if !inQ {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// sampleValue returns the value of the samples named name whose labels
// include labels, summed over them, and whether any matched.
func sampleValue(samples []promSample, name string, labels map[string]string) (float64, bool) {
	var sum float64
	found := false
	for _, s := range samples {
		if s.name != name {
			continue
		}
		match := true
		for k, v := range labels {
			if s.labels[k] != v {
				match = false
				break
			}
		}
		if match {
			sum += s.value
			found = true
		}
	}
	return sum, found
}

// scrape fetches /metrics and parses it.
func scrape(t testing.TB, g *gateway) []promSample {
	t.Helper()
	code, body := g.get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d", code)
	}
	return parseProm(t, body)
}

// metric returns the value of the one sample of /metrics whose name and
// label set are exactly series's (written as in the exposition, e.g.
// `websocket_replay_tier_hits_total{tier="kafka"}`); 0 when absent.
func metric(t testing.TB, g *gateway, series string) float64 {
	t.Helper()
	want := parsePromLine(t, series+" 0")
	for _, s := range scrape(t, g) {
		if s.name == want.name && len(s.labels) == len(want.labels) {
			if v, ok := sampleValue([]promSample{s}, want.name, want.labels); ok {
				return v
			}
		}
	}
	return 0
}

// tierHits is websocket_replay_tier_hits_total of tier.
func tierHits(t testing.TB, g *gateway, tier string) float64 {
	t.Helper()
	return metric(t, g, `websocket_replay_tier_hits_total{tier="`+tier+`"}`)
}

// eventValue encodes a valid DashStream Event of thread at seq, stamped now
// (plain framing).
func eventValue(thread string, seq uint64) ([]byte, error) {
	msg := &dashstreampb.DashStreamMessage{Message: &dashstreampb.DashStreamMessage_Event{Event: &dashstreampb.Event{
		Header: &dashstreampb.Header{ThreadId: thread, Sequence: seq, TimestampUs: time.Now().UnixMicro(),
			Type: dashstreampb.MessageType_MESSAGE_TYPE_EVENT, TenantId: "test"},
		EventType: dashstreampb.EventType_EVENT_TYPE_NODE_START, NodeId: "n"}}}
	return dashstream.Encode(msg, dashstream.FramingPlain)
}

// event is eventValue on the test goroutine (failing the test on error).
func event(t testing.TB, thread string, seq uint64) []byte {
	t.Helper()
	v, err := eventValue(thread, seq)
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

// bigEvent is a valid Event of about size bytes (a long node id).
func bigEvent(t testing.TB, thread string, seq uint64, size int) []byte {
	t.Helper()
	msg := &dashstreampb.DashStreamMessage{Message: &dashstreampb.DashStreamMessage_Event{Event: &dashstreampb.Event{
		Header: &dashstreampb.Header{ThreadId: thread, Sequence: seq, TimestampUs: time.Now().UnixMicro(),
			Type: dashstreampb.MessageType_MESSAGE_TYPE_EVENT, TenantId: "test"},
		EventType: dashstreampb.EventType_EVENT_TYPE_NODE_PROGRESS, NodeId: strings.Repeat("x", size)}}}
	v, err := dashstream.Encode(msg, dashstream.FramingPlain)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// produceBig produces n big events to each of parts partitions and returns
// the offsets per partition.
func produceBig(t testing.TB, k *testenv.KafkaEnv, topic string, parts int32, n, size int) map[int32][]int64 {
	t.Helper()
	var recs []*kgo.Record
	for p := range parts {
		for i := range n {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: bigEvent(t, "big-"+strconv.Itoa(int(p)), uint64(i+1), size)})
		}
	}
	offs := k.ProduceRecords(t, recs...)
	out := map[int32][]int64{}
	for i, r := range recs {
		out[r.Partition] = append(out[r.Partition], offs[i])
	}
	return out
}

// controlTypes lists the types of cs, for failure messages.
func controlTypes(cs []wsclient.Control) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s ", c.Type)
	}
	return b.String()
}
