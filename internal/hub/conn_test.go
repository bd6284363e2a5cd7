package hub

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gobwas/ws"

	"github.com/dashflow/dashstream-gateway/internal/replay"
)

func TestControlFrames(t *testing.T) {
	th := newTestHub(t, Config{}, replay.MemoryConfig{})
	th.publish(0, 0, 3)
	c := th.dial(t)
	c.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": "1"}})
	c.readUntil(isType("replay_complete"))
	for _, tc := range []struct {
		name string
		msg  string
		typ  websocket.MessageType
		want map[string]any
	}{
		{"ping", `{"type":"ping"}`, websocket.MessageText, map[string]any{"type": "pong"}},
		{"malformed JSON", `{"type":`, websocket.MessageText, map[string]any{"type": "error", "code": "INVALID_JSON"}},
		{"not an object", `[1,2]`, websocket.MessageText, map[string]any{"type": "error", "code": "INVALID_JSON"}},
		{"unknown type", `{"type":"subscribe"}`, websocket.MessageText, map[string]any{"type": "error", "code": "UNKNOWN_MESSAGE_TYPE"}},
		{"binary frame", `{"type":"ping"}`, websocket.MessageBinary, map[string]any{"type": "error", "code": "BINARY_NOT_SUPPORTED"}},
		{"empty text frame", ``, websocket.MessageText, map[string]any{"type": "error", "code": "INVALID_JSON"}},
		{"too many partitions", tooManyPartitions(), websocket.MessageText, map[string]any{"type": "error", "code": "RESUME_TOO_MANY_PARTITIONS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.conn.Write(t.Context(), tc.typ, []byte(tc.msg)); err != nil {
				t.Fatal(err)
			}
			f, err := c.read(5 * time.Second)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			for k, v := range tc.want {
				if f.json[k] != v {
					t.Fatalf("reply %v, want %v", f.json, tc.want)
				}
			}
			if tc.want["type"] == "error" && f.json["message"] == "" {
				t.Fatalf("error without message: %v", f.json)
			}
		})
	}
	// The connection survived every one of them and still streams.
	th.publish(0, 3, 1)
	recs, ctrl := c.readRecords(1)
	checkExact(t, recs, map[int32][]int64{0: {3}})
	if len(ctrl) != 0 {
		t.Fatalf("controls %v", ctrl)
	}
}

func tooManyPartitions() string {
	var b strings.Builder
	b.WriteString(`{"type":"resume","lastOffsetsByPartition":{`)
	for i := range 1025 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + strconv.Itoa(i) + `":"1"`)
	}
	b.WriteString(`}}`)
	return b.String()
}

// Invalid resume entries are reported and ignored; the rest of the resume
// proceeds.
func TestResumeInvalidEntries(t *testing.T) {
	th := newTestHub(t, Config{}, replay.MemoryConfig{})
	th.publish(0, 0, 5)
	th.publish(1, 0, 5)
	c := th.dial(t)
	if err := c.conn.Write(t.Context(), websocket.MessageText,
		[]byte(`{"type":"resume","lastOffsetsByPartition":{"0":"2","1":"-7","x":"1","2":1.5}}`)); err != nil {
		t.Fatal(err)
	}
	recs, ctrl := c.readUntil(isType("replay_complete"))
	errs := ofType(ctrl, "error")
	if len(errs) != 1 || errs[0]["code"] != "RESUME_INVALID_ENTRY" {
		t.Fatalf("controls %v", ctrl)
	}
	entries, _ := errs[0]["entries"].([]any)
	if len(entries) != 3 {
		t.Fatalf("entries %v", errs[0]["entries"])
	}
	checkExact(t, recs, map[int32][]int64{0: seq(3, 4), 1: seq(0, 4)})
}

// An over-size text frame is refused from its header alone: the client
// announces 100 MiB and sends none of it.
func TestOversizeFrameRejectedBeforeBuffering(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(c *rawClient)
	}{
		{"100 MiB header only", func(c *rawClient) {
			writeHeader(c, ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: ws.NewMask(), Length: 100 << 20})
		}},
		{"1 MiB + 1", func(c *rawClient) {
			writeHeader(c, ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: ws.NewMask(), Length: 1<<20 + 1})
		}},
		{"binary 100 MiB", func(c *rawClient) {
			writeHeader(c, ws.Header{Fin: true, OpCode: ws.OpBinary, Masked: true, Mask: ws.NewMask(), Length: 100 << 20})
		}},
		{"fragments adding up", func(c *rawClient) {
			c.writeFrame(ws.OpText, false, bytes.Repeat([]byte{' '}, 600<<10))
			c.writeFrame(ws.OpContinuation, false, bytes.Repeat([]byte{' '}, 400<<10))
			writeHeader(c, ws.Header{Fin: true, OpCode: ws.OpContinuation, Masked: true, Mask: ws.NewMask(), Length: 25 << 10})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := newTestHub(t, Config{}, replay.MemoryConfig{})
			c := th.dialRaw(t, 0)
			c.resumeLatest()
			start := time.Now()
			tc.send(c)
			code, ctrl := c.readClose(5 * time.Second)
			if code != ws.StatusMessageTooBig {
				t.Fatalf("close %d, want 1009", code)
			}
			if len(ctrl) != 1 || ctrl[0]["type"] != "error" || ctrl[0]["code"] != "CONTROL_FRAME_TOO_LARGE" {
				t.Fatalf("controls %v", ctrl)
			}
			t.Logf("refused after %v", time.Since(start))
		})
	}
}

