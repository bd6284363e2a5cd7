package hub

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gobwas/ws"
	"go.uber.org/goleak"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/replay/replaytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeTopo is a topic whose high watermarks the test sets.
type fakeTopo struct {
	mu  sync.Mutex
	hwm map[int32]int64
}

func (f *fakeTopo) Partitions() []int32 { return nil }
func (f *fakeTopo) HighWatermark(p int32) (int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.hwm[p]
	return o, ok
}

// LatestHighWatermark is the watermark the test set: there is no Kafka
// here to know a newer one.
func (f *fakeTopo) LatestHighWatermark(_ context.Context, p int32) (int64, error) {
	if o, ok := f.HighWatermark(p); ok {
		return o, nil
	}
	return 0, errors.New("fake topology: no watermark")
}

// unrestricted serves h to every client as an admitted, unrestricted one
// (a static token's identity), without a per-IP slot.
func unrestricted(h *Hub) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeWS(w, r, auth.Identity{}, nil)
	})
}

type testHub struct {
	*Hub
	mem   *replay.Memory
	tiers *replay.Tiers
	topo  *fakeTopo
	srv   *httptest.Server
	prev  map[int32]int64
}

func newTestHub(t *testing.T, cfg Config, mem replay.MemoryConfig) *testHub {
	t.Helper()
	return newTestHubBuffers(t, cfg, mem, 0)
}

// newTestHubBuffers is newTestHub whose server sockets have send and receive
// buffers of sockBuf bytes (0: the system's), so that a client that stops
// reading blocks the server after little data.
func newTestHubBuffers(t *testing.T, cfg Config, mem replay.MemoryConfig, sockBuf int) *testHub {
	t.Helper()
	m := replay.NewMemory(mem)
	topo := &fakeTopo{hwm: map[int32]int64{}}
	if cfg.ResumeWait == 0 {
		cfg.ResumeWait = 200 * time.Millisecond
	}
	tiers := replay.NewTiers(m, nil)
	h := New(cfg, tiers, topo, metrics.New(nil), slog.New(slog.DiscardHandler))
	// No broker here: "Kafka" retains what memory does (tests of a Kafka
	// that errs or moved its log start replace it with SetKafka).
	tiers.SetKafka(replaytest.WindowKafka{Memory: m, Heads: h.Heads})
	srv := httptest.NewUnstartedServer(unrestricted(h))
	if sockBuf > 0 {
		srv.Listener = smallBufListener{srv.Listener, sockBuf}
	}
	srv.Start()
	th := &testHub{Hub: h, mem: m, tiers: tiers, topo: topo, srv: srv, prev: map[int32]int64{}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		th.srv.Close()
	})
	return th
}

// publish hands n records of partition p, offsets from..from+n-1, to the hub.
func (th *testHub) publish(p int32, from int64, n int) {
	recs := make([]*replay.Record, n)
	for i := range recs {
		o := from + int64(i)
		prev, ok := th.prev[p]
		if !ok {
			prev = o - 1
		}
		recs[i] = &replay.Record{Partition: p, Offset: o, Prev: prev, Value: []byte("v-" + itoa(p) + "-" + itoa64(o)),
			Threads: []replay.ThreadSeq{{Thread: "t" + itoa(p), Sequence: uint64(o + 1)}}}
		th.prev[p] = o
	}
	th.topo.mu.Lock()
	th.topo.hwm[p] = from + int64(n)
	th.topo.mu.Unlock()
	th.Publish(recs)
}

// client is a real WebSocket client (coder/websocket, an independent
// implementation of the protocol).
type client struct {
	t    *testing.T
	conn *websocket.Conn
}

