package e2e

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// TestCoreControlFrameErrors: through the whole gateway, malformed JSON is
// answered with an INVALID_JSON error frame and the connection stays usable
// (ping → pong, then a resume that replays); invalid resume entries are
// reported (RESUME_INVALID_ENTRY) and ignored while the rest of the resume
// proceeds; an over-size text frame — a single frame whose header declares
// 2 MiB, or fragments adding up to more than 1 MiB — is refused from its
// header alone (the payload is never sent) with CONTROL_FRAME_TOO_LARGE and
// close 1009. The counters say the same.
func TestCoreControlFrameErrors(t *testing.T) {
	k, topic := kafkaEnv(t, 2)
	g := startGateway(t, gatewayEnv(k, topic))
	produced := map[int32][]int64{}
	for p := int32(0); p < 2; p++ {
		produced[p], _ = produceEvents(t, k, topic, p, 0, 5)
	}
	waitHeads(t, g, lastOf(produced), 30*time.Second)

	t.Run("malformed JSON keeps the connection", func(t *testing.T) {
		c := dialRaw(t, g, 0)
		c.writeFrame(t, ws.OpText, true, []byte(`{"type":"resume",`))
		if m := c.nextControl(t, 10*time.Second); m["type"] != "error" || m["code"] != "INVALID_JSON" {
			t.Fatalf("after malformed JSON: %v, want error INVALID_JSON", m)
		}
		c.sendJSON(t, map[string]string{"type": "ping"})
		if m := c.nextControl(t, 10*time.Second); m["type"] != "pong" {
			t.Fatalf("after ping: %v, want pong", m)
		}
		// Invalid entries are reported and ignored; partition 1 still
		// replays from its cursor, partition 0 (invalid) as unlisted.
		c.sendJSON(t, map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": "abc", "1": "2", "x": 1}})
		var s stream
		c.read(t, &s, 10*time.Second, "resume after errors", untilControl("replay_complete", 1))
		errs := s.controls("error")
		if len(errs) != 1 {
			t.Fatalf("want one error frame, got %s", s.summary())
		}
		e := decodeControl[wsclient.ErrorFrame](t, errs[0])
		if e.Code != "RESUME_INVALID_ENTRY" || !slices.Contains(e.Entries, `0="abc"`) || !slices.Contains(e.Entries, "x=1") {
			t.Errorf("error frame %s: want RESUME_INVALID_ENTRY listing 0=\"abc\" and x=1", errs[0].Raw)
		}
		assertOffsets(t, "resume with invalid entries", s.records(), map[int32][]int64{0: offsetRange(0, 4), 1: offsetRange(3, 4)})
	})

	t.Run("over-size frame header", func(t *testing.T) {
		c := dialRaw(t, g, 0)
		// Only the header goes out: the gateway must answer without
		// waiting for (or buffering) the 2 MiB it announces.
		h := ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: ws.NewMask(), Length: 2 << 20}
		c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := ws.WriteHeader(c.conn, h); err != nil {
			t.Fatal(err)
		}
		expectTooLarge(t, c)
	})

	t.Run("over-size across fragments", func(t *testing.T) {
		c := dialRaw(t, g, 0)
		c.writeFrame(t, ws.OpText, false, make([]byte, 700<<10)) // 700 KiB, not final
		h := ws.Header{Fin: true, OpCode: ws.OpContinuation, Masked: true, Mask: ws.NewMask(), Length: 400 << 10}
		c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := ws.WriteHeader(c.conn, h); err != nil {
			t.Fatal(err)
		}
		expectTooLarge(t, c)
	})

	m := scrape(t, g)
	if v, _ := sampleValue(m, "websocket_control_oversized_total", nil); v != 2 {
		t.Errorf("websocket_control_oversized_total = %v, want 2", v)
	}
	if v, _ := sampleValue(m, "websocket_control_parse_failures_total", nil); v != 1 {
		t.Errorf("websocket_control_parse_failures_total = %v, want 1", v)
	}
}

// expectTooLarge reads CONTROL_FRAME_TOO_LARGE, then close 1009.
func expectTooLarge(t *testing.T, c *rawConn) {
	t.Helper()
	if m := c.nextControl(t, 10*time.Second); m["type"] != "error" || m["code"] != "CONTROL_FRAME_TOO_LARGE" {
		t.Fatalf("got %v, want error CONTROL_FRAME_TOO_LARGE", m)
	}
	_, _, err := c.next(time.Now().Add(10 * time.Second))
	var ce *rawClosed
	if !errors.As(err, &ce) || ce.code != 1009 {
		t.Fatalf("after the error frame: %v, want close 1009", err)
	}
}