func writeHeader(c *rawClient, h ws.Header) {
	c.t.Helper()
	if err := ws.WriteHeader(c.conn, h); err != nil {
		c.t.Fatal(err)
	}
}

// A text message of exactly 1 MiB, even fragmented, is accepted.
func TestControlFrameOfOneMiB(t *testing.T) {
	th := newTestHub(t, Config{}, replay.MemoryConfig{})
	c := th.dialRaw(t, 0)
	c.resumeLatest()
	doc := []byte(`{"type":"ping","pad":"` + strings.Repeat("x", 1<<20-len(`{"type":"ping","pad":""}`)) + `"}`)
	c.writeFrame(ws.OpText, true, doc)
	c.readJSON("pong")
	c.writeFrame(ws.OpText, false, doc[:1000])
	c.writeFrame(ws.OpPing, true, []byte("mid")) // control frames may interleave
	c.writeFrame(ws.OpContinuation, false, doc[1000:500000])
	c.writeFrame(ws.OpContinuation, true, doc[500000:])
	gotPong, gotPing := false, false
	for !gotPong || !gotPing {
		h, p, err := c.readFrame(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case h.OpCode == ws.OpPong && string(p) == "mid":
			gotPing = true
		case h.OpCode == ws.OpText && string(p) == `{"type":"pong"}`:
			gotPong = true
		}
	}
}

func TestProtocolViolationsClose1002(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(c *rawClient)
	}{
		{"unmasked frame", func(c *rawClient) {
			ws.WriteFrame(c.conn, ws.NewTextFrame([]byte(`{"type":"ping"}`)))
		}},
		{"RSV bit without extension", func(c *rawClient) {
			f := ws.MaskFrameWith(ws.NewTextFrame([]byte(`{"type":"ping"}`)), ws.NewMask())
			f.Header.Rsv = ws.Rsv(true, false, false)
			ws.WriteFrame(c.conn, f)
		}},
		{"reserved opcode", func(c *rawClient) {
			ws.WriteFrame(c.conn, ws.MaskFrameWith(ws.NewFrame(ws.OpCode(0x3), true, []byte("x")), ws.NewMask()))
		}},
		{"continuation without a start", func(c *rawClient) {
			c.writeFrame(ws.OpContinuation, true, []byte(`{"type":"ping"}`))
		}},
		{"new message inside a fragmented one", func(c *rawClient) {
			c.writeFrame(ws.OpText, false, []byte(`{"type":`))
			c.writeFrame(ws.OpText, true, []byte(`{"type":"ping"}`))
		}},
		{"control frame over 125 bytes", func(c *rawClient) {
			ws.WriteFrame(c.conn, ws.MaskFrameWith(ws.NewPingFrame(make([]byte, 126)), ws.NewMask()))
		}},
		{"fragmented control frame", func(c *rawClient) {
			ws.WriteFrame(c.conn, ws.MaskFrameWith(ws.NewFrame(ws.OpPing, false, []byte("x")), ws.NewMask()))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := newTestHub(t, Config{}, replay.MemoryConfig{})
			c := th.dialRaw(t, 0)
			c.resumeLatest()
			tc.send(c)
			if code, ctrl := c.readClose(5 * time.Second); code != ws.StatusProtocolError || len(ctrl) != 0 {
				t.Fatalf("close %d, controls %v; want 1002", code, ctrl)
			}
		})
	}
}

