package e2e

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// TestCoreRestartContinuity: a gateway with a fixed INSTANCE_ID consumes N
// records, is stopped gracefully, M more are produced while it is down, and
// it starts again. It continues from its saved progress (/health counts
// only the M newly consumed records), and a client resuming with the cursor
// it had before the restart receives exactly the M records, then live ones:
// no hole, no duplicate.
func TestCoreRestartContinuity(t *testing.T) {
	const parts, n, m = 2, 10, 6
	k, topic := kafkaEnv(t, parts)
	g := startGateway(t, gatewayEnv(k, topic))
	produced := map[int32][]int64{}
	produce := func(count int) map[int32][]int64 {
		batch := map[int32][]int64{}
		for p := int32(0); p < parts; p++ {
			offs, _ := produceEvents(t, k, topic, p, uint64(len(produced[p])), count)
			produced[p] = append(produced[p], offs...)
			batch[p] = offs
		}
		return batch
	}
	first := produce(n)
	waitHeads(t, g, lastOf(first), 30*time.Second)

	c := g.dial(&wsclient.Resume{From: wsclient.FromEarliest})
	var s stream
	readMore(t, c, &s, 20*time.Second, "before the restart", func(s *stream) bool { return s.reachedAll(lastOf(first)) })
	assertOffsets(t, "before the restart", s.records(), first)
	cursor := s.last()
	c.Close()
	_, h := getJSON(t, g, "/health")
	if got := jsonInt(t, h["metrics"].(map[string]any), "kafka_messages_received"); got != parts*n {
		t.Errorf("before the restart: kafka_messages_received = %d, want %d", got, parts*n)
	}

	if err := g.stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	down := produce(m) // while the gateway is down
	g.start()
	waitHeads(t, g, lastOf(down), 30*time.Second)
	_, h = getJSON(t, g, "/health")
	if got := jsonInt(t, h["metrics"].(map[string]any), "kafka_messages_received"); got != parts*m {
		t.Errorf("after the restart: kafka_messages_received = %d, want %d (only the records produced while down)", got, parts*m)
	}
	if heads := g.Hub().Heads(); len(heads) != parts {
		t.Errorf("heads after the restart: %v", heads)
	}

	r := g.dial(&wsclient.Resume{From: wsclient.FromCursor, Offsets: cursor})
	var rs stream
	readMore(t, r, &rs, 20*time.Second, "resume after the restart", untilControl("replay_complete", 1))
	rc := replayCompleteOf(t, &rs)
	if rc.TotalReplayed != parts*m || rc.Mode != "cursor" {
		t.Errorf("replay_complete %+v, want cursor mode with %d replayed", rc, parts*m)
	}
	live := produce(2)
	readMore(t, r, &rs, 20*time.Second, "live after the restart", func(s *stream) bool { return s.reachedAll(lastOf(live)) })
	want := map[int32][]int64{}
	for p := int32(0); p < parts; p++ {
		want[p] = append(down[p], live[p]...)
	}
	assertOffsets(t, "resume after the restart", rs.records(), want)
	for _, ctl := range rs.controls("") {
		if ctl.Type != "replay_complete" {
			t.Errorf("unexpected control frame %s", ctl.Raw)
		}
	}
}