func (th *testHub) dial(t *testing.T) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(th.srv.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(16 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return &client{t: t, conn: c}
}

func (c *client) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	if err := c.conn.Write(context.Background(), websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// frame is one received frame: a JSON control frame or a binary value.
type frame struct {
	json   map[string]any
	binary []byte
}

func (c *client) read(timeout time.Duration) (frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	typ, b, err := c.conn.Read(ctx)
	if err != nil {
		return frame{}, err
	}
	if typ == websocket.MessageBinary {
		return frame{binary: b}, nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("bad JSON frame %q: %v", b, err)
	}
	return frame{json: m}, nil
}

// received is a record as a client saw it: a cursor then its binary frame.
type received struct {
	partition int32
	offset    int64
	value     string
}

// readUntil reads frames until stop returns true for a control frame,
// checking cursor/binary pairing, and returns records and control frames.
func (c *client) readUntil(stop func(map[string]any) bool) ([]received, []map[string]any) {
	c.t.Helper()
	var recs []received
	var ctrl []map[string]any
	for {
		f, err := c.read(5 * time.Second)
		if err != nil {
			c.t.Fatalf("read: %v (after %d records, controls %v)", err, len(recs), ctrl)
		}
		if f.binary != nil {
			c.t.Fatalf("binary frame without cursor")
		}
		if f.json["type"] == "cursor" {
			b, err := c.read(5 * time.Second)
			if err != nil || b.binary == nil {
				c.t.Fatalf("cursor not followed by a binary frame: %v %v", b.json, err)
			}
			recs = append(recs, received{partition: int32(f.json["partition"].(float64)),
				offset: parseOffset(c.t, f.json["offset"]), value: string(b.binary)})
			continue
		}
		ctrl = append(ctrl, f.json)
		if stop(f.json) {
			return recs, ctrl
		}
	}
}

// readRecords reads exactly n records (control frames are collected).
func (c *client) readRecords(n int) ([]received, []map[string]any) {
	c.t.Helper()
	var recs []received
	var ctrl []map[string]any
	for len(recs) < n {
		f, err := c.read(5 * time.Second)
		if err != nil {
			c.t.Fatalf("read: %v (after %d of %d records)", err, len(recs), n)
		}
		if f.json["type"] != "cursor" {
			ctrl = append(ctrl, f.json)
			continue
		}
		b, err := c.read(5 * time.Second)
		if err != nil || b.binary == nil {
			c.t.Fatalf("cursor not followed by a binary frame")
		}
		recs = append(recs, received{partition: int32(f.json["partition"].(float64)),
			offset: parseOffset(c.t, f.json["offset"]), value: string(b.binary)})
	}
	return recs, ctrl
}

func parseOffset(t *testing.T, v any) int64 {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("offset %v is not a JSON string", v)
	}
	var o int64
	if err := json.Unmarshal([]byte(s), &o); err != nil {
		t.Fatalf("offset %q: %v", s, err)
	}
	return o
}

func isType(typ string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["type"] == typ }
}

func itoa(p int32) string   { return itoa64(int64(p)) }
func itoa64(o int64) string { b, _ := json.Marshal(o); return string(b) }

// checkExact asserts that per partition the offsets are exactly want[p].
func checkExact(t *testing.T, got []received, want map[int32][]int64) {
	t.Helper()
	per := map[int32][]int64{}
	for _, d := range got {
		if d.value != "v-"+itoa(d.partition)+"-"+itoa64(d.offset) {
			t.Fatalf("p%d o%d carries %q", d.partition, d.offset, d.value)
		}
		per[d.partition] = append(per[d.partition], d.offset)
	}
	for p, w := range want {
		if len(per[p]) != len(w) {
			t.Fatalf("partition %d: got %d records %v, want %d", p, len(per[p]), head(per[p]), len(w))
		}
		for i := range w {
			if per[p][i] != w[i] {
				t.Fatalf("partition %d record %d: offset %d, want %d", p, i, per[p][i], w[i])
			}
		}
	}
}

func head(s []int64) []int64 {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

func seq(from, to int64) []int64 {
	var s []int64
	for o := from; o <= to; o++ {
		s = append(s, o)
		if o == to { // to may be 2^63-1
			break
		}
	}
	return s
}

func TestResumeCursorThenLive(t *testing.T) {
	th := newTestHub(t, Config{}, replay.MemoryConfig{})
	th.publish(0, 0, 10)
	th.publish(1, 100, 5)
	c := th.dial(t)
	c.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": "4"}})
	recs, ctrl := c.readUntil(isType("replay_complete"))
	checkExact(t, recs, map[int32][]int64{0: seq(5, 9), 1: seq(100, 104)})
	rc := ctrl[len(ctrl)-1]
	if rc["totalReplayed"].(float64) != 10 || rc["mode"] != "cursor" || rc["capped"] != false {
		t.Fatalf("replay_complete = %v", rc)
	}
	th.publish(0, 10, 3)
	live, _ := c.readRecords(3)
	checkExact(t, live, map[int32][]int64{0: seq(10, 12)})
}

// smallBufListener shrinks the socket buffers of accepted connections.
type smallBufListener struct {
	net.Listener
	size int
}

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(l.size)
		tc.SetReadBuffer(l.size)
	}
	return c, err
}