func TestClientCloseAndPing(t *testing.T) {
	th := newTestHub(t, Config{}, replay.MemoryConfig{})
	c := th.dialRaw(t, 0)
	c.resumeLatest()
	c.writeFrame(ws.OpPing, true, []byte("hello"))
	for {
		h, p, err := c.readFrame(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if h.OpCode == ws.OpPong {
			if string(p) != "hello" {
				t.Fatalf("pong payload %q", p)
			}
			break
		}
	}
	c.writeFrame(ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye"))
	if code, _ := c.readClose(5 * time.Second); code != ws.StatusNormalClosure {
		t.Fatalf("close %d", code)
	}
	waitFor(t, 5*time.Second, "the session to end", func() bool { return th.Clients() == 0 })
}

// The server pings; a peer that never answers is closed, one that answers
// (coder/websocket does while reading) stays.
func TestPongTimeout(t *testing.T) {
	th := newTestHub(t, Config{PingInterval: 50 * time.Millisecond, SendTimeout: 100 * time.Millisecond}, replay.MemoryConfig{})
	good := th.dial(t)
	good.send(map[string]any{"type": "resume", "from": "latest"})
	good.readUntil(isType("replay_complete"))
	// coder/websocket answers pings only while a Read is in progress.
	type result struct {
		f   frame
		err error
	}
	goodRead := make(chan result, 1)
	go func() {
		f, err := good.read(10 * time.Second)
		goodRead <- result{f, err}
	}()
	bad := th.dialRaw(t, 0)
	bad.resumeLatest()
	start := time.Now()
	bad.expectPongTimeout()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("closed after %v", d)
	}
	// The answering client is alive well past the same time.
	time.Sleep(300 * time.Millisecond) // six more ping intervals
	th.publish(0, 0, 1)
	r := <-goodRead
	if r.err != nil || r.f.json["type"] != "cursor" {
		t.Fatalf("answering client: %v %v", r.f.json, r.err)
	}
}

// expectPongTimeout reads, never answering pings, until the server closes
// the connection: after at least two pings, with 1008.
func (c *rawClient) expectPongTimeout() {
	c.t.Helper()
	pings := 0
	var code ws.StatusCode
	for code == 0 {
		h, p, err := c.readFrame(5 * time.Second)
		if err != nil {
			c.t.Fatalf("no close frame after %d pings: %v", pings, err)
		}
		switch h.OpCode {
		case ws.OpPing:
			pings++
		case ws.OpClose:
			code, _ = ws.ParseCloseFrameData(p)
		}
	}
	if pings < 2 || code != ws.StatusPolicyViolation {
		c.t.Fatalf("%d pings, close %d", pings, code)
	}
}

// TestShutdown: every client gets 1001, Shutdown returns, and a connection
// arriving afterwards is refused.
func TestShutdown(t *testing.T) {
	th := newTestHub(t, Config{ResumeWait: 10 * time.Second}, replay.MemoryConfig{})
	th.publish(0, 0, 10)
	waiting := th.dial(t) // no resume yet
	live := th.dial(t)
	live.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": "3"}})
	live.readUntil(isType("replay_complete"))
	raw := th.dialRaw(t, 0)
	raw.resumeLatest()
	waitFor(t, 5*time.Second, "three sessions", func() bool { return th.Clients() == 3 })
	start := time.Now()
	if err := th.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	for name, c := range map[string]*client{"waiting": waiting, "live": live} {
		if code, ctrl := c.expectClose(5 * time.Second); code != websocket.StatusGoingAway {
			t.Fatalf("%s client: close %d, controls %v", name, code, ctrl)
		}
	}
	if code, _ := raw.readClose(5 * time.Second); code != ws.StatusGoingAway {
		t.Fatalf("raw client: close %d", code)
	}
	if th.Clients() != 0 {
		t.Fatalf("%d sessions after shutdown", th.Clients())
	}
	// A connection arriving now is refused: either before the upgrade or
	// with 1001 and nothing else.
	late := th.dialRaw(t, 0)
	if code, ctrl := late.readClose(5 * time.Second); code != ws.StatusGoingAway || len(ctrl) != 0 {
		t.Fatalf("late client: close %d, controls %v", code, ctrl)
	}
	th.publish(0, 10, 1) // publishing after shutdown must not block or panic
}

// A reader closing its side while the server writes must end the session
// without leaking (goleak checks the goroutines at exit).
func TestAbruptDisconnects(t *testing.T) {
	th := newTestHub(t, Config{}, replay.MemoryConfig{PerPartition: 10000})
	th.publishSized(0, 0, 2000, 1000)
	for i := range 20 {
		c := th.dialRaw(t, 0)
		c.writeJSON(map[string]any{"type": "resume", "from": "earliest"})
		if i%2 == 0 {
			c.readFrame(5 * time.Second)
		}
		c.conn.Close()
	}
	waitFor(t, 5*time.Second, "every session to end", func() bool { return th.Clients() == 0 })
}

// Shutdown with a client whose socket is full returns within about the send
// deadline; the other clients get 1001 at once.
func TestShutdownWithStuckClient(t *testing.T) {
	const sendTimeout = 300 * time.Millisecond
	th := newTestHubBuffers(t, Config{SendTimeout: sendTimeout}, replay.MemoryConfig{PerPartition: 10000}, sockBuf)
	stuck := th.dialRaw(t, sockBuf)
	stuck.resumeLatest()
	good := th.dial(t)
	good.send(map[string]any{"type": "resume", "from": "latest"})
	good.readUntil(isType("replay_complete"))
	th.publishSized(0, 0, 500, 2000) // 1 MB: the stuck socket fills
	good.readRecords(500)
	start := time.Now()
	if err := th.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > sendTimeout+1500*time.Millisecond {
		t.Fatalf("Shutdown took %v", d)
	}
	if code, _ := good.expectClose(5 * time.Second); code != websocket.StatusGoingAway {
		t.Fatalf("good client: close %d", code)
	}
}