// TestCoreHealthEndpoints: /health, /healthz, /readyz, /version and /metrics
// report what happened, with the JSON types the dashboard reads (numbers as
// numbers, null for never): before any record, and after N valid records and
// one invalid one with two clients connected, then one.
func TestCoreHealthEndpoints(t *testing.T) {
	k, topic := kafkaEnv(t, 2)
	g := startGateway(t, gatewayEnv(k, topic))

	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := g.get(path); code != http.StatusOK {
			t.Errorf("%s: HTTP %d %s, want 200 while running", path, code, body)
		}
	}
	code, v := getJSON(t, g, "/version")
	if code != 200 || v["kafka_topic"] != topic || v["component"] != "websocket-server" ||
		v["decode_error_policy"] != "skip" || v["kafka_group_id"] != "websocket-server-v4" {
		t.Errorf("/version: %d %v", code, v)
	}
	if ns, _ := v["resume_namespace"].(string); ns == "" {
		t.Errorf("/version resume_namespace = %#v, want non-empty", v["resume_namespace"])
	}
	if jsonInt(t, v, "schema_version") != 1 || jsonInt(t, v, "max_payload_bytes") != 10<<20 {
		t.Errorf("/version schema_version / max_payload_bytes: %v", v)
	}
	for _, key := range []string{"git_sha", "build_date"} {
		if _, ok := v[key].(string); !ok {
			t.Errorf("/version %s = %#v, want a string", key, v[key])
		}
	}

	// Before any record: zeros and nulls.
	_, h := getJSON(t, g, "/health")
	hm := h["metrics"].(map[string]any)
	for _, key := range []string{"kafka_messages_received", "decode_errors", "connected_clients", "dropped_messages", "kafka_errors"} {
		if n := jsonInt(t, hm, key); n != 0 {
			t.Errorf("idle /health %s = %d, want 0", key, n)
		}
	}
	for _, key := range []string{"last_kafka_message_ago_seconds", "last_drop_ago_seconds", "last_infrastructure_error_ago_seconds"} {
		if val, ok := hm[key]; !ok || val != nil {
			t.Errorf("idle /health %s = %#v (present %v), want null", key, val, ok)
		}
	}
	jsonInt(t, hm, "uptime_seconds")
	if (h["status"] != "waiting" && h["status"] != "healthy") || h["kafka_status"] != "waiting_for_messages" || h["websocket_status"] != "no_clients" {
		t.Errorf("idle /health: status %v, kafka_status %v, websocket_status %v", h["status"], h["kafka_status"], h["websocket_status"])
	}

	a := g.dial(&wsclient.Resume{From: wsclient.FromLatest})
	var as stream
	readMore(t, a, &as, 10*time.Second, "client A", untilControl("replay_complete", 1))
	produced := map[int32][]int64{}
	produced[0], _ = produceEvents(t, k, topic, 0, 0, 4)
	produced[1], _ = produceEvents(t, k, topic, 1, 0, 2)
	bad := produceRaw(t, k, topic, 1, vector(t, "invalid_truncated_plain.bin"))
	more, _ := produceEvents(t, k, topic, 1, 2, 1)
	const valid = 7
	waitHeads(t, g, map[int32]int64{0: produced[0][3], 1: more[0]}, 30*time.Second)
	readMore(t, a, &as, 20*time.Second, "client A live", func(s *stream) bool {
		return s.reachedAll(map[int32]int64{0: produced[0][3], 1: more[0]})
	})
	b := g.dial(&wsclient.Resume{From: wsclient.FromEarliest})
	var bs stream
	readMore(t, b, &bs, 10*time.Second, "client B", untilControl("replay_complete", 1))
	rcB := replayCompleteOf(t, &bs)
	if len(bs.records()) != valid || len(bs.controls("skipped")) != 1 {
		t.Errorf("client B (earliest): %s, want %d records and one skipped (p1@%d)", bs.summary(), valid, bad[0])
	}

	_, h = getJSON(t, g, "/health")
	hm = h["metrics"].(map[string]any)
	checks := map[string]int64{"kafka_messages_received": valid, "decode_errors": 1, "old_data_decode_errors": 0,
		"connected_clients": 2, "messages_last_120s": valid, "decode_errors_last_120s": 1}
	for key, want := range checks {
		if n := jsonInt(t, hm, key); n != want {
			t.Errorf("/health %s = %d, want %d", key, n, want)
		}
	}
	if ago := jsonInt(t, hm, "last_kafka_message_ago_seconds"); ago < 0 || ago > 60 {
		t.Errorf("/health last_kafka_message_ago_seconds = %d", ago)
	}
	if h["websocket_status"] != "2_clients_connected" || h["kafka_status"] != "connected" {
		t.Errorf("/health websocket_status %v kafka_status %v", h["websocket_status"], h["kafka_status"])
	}
	// A decode failure in new data is worth an alert (and "degraded").
	if alert, _ := h["alert"].(string); h["status"] != "degraded" || !strings.Contains(alert, "decode error") {
		t.Errorf("/health status %v alert %q, want degraded with a decode-error alert", h["status"], alert)
	}
	rb, _ := h["replay_buffer"].(map[string]any)
	// max_memory_size counts over all partitions: 1000 per partition × 2.
	if rb == nil || rb["redis_enabled"] != false || jsonInt(t, rb, "max_memory_size") != 2000 {
		t.Errorf("/health replay_buffer = %v", h["replay_buffer"])
	}

	m := scrape(t, g)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"websocket_kafka_messages_total", map[string]string{"status": "success"}, valid},
		{"websocket_kafka_messages_total", map[string]string{"status": "error"}, 1},
		{"websocket_decode_errors_total", map[string]string{"error_type": "invalid_protobuf"}, 1},
		{"websocket_decode_errors_total", nil, 1},
		{"websocket_connected_clients", nil, 2},
		{"websocket_resume_requests_total", map[string]string{"mode": "latest"}, 1},
		{"websocket_resume_requests_total", map[string]string{"mode": "earliest"}, 1},
		{"websocket_replay_messages_total", map[string]string{"mode": "earliest"}, float64(rcB.TotalReplayed)},
		{"websocket_replay_messages_total", map[string]string{"mode": "latest"}, 0},
	} {
		if got, ok := sampleValue(m, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	for _, name := range []string{"websocket_uptime_seconds", "websocket_replay_latency_ms_count", "go_goroutines"} {
		if _, ok := sampleValue(m, name, nil); !ok {
			t.Errorf("/metrics has no %s", name)
		}
	}

	a.Close()
	testenv.WaitFor(t, 10*time.Second, func() bool {
		_, h := getJSON(t, g, "/health")
		return jsonInt(t, h["metrics"].(map[string]any), "connected_clients") == 1
	}, "/health connected_clients back to 1")
	if v, _ := sampleValue(scrape(t, g), "websocket_connected_clients", nil); v != 1 {
		t.Errorf("websocket_connected_clients = %v after one client left, want 1", v)
	}
}

// TestCoreGracefulShutdown: stopping the gateway closes connected clients
// with 1001 and Run returns nil well within SHUTDOWN_TIMEOUT_SECS. The steps
// run in the documented order: clients are closed before the consumer saves
// its progress (read back from Kafka between the two steps), and the Redis
// writes are drained after it. While a client that does not read holds the
// shutdown up (its last write waits for the send deadline), /readyz answers
// 503 and new WebSocket connections are refused; the stuck client does not
// make the shutdown overrun. Goroutine leaks are checked by goleak in
// TestMain.
func TestCoreGracefulShutdown(t *testing.T) {
	t.Run("clients get 1001", func(t *testing.T) {
		k, topic := kafkaEnv(t, 2)
		g := startGateway(t, gatewayEnv(k, topic))
		offs, _ := produceEvents(t, k, topic, 0, 0, 3)
		waitHeads(t, g, map[int32]int64{0: offs[2]}, 30*time.Second)
		clients := []*wsclient.Conn{g.dial(&wsclient.Resume{From: wsclient.FromLatest}), g.dial(&wsclient.Resume{From: wsclient.FromEarliest})}
		for _, c := range clients {
			var s stream
			readMore(t, c, &s, 10*time.Second, "replay", untilControl("replay_complete", 1))
		}
		closed := make([]error, len(clients))
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				for {
					if _, err := c.Next(ctx); err != nil {
						closed[i] = err
						return
					}
				}
			})
		}
		start := time.Now()
		err := g.stop()
		took := time.Since(start)
		wg.Wait()
		if err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
		if took > 10*time.Second {
			t.Errorf("shutdown took %v, more than SHUTDOWN_TIMEOUT_SECS (10s)", took)
		}
		t.Logf("shutdown took %v", took)
		for i, err := range closed {
			var ce *wsclient.CloseError
			if !errors.As(err, &ce) || ce.Code != 1001 {
				t.Errorf("client %d: %v, want close 1001", i, err)
			}
		}
	})

	t.Run("order and bound", func(t *testing.T) {
		k, topic := kafkaEnv(t, 2)
		r := testenv.Redis(t)
		env := gatewayEnv(k, topic)
		env["REDIS_URL"] = r.URL
		env["KAFKA_PROGRESS_INTERVAL_SECS"] = "3600" // only the final save writes progress
		var mu sync.Mutex
		var steps []string
		var savedAfterClients map[int32]int64
		group := "websocket-server-v4."
		hook := func(step string) { // runs inside stop, between two steps
			mu.Lock()
			defer mu.Unlock()
			steps = append(steps, step)
			if step == "clients" {
				savedAfterClients = savedProgress(t, k, group, topic)
			}
		}
		g := startGateway(t, env, wrapLog(func(h slog.Handler) slog.Handler { return stepHandler{Handler: h, onStep: hook} }))
		group += g.env["INSTANCE_ID"]
		offs, _ := produceEvents(t, k, topic, 0, 0, 5)
		waitHeads(t, g, map[int32]int64{0: offs[4]}, 30*time.Second)
		c := g.dial(&wsclient.Resume{From: wsclient.FromEarliest})
		var s stream
		readMore(t, c, &s, 10*time.Second, "replay", func(s *stream) bool { return s.reachedAll(map[int32]int64{0: offs[4]}) })
		closed := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for {
				if _, err := c.Next(ctx); err != nil {
					closed <- err
					return
				}
			}
		}()

		start := time.Now()
		err := g.stop()
		took := time.Since(start)
		if err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
		t.Logf("shutdown took %v", took)
		if took > 10*time.Second {
			t.Errorf("shutdown took %v, more than SHUTDOWN_TIMEOUT_SECS (10s)", took)
		}
		var ce *wsclient.CloseError
		if err := <-closed; !errors.As(err, &ce) || ce.Code != 1001 {
			t.Errorf("client: %v, want close 1001", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if want := []string{"clients", "consumer", "redis", "http"}; !slices.Equal(steps, want) {
			t.Errorf("shutdown steps %v, want %v", steps, want)
		}
		// Progress is saved after the clients were closed, and saved.
		if got := savedAfterClients[0]; got > offs[4] {
			t.Errorf("progress of p0 already saved (%d) when the clients were closed", got)
		}
		if got := savedProgress(t, k, group, topic)[0]; got != offs[4]+1 {
			t.Errorf("progress of p0 after the shutdown = %d, want %d", got, offs[4]+1)
		}
	})

	t.Run("readyz 503 while a stuck client holds it up", func(t *testing.T) {
		k, topic := kafkaEnv(t, 1)
		env := gatewayEnv(k, topic)
		env["WEBSOCKET_SEND_TIMEOUT_SECS"] = "3"
		g := startGateway(t, env)
		good := g.dial(&wsclient.Resume{From: wsclient.FromLatest})
		var gs stream
		readMore(t, good, &gs, 10*time.Second, "good client", untilControl("replay_complete", 1))
		stuck := dialRaw(t, g, 4<<10)
		stuck.sendJSON(t, map[string]any{"type": "resume", "from": "latest", "lastOffsetsByPartition": map[string]string{}})
		testenv.WaitFor(t, 10*time.Second, func() bool { return g.Hub().Clients() == 2 }, "two clients")
		produced := produceBig(t, k, topic, 1, 240, 16<<10) // ~4 MiB: the stuck client's writes block
		readMore(t, good, &gs, 30*time.Second, "good client", func(s *stream) bool { return s.reachedAll(lastOf(produced)) })
		if g.Hub().Clients() != 2 {
			t.Skip("the stuck client was cut off before the shutdown began (machine too slow); nothing to observe")
		}

		base := g.base
		stopErr := make(chan error, 1)
		start := time.Now()
		go func() { stopErr <- g.stop() }()
		// /readyz answers 503 while the shutdown waits for the stuck client.
		saw503 := false
		for !saw503 && time.Since(start) < 10*time.Second {
			resp, err := http.Get(base + "/readyz")
			if err != nil {
				break // HTTP already stopped
			}
			resp.Body.Close()
			saw503 = resp.StatusCode == http.StatusServiceUnavailable
		}
		if !saw503 {
			t.Errorf("/readyz never answered 503 during the shutdown")
		} else if status, _ := dialStatus(t, g, ""); status != http.StatusServiceUnavailable {
			t.Errorf("a new WebSocket during shutdown: HTTP %d, want 503", status)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		var err error
		for err == nil {
			_, err = good.Next(ctx)
		}
		var ce *wsclient.CloseError
		if !errors.As(err, &ce) || ce.Code != 1001 {
			t.Errorf("good client: %v, want close 1001", err)
		}
		select {
		case err := <-stopErr:
			took := time.Since(start)
			t.Logf("shutdown took %v", took)
			if err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
			if took > 10*time.Second {
				t.Errorf("shutdown took %v, more than SHUTDOWN_TIMEOUT_SECS (10s)", took)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return")
		}
	})
}

// stepHandler passes the "shutdown step done" records to onStep and the
// rest, at the wrapped handler's level, to it.
type stepHandler struct {
	slog.Handler
	onStep func(step string)
}

func (h stepHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.Handler.Enabled(ctx, l)
}

func (h stepHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "shutdown step done" {
		r.Attrs(func(at slog.Attr) bool {
			if at.Key == "step" {
				h.onStep(at.Value.String())
			}
			return true
		})
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h stepHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return stepHandler{Handler: h.Handler.WithAttrs(as), onStep: h.onStep}
}

func (h stepHandler) WithGroup(name string) slog.Handler {
	return stepHandler{Handler: h.Handler.WithGroup(name), onStep: h.onStep}
}