// smallRcvDialer dials with a receive buffer of size bytes set before the
// handshake (0: the system's).
func smallRcvDialer(size int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{}
	if size > 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
			})
			return errors.Join(err, serr)
		}
	}
	return d.DialContext
}

func (th *testHub) wsURL() string { return "ws" + strings.TrimPrefix(th.srv.URL, "http") + "/ws" }

// dialSmall is dial with a small client receive buffer.
func (th *testHub) dialSmall(t *testing.T, rcvBuf int) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tr := &http.Transport{DialContext: smallRcvDialer(rcvBuf)}
	t.Cleanup(tr.CloseIdleConnections)
	c, _, err := websocket.Dial(ctx, th.wsURL(), &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(16 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return &client{t: t, conn: c}
}

// publishRecs hands prepared records to the hub, chaining Prev per partition.
func (th *testHub) publishRecs(recs ...*replay.Record) {
	for _, r := range recs {
		if prev, ok := th.prev[r.Partition]; ok {
			r.Prev = prev
		} else {
			r.Prev = r.Offset - 1
		}
		th.prev[r.Partition] = r.Offset
		th.topo.mu.Lock()
		th.topo.hwm[r.Partition] = max(th.topo.hwm[r.Partition], r.Offset+1)
		th.topo.mu.Unlock()
	}
	th.Publish(recs)
}

// publishSized is publish with values padded to size bytes (the checked
// "v-p-o" prefix first).
func (th *testHub) publishSized(p int32, from int64, n, size int) {
	recs := make([]*replay.Record, n)
	for i := range recs {
		o := from + int64(i)
		recs[i] = &replay.Record{Partition: p, Offset: o, Value: paddedValue(p, o, size)}
	}
	th.publishRecs(recs...)
}

func paddedValue(p int32, o int64, size int) []byte {
	v := []byte("v-" + itoa(p) + "-" + itoa64(o))
	if len(v) < size {
		v = append(v, '|')
		v = append(v, bytes.Repeat([]byte{'.'}, size-len(v))...)
	}
	return v
}

// valueOK reports whether a received value is the one published for p/o.
func valueOK(d received) bool {
	want := "v-" + itoa(d.partition) + "-" + itoa64(d.offset)
	return d.value == want || strings.HasPrefix(d.value, want+"|")
}

// readToHeads reads until every partition of heads was delivered up to its
// head, collecting control frames on the way.
func (c *client) readToHeads(heads map[int32]int64, have []received) ([]received, []map[string]any) {
	c.t.Helper()
	last := map[int32]int64{}
	for _, d := range have {
		last[d.partition] = d.offset
	}
	done := func() bool {
		for p, h := range heads {
			if o, ok := last[p]; !ok || o < h {
				return false
			}
		}
		return true
	}
	var recs []received
	var ctrl []map[string]any
	for !done() {
		got, cf := c.readRecords(1)
		recs = append(recs, got...)
		ctrl = append(ctrl, cf...)
		last[got[0].partition] = got[0].offset
	}
	return recs, ctrl
}

// expectClose reads until the connection ends and returns its close status
// and the control frames read on the way (records are skipped).
func (c *client) expectClose(timeout time.Duration) (websocket.StatusCode, []map[string]any) {
	c.t.Helper()
	var ctrl []map[string]any
	deadline := time.Now().Add(timeout)
	for {
		f, err := c.read(time.Until(deadline))
		if err != nil {
			if time.Now().After(deadline) {
				c.t.Fatalf("connection still open after %v (controls %v)", timeout, ctrl)
			}
			return websocket.CloseStatus(err), ctrl
		}
		if f.json != nil && f.json["type"] != "cursor" {
			ctrl = append(ctrl, f.json)
		}
	}
}

// checkValues asserts that every received value is the one published.
func checkValues(t *testing.T, recs []received) {
	t.Helper()
	for _, d := range recs {
		if !valueOK(d) {
			t.Fatalf("p%d o%d carries %.40q", d.partition, d.offset, d.value)
		}
	}
}

func perPartition(recs []received) map[int32][]int64 {
	out := map[int32][]int64{}
	for _, d := range recs {
		out[d.partition] = append(out[d.partition], d.offset)
	}
	return out
}

func ofType(ctrl []map[string]any, typ string) []map[string]any {
	var out []map[string]any
	for _, m := range ctrl {
		if m["type"] == typ {
			out = append(out, m)
		}
	}
	return out
}

func num(m map[string]any, k string) int64 {
	f, ok := m[k].(float64)
	if !ok {
		panic(fmt.Sprintf("%s of %v is not a number", k, m))
	}
	return int64(f)
}

// offsetsOf decodes a {p:"o"} map of a server frame.
func offsetsOf(t *testing.T, v any) map[int32]int64 {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v is not an object", v)
	}
	out := map[int32]int64{}
	for k, o := range m {
		p, err := strconv.ParseInt(k, 10, 32)
		if err != nil {
			t.Fatalf("partition key %q", k)
		}
		out[int32(p)] = parseOffset(t, o)
	}
	return out
}