// dialStatus dials /ws and returns the refused handshake's HTTP status, 0
// when it was accepted (the connection is then closed at cleanup).
func dialStatus(t *testing.T, g *gateway, origin string) (int, *wsclient.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := wsclient.Dial(ctx, g.ws, wsclient.Options{Origin: origin, Resume: &wsclient.Resume{From: wsclient.FromLatest}})
	if err != nil {
		var he *wsclient.HandshakeError
		if errors.As(err, &he) {
			return he.Status, nil
		}
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return 0, c
}

// TestCoreConnectionLimitPerIP: with WEBSOCKET_MAX_CONNECTIONS_PER_IP=2 the
// third connection from 127.0.0.1 gets HTTP 429 before upgrading; once one
// of the two closes, its slot is released and a new connection succeeds
// (and the one after that is refused again).
func TestCoreConnectionLimitPerIP(t *testing.T) {
	k, topic := kafkaEnv(t, 1)
	env := gatewayEnv(k, topic)
	env["WEBSOCKET_MAX_CONNECTIONS_PER_IP"] = "2"
	g := startGateway(t, env)

	var open []*wsclient.Conn
	for i := range 2 {
		status, c := dialStatus(t, g, "")
		if status != 0 {
			t.Fatalf("connection %d refused with HTTP %d", i+1, status)
		}
		var s stream
		readMore(t, c, &s, 10*time.Second, "replay_complete", untilControl("replay_complete", 1))
		open = append(open, c)
	}
	if status, _ := dialStatus(t, g, ""); status != http.StatusTooManyRequests {
		t.Fatalf("third connection: HTTP %d, want 429", status)
	}
	if err := open[0].Close(); err != nil {
		t.Logf("close: %v", err)
	}
	var again *wsclient.Conn
	testenv.WaitFor(t, 10*time.Second, func() bool {
		status, c := dialStatus(t, g, "")
		if status != 0 && status != http.StatusTooManyRequests {
			t.Fatalf("after closing one: HTTP %d", status)
		}
		again = c
		return c != nil
	}, "a connection succeeds once a slot is released")
	var s stream
	readMore(t, again, &s, 10*time.Second, "replay_complete on the new connection", untilControl("replay_complete", 1))
	if status, _ := dialStatus(t, g, ""); status != http.StatusTooManyRequests {
		t.Fatalf("with two open again: HTTP %d, want 429", status)
	}
	m := scrape(t, g)
	if v, _ := sampleValue(m, "websocket_rejected_connections_total", map[string]string{"reason": "ip_limit"}); v < 2 {
		t.Errorf("websocket_rejected_connections_total{reason=ip_limit} = %v, want >= 2", v)
	}
	if v, _ := sampleValue(m, "websocket_connected_clients", nil); v != 2 {
		t.Errorf("websocket_connected_clients = %v, want 2", v)
	}
}

// TestCoreOriginCheck: a cross-origin browser request is refused with 403
// (cross-site WebSocket hijacking of a local dashboard fails); a same-origin
// one and one without Origin (CLI clients) are accepted.
func TestCoreOriginCheck(t *testing.T) {
	k, topic := kafkaEnv(t, 1)
	g := startGateway(t, gatewayEnv(k, topic))
	for _, tc := range []struct {
		origin string
		want   int
	}{
		{"http://evil.example", http.StatusForbidden},
		{"http://" + g.HTTPAddr() + ".evil.example", http.StatusForbidden},
		{"null", http.StatusForbidden},
		{"http://" + g.HTTPAddr(), 0},
		{"", 0},
	} {
		status, c := dialStatus(t, g, tc.origin)
		if status != tc.want {
			t.Errorf("Origin %q: HTTP %d, want %d (0 = upgraded)", tc.origin, status, tc.want)
			continue
		}
		if c != nil {
			var s stream
			readMore(t, c, &s, 10*time.Second, "replay_complete", untilControl("replay_complete", 1))
		}
	}
	if v, _ := sampleValue(scrape(t, g), "websocket_rejected_connections_total", map[string]string{"reason": "origin"}); v != 3 {
		t.Errorf("websocket_rejected_connections_total{reason=origin} = %v, want 3", v)
	}
}
