package e2e

import (
	"net"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// TestCoreSlowClientCatchesUp: a client with a tiny socket buffer stops
// reading while several MiB are published (far more than its 64 KiB queue
// bound), then reads again. It receives every record exactly once, in
// order, with no gap and no disconnect: it left the live path, caught up
// from the replay tiers (the lag metric proves that path ran) and rejoined.
func TestCoreSlowClientCatchesUp(t *testing.T) {
	const parts, perPart, size = 4, 100, 8 << 10 // 3.2 MiB
	k, topic := kafkaEnv(t, parts)
	env := gatewayEnv(k, topic)
	env["WEBSOCKET_CLIENT_QUEUE_BYTES"] = "65536"
	env["SLOW_CLIENT_DISCONNECT_THRESHOLD"] = "1000000"
	env["SLOW_CLIENT_MAX_CATCHUP_SECS"] = "120"
	env["WEBSOCKET_SEND_TIMEOUT_SECS"] = "60" // the pause must not look like a dead socket
	g := startGateway(t, env)

	slow := dialRaw(t, g, 32<<10)
	slow.sendJSON(t, map[string]any{"type": "resume", "from": "latest", "lastOffsetsByPartition": map[string]string{}})
	var s stream
	slow.read(t, &s, 20*time.Second, "slow client replay", untilControl("replay_complete", 1))
	start := rcLast(replayCompleteOf(t, &s))

	// The slow client does not read while everything is published.
	produced := produceBig(t, k, topic, parts, perPart, size)
	final := lastOf(produced)
	waitHeads(t, g, final, 30*time.Second)

	// Now it reads again: everything arrives, exactly once, in order.
	slow.read(t, &s, 60*time.Second, "slow client after its pause", func(s *stream) bool { return s.reachedAll(final) })
	want := map[int32][]int64{}
	for p, offs := range produced {
		from, ok := start[p]
		if !ok {
			from = -1
		}
		want[p] = offsetsAfter(offs, from)
	}
	assertOffsets(t, "slow client", s.records(), want)
	for _, c := range s.controls("") {
		if c.Type != "replay_complete" {
			t.Errorf("slow client: unexpected control frame %s", c.Raw)
		}
	}
	m := scrape(t, g)
	lagEvents, _ := sampleValue(m, "websocket_client_lag_events_total", nil)
	lagMsgs, _ := sampleValue(m, "websocket_client_lag_messages_total", nil)
	disc, _ := sampleValue(m, "websocket_slow_client_disconnects_total", nil)
	t.Logf("lag events %v, catch-up records %v, slow disconnects %v", lagEvents, lagMsgs, disc)
	if lagEvents < 1 || lagMsgs < 1 {
		t.Errorf("websocket_client_lag_events_total = %v, websocket_client_lag_messages_total = %v: the client never entered catch-up, so the test proved nothing", lagEvents, lagMsgs)
	}
	if disc != 0 {
		t.Errorf("websocket_slow_client_disconnects_total = %v, want 0", disc)
	}

}

// TestCoreNonReadingClientCutOff: a client that never reads (tiny socket
// buffer) is cut off once a write to it misses WEBSOCKET_SEND_TIMEOUT_SECS,
// while a reading client receives everything promptly and is not held up by
// it.
func TestCoreNonReadingClientCutOff(t *testing.T) {
	const parts, perPart, size = 4, 60, 16 << 10
	const sendTimeout = 2 * time.Second
	k, topic := kafkaEnv(t, parts)
	env := gatewayEnv(k, topic)
	env["WEBSOCKET_SEND_TIMEOUT_SECS"] = "2"
	env["WEBSOCKET_CLIENT_QUEUE_BYTES"] = "65536"
	g := startGateway(t, env)

	stuck := dialRaw(t, g, 4<<10)
	stuck.sendJSON(t, map[string]any{"type": "resume", "from": "latest", "lastOffsetsByPartition": map[string]string{}})
	good := g.dial(&wsclient.Resume{From: wsclient.FromLatest})
	var gs stream
	readMore(t, good, &gs, 20*time.Second, "good client replay", untilControl("replay_complete", 1))
	testenv.WaitFor(t, 10*time.Second, func() bool { return g.Hub().Clients() == 2 }, "two clients connected")

	produced := produceBig(t, k, topic, parts, perPart, size) // ~4 MiB
	produceEnd := time.Now()
	final := lastOf(produced)
	readMore(t, good, &gs, 30*time.Second, "good client", func(s *stream) bool { return s.reachedAll(final) })
	goodTook := time.Since(produceEnd)
	assertOffsets(t, "good client", gs.records(), produced)

	// Its writes blocked while the records were produced: the send deadline
	// (plus the 1 s close deadline) has passed well before this bound.
	testenv.WaitFor(t, sendTimeout+5*time.Second, func() bool { return g.Hub().Clients() == 1 }, "the stuck client is cut off")
	cutAfter := time.Since(produceEnd)
	t.Logf("good client had everything %v after the last produce; stuck client cut off after %v", goodTook, cutAfter)
	if goodTook >= sendTimeout {
		t.Errorf("good client needed %v, not less than the send timeout %v: held up by the stuck client?", goodTook, sendTimeout)
	}
	// The server closed its end of the TCP connection (what it had queued
	// still drains slowly into the tiny window, so the client cannot see the
	// FIN yet): its socket is no longer ESTABLISHED.
	serverSide := stuck.conn.RemoteAddr().(*net.TCPAddr)
	clientSide := stuck.conn.LocalAddr().(*net.TCPAddr)
	st, ok := tcpState(serverSide, clientSide)
	t.Logf("gateway-side socket state %q (readable %v)", st, ok)
	if ok && st == "01" {
		t.Errorf("the gateway's socket to the stuck client is still ESTABLISHED after the session ended")
	}
	m := scrape(t, g)
	if v, _ := sampleValue(m, "websocket_send_timeout_total", nil); v < 1 {
		t.Errorf("websocket_send_timeout_total = %v, want >= 1", v)
	}
	if v, _ := sampleValue(m, "websocket_slow_client_disconnects_total", nil); v != 1 {
		t.Errorf("websocket_slow_client_disconnects_total = %v, want 1", v)
	}
	_, h := getJSON(t, g, "/health")
	hm := h["metrics"].(map[string]any)
	if n := jsonInt(t, hm, "connected_clients"); n != 1 {
		t.Errorf("/health connected_clients = %d, want 1", n)
	}
	if n := jsonInt(t, hm, "send_timeout"); n < 1 {
		t.Errorf("/health send_timeout = %d, want >= 1", n)
	}
}