// waitFor polls cond until it holds or fails the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// rawClient speaks WebSocket by hand (gobwas/ws) to send what a well-behaved
// library never would.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func (th *testHub) dialRaw(t *testing.T, rcvBuf int) *rawClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, br, _, err := ws.Dialer{NetDial: smallRcvDialer(rcvBuf)}.Dial(ctx, th.wsURL())
	if err != nil {
		t.Fatalf("raw dial: %v", err)
	}
	if br == nil {
		br = bufio.NewReader(conn)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, conn: conn, r: br}
}

// writeFrame sends one masked client frame.
func (c *rawClient) writeFrame(op ws.OpCode, fin bool, payload []byte) {
	c.t.Helper()
	f := ws.MaskFrameWith(ws.NewFrame(op, fin, append([]byte(nil), payload...)), ws.NewMask())
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := ws.WriteFrame(c.conn, f); err != nil {
		c.t.Fatalf("raw write: %v", err)
	}
}

func (c *rawClient) writeJSON(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	c.writeFrame(ws.OpText, true, b)
}

// readFrame reads one server frame (bounded to 16 MiB).
func (c *rawClient) readFrame(timeout time.Duration) (ws.Header, []byte, error) {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	h, err := ws.ReadHeader(c.r)
	if err != nil {
		return h, nil, err
	}
	if h.Masked || h.Length > 16<<20 {
		c.t.Fatalf("bad server frame header %+v", h)
	}
	p := make([]byte, h.Length)
	_, err = io.ReadFull(c.r, p)
	return h, p, err
}

// readJSON reads frames until a JSON text frame of type typ (pings and other
// frames are skipped) and returns it.
func (c *rawClient) readJSON(typ string) map[string]any {
	c.t.Helper()
	for {
		h, p, err := c.readFrame(5 * time.Second)
		if err != nil {
			c.t.Fatalf("raw read waiting for %s: %v", typ, err)
		}
		if h.OpCode == ws.OpClose {
			code, reason := ws.ParseCloseFrameData(p)
			c.t.Fatalf("closed %d %q waiting for %s", code, reason, typ)
		}
		if h.OpCode != ws.OpText {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(p, &m); err != nil {
			c.t.Fatalf("bad JSON %q: %v", p, err)
		}
		if m["type"] == typ {
			return m
		}
	}
}

// readClose reads until a close frame, returning its code and the JSON
// frames before it; it fails if the connection ends without one.
func (c *rawClient) readClose(timeout time.Duration) (ws.StatusCode, []map[string]any) {
	c.t.Helper()
	var ctrl []map[string]any
	deadline := time.Now().Add(timeout)
	for {
		h, p, err := c.readFrame(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("no close frame: %v (controls %v)", err, ctrl)
		}
		switch h.OpCode {
		case ws.OpClose:
			code, _ := ws.ParseCloseFrameData(p)
			return code, ctrl
		case ws.OpText:
			var m map[string]any
			if err := json.Unmarshal(p, &m); err != nil {
				c.t.Fatalf("bad JSON %q: %v", p, err)
			}
			if m["type"] != "cursor" {
				ctrl = append(ctrl, m)
			}
		}
	}
}

// resumeLatest sends a latest resume and waits for its replay_complete.
func (c *rawClient) resumeLatest() {
	c.t.Helper()
	c.writeJSON(map[string]any{"type": "resume", "from": "latest"})
	c.readJSON("replay_complete")
}
