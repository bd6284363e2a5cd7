package app

// Helpers of the core_* end-to-end tests (issue 3, "Gateway core"): an
// ordered stream reader that does not fail the test (usable from
// goroutines), a raw WebSocket client over a plain TCP connection (for
// clients that misbehave: never read, send malformed or oversized frames),
// polling of heads and HTTP endpoints, and a small Prometheus text parser.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// coreStream is everything a client received, in arrival order.
type coreStream struct {
	msgs []wsclient.Message
}

func (s *coreStream) add(m wsclient.Message) {
	if m.Kind == wsclient.KindRecord {
		m.Record.Value = bytes.Clone(m.Record.Value)
	} else {
		m.Control.Raw = bytes.Clone(m.Control.Raw)
	}
	s.msgs = append(s.msgs, m)
}

// records returns the records in arrival order.
func (s *coreStream) records() []wsclient.Record {
	var out []wsclient.Record
	for _, m := range s.msgs {
		if m.Kind == wsclient.KindRecord {
			out = append(out, m.Record)
		}
	}
	return out
}

// controls returns the control frames of type typ ("" = all) in order.
func (s *coreStream) controls(typ string) []wsclient.Control {
	var out []wsclient.Control
	for _, m := range s.msgs {
		if m.Kind == wsclient.KindControl && (typ == "" || m.Control.Type == typ) {
			out = append(out, m.Control)
		}
	}
	return out
}

// recordsBefore counts the records received before the first control frame
// of type typ (-1 when there is none).
func (s *coreStream) recordsBefore(typ string) int {
	n := 0
	for _, m := range s.msgs {
		if m.Kind == wsclient.KindControl && m.Control.Type == typ {
			return n
		}
		if m.Kind == wsclient.KindRecord {
			n++
		}
	}
	return -1
}

// last returns the last offset received per partition.
func (s *coreStream) last() map[int32]int64 {
	out := map[int32]int64{}
	for _, r := range s.records() {
		out[r.Partition] = r.Offset
	}
	return out
}

// reachedAll reports whether the last offset of every partition of want
// reached it.
func (s *coreStream) reachedAll(want map[int32]int64) bool {
	last := s.last()
	for p, o := range want {
		if l, ok := last[p]; !ok || l < o {
			return false
		}
	}
	return true
}

func (s *coreStream) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d records, last %v, controls:", len(s.records()), s.last())
	for _, c := range s.controls("") {
		fmt.Fprintf(&b, " %s", c.Raw)
	}
	return b.String()
}

// coreRead reads c until done(stream) holds. It never fails the test, so it
// can run in a goroutine; the stream read so far comes back with the error.
func coreRead(ctx context.Context, c *wsclient.Conn, s *coreStream, done func(*coreStream) bool) error {
	for !done(s) {
		m, err := c.Next(ctx)
		if err != nil {
			return err
		}
		s.add(m)
	}
	return nil
}

// coreReadT is coreRead on the test goroutine: it fails the test on error.
func coreReadT(t testing.TB, c *wsclient.Conn, s *coreStream, timeout time.Duration, what string, done func(*coreStream) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := coreRead(ctx, c, s, done); err != nil {
		t.Fatalf("%s: %v; got so far: %s", what, err, s.summary())
	}
}

// coreUntilControl is a done func: a control frame of type typ was received n
// times.
func coreUntilControl(typ string, n int) func(*coreStream) bool {
	return func(s *coreStream) bool { return len(s.controls(typ)) >= n }
}

// coreOffsets groups offsets per partition in arrival order.
func coreOffsets(recs []wsclient.Record) map[int32][]int64 {
	out := map[int32][]int64{}
	for _, r := range recs {
		out[r.Partition] = append(out[r.Partition], r.Offset)
	}
	return out
}

// span returns the offsets from..to inclusive.
func coreSpan(from, to int64) []int64 {
	var out []int64
	for o := from; o <= to; o++ {
		out = append(out, o)
	}
	return out
}

// after returns the offsets of offs strictly greater than cursor.
func coreAfter(offs []int64, cursor int64) []int64 {
	var out []int64
	for _, o := range offs {
		if o > cursor {
			out = append(out, o)
		}
	}
	return out
}

// assertOffsets checks that got holds exactly want per partition, in order
// (no duplicate, no hole, no extra partition).
func coreAssertOffsets(t testing.TB, what string, got []wsclient.Record, want map[int32][]int64) {
	t.Helper()
	g := coreOffsets(got)
	for p, w := range want {
		if !slices.Equal(g[p], w) {
			t.Errorf("%s: partition %d: got %s, want %s", what, p, coreFmtOffsets(g[p]), coreFmtOffsets(w))
		}
	}
	for p, o := range g {
		if _, ok := want[p]; !ok && len(o) > 0 {
			t.Errorf("%s: partition %d: got %s, want nothing", what, p, coreFmtOffsets(o))
		}
	}
}

// fmtOffsets prints runs of consecutive offsets compactly: [0-9 11 13-20].
func coreFmtOffsets(offs []int64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < len(offs); {
		j := i
		for j+1 < len(offs) && offs[j+1] == offs[j]+1 {
			j++
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", offs[i], offs[j])
		} else {
			fmt.Fprintf(&b, "%d", offs[i])
		}
		i = j + 1
	}
	b.WriteByte(']')
	return b.String()
}

// coreDecode decodes a control frame, failing the test on error.
func coreDecode[T any](t testing.TB, c wsclient.Control) T {
	t.Helper()
	var v T
	if err := c.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", c.Raw, err)
	}
	return v
}

// coreReplayComplete returns the single replay_complete frame, failing the
// test when there is not exactly one.
func coreReplayComplete(t testing.TB, s *coreStream) wsclient.ReplayComplete {
	t.Helper()
	rcs := s.controls("replay_complete")
	if len(rcs) != 1 {
		t.Fatalf("want exactly one replay_complete, got %d: %s", len(rcs), s.summary())
	}
	return coreDecode[wsclient.ReplayComplete](t, rcs[0])
}

// lastOffsets converts a replay_complete's map.
func coreRCLast(rc wsclient.ReplayComplete) map[int32]int64 {
	out := make(map[int32]int64, len(rc.LastOffsetsByPartition))
	for p, o := range rc.LastOffsetsByPartition {
		out[p] = int64(o)
	}
	return out
}

// coreWaitHeads polls until the gateway's hub has been handed at least want per
// partition (the consumer has consumed and published them).
func coreWaitHeads(t testing.TB, g *gateway, want map[int32]int64) {
	t.Helper()
	testenv.WaitFor(t, 30*time.Second, func() bool {
		h := g.Hub().Heads()
		for p, o := range want {
			if h[p] < o {
				return false
			}
			if _, ok := h[p]; !ok {
				return false
			}
		}
		return true
	}, fmt.Sprintf("hub heads reach %v", want))
}

// lastOf returns the last offset per partition of produced offsets.
func coreLastOf(m map[int32][]int64) map[int32]int64 {
	out := map[int32]int64{}
	for p, o := range m {
		if len(o) > 0 {
			out[p] = o[len(o)-1]
		}
	}
	return out
}

// coreGetJSON fetches path and decodes its JSON body with numbers kept exact.
func coreGetJSON(t testing.TB, g *gateway, path string) (int, map[string]any) {
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

// coreJSONInt reads an integer JSON number at key of obj (failing on anything
// else: a string, a float, null, missing).
func coreJSONInt(t testing.TB, obj map[string]any, key string) int64 {
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

// corePromSample is one sample line of the Prometheus text format.
type corePromSample struct {
	name   string
	labels map[string]string
	value  float64
}

// coreParseProm parses the sample lines of a Prometheus text exposition.
func coreParseProm(t testing.TB, body []byte) []corePromSample {
	t.Helper()
	var out []corePromSample
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s := corePromSample{labels: map[string]string{}}
		var rest string
		if i := strings.IndexAny(line, "{ "); i >= 0 && line[i] == '{' {
			s.name = line[:i]
			j := strings.LastIndex(line, "}")
			for _, kv := range coreSplitLabels(line[i+1 : j]) {
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
		out = append(out, s)
	}
	return out
}

// coreSplitLabels splits `a="x",b="y,z"` at the commas outside quotes.
func coreSplitLabels(s string) []string {
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

// metric returns the value of the sample name whose labels include labels,
// summed over matching samples, and whether any matched.
func coreMetric(samples []corePromSample, name string, labels map[string]string) (float64, bool) {
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
func coreScrape(t testing.TB, g *gateway) []corePromSample {
	t.Helper()
	code, body := g.get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: HTTP %d", code)
	}
	return coreParseProm(t, body)
}

// coreRaw is a WebSocket client on a plain TCP connection: the test decides
// what it sends and when (or whether) it reads.
type coreRaw struct {
	conn net.Conn
	br   *bufio.Reader
}

// coreDialRaw upgrades a TCP connection to g's /ws. rcvBuf > 0 shrinks the
// socket's receive buffer first (a client that does not read then stalls
// the server's writes quickly).
func coreDialRaw(t testing.TB, g *gateway, rcvBuf int) *coreRaw {
	t.Helper()
	d := ws.Dialer{
		Timeout: 10 * time.Second,
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var nd net.Dialer
			c, err := nd.DialContext(ctx, network, addr)
			if err == nil && rcvBuf > 0 {
				err = c.(*net.TCPConn).SetReadBuffer(rcvBuf)
			}
			return c, err
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, br, _, err := d.Dial(ctx, g.ws)
	if err != nil {
		t.Fatalf("raw dial: %v", err)
	}
	if br == nil {
		br = bufio.NewReaderSize(conn, 4096)
	}
	t.Cleanup(func() { conn.Close() })
	return &coreRaw{conn: conn, br: br}
}

// writeFrame writes one masked frame.
func (r *coreRaw) writeFrame(t testing.TB, op ws.OpCode, fin bool, payload []byte) {
	t.Helper()
	r.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := ws.WriteFrame(r.conn, ws.MaskFrameInPlace(ws.NewFrame(op, fin, payload))); err != nil {
		t.Fatalf("raw write: %v", err)
	}
}

// sendJSON writes v as a text frame.
func (r *coreRaw) sendJSON(t testing.TB, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	r.writeFrame(t, ws.OpText, true, b)
}

// coreRawClosed is returned by coreRaw.next when a close frame arrived.
type coreRawClosed struct {
	code   int
	reason string
}

func (e *coreRawClosed) Error() string { return fmt.Sprintf("close frame %d %q", e.code, e.reason) }

// next reads the next data frame (answering pings) until deadline: a text
// frame (cursor frames included) or a binary frame.
func (r *coreRaw) next(deadline time.Time) (ws.OpCode, []byte, error) {
	r.conn.SetReadDeadline(deadline)
	for {
		h, err := ws.ReadHeader(r.br)
		if err != nil {
			return 0, nil, err
		}
		if h.Masked {
			return 0, nil, errors.New("server frame is masked")
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(r.br, p); err != nil {
			return 0, nil, err
		}
		switch h.OpCode {
		case ws.OpClose:
			ce := &coreRawClosed{code: 1005}
			if len(p) >= 2 {
				ce.code, ce.reason = int(binary.BigEndian.Uint16(p)), string(p[2:])
			}
			return 0, nil, ce
		case ws.OpPing, ws.OpPong:
			continue
		}
		return h.OpCode, p, nil
	}
}

// nextControl reads until a text frame that is not a cursor and returns its
// JSON (records on the way are discarded).
func (r *coreRaw) nextControl(t testing.TB, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		op, p, err := r.next(deadline)
		if err != nil {
			t.Fatalf("raw read: %v", err)
		}
		if op != ws.OpText {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(p, &m); err != nil {
			t.Fatalf("text frame %q: %v", p, err)
		}
		if m["type"] != "cursor" {
			return m
		}
	}
}

// nextMessage reads the next record or control frame like wsclient does:
// a cursor frame must be followed by its binary frame.
func (r *coreRaw) nextMessage(deadline time.Time) (wsclient.Message, error) {
	op, p, err := r.next(deadline)
	if err != nil {
		return wsclient.Message{}, err
	}
	if op != ws.OpText {
		return wsclient.Message{}, fmt.Errorf("binary frame without a cursor")
	}
	var head struct {
		Type      string          `json:"type"`
		Partition int32           `json:"partition"`
		Offset    wsclient.Offset `json:"offset"`
	}
	if err := json.Unmarshal(p, &head); err != nil {
		return wsclient.Message{}, fmt.Errorf("text frame %q: %w", p, err)
	}
	if head.Type != "cursor" {
		return wsclient.Message{Kind: wsclient.KindControl, Control: wsclient.Control{Type: head.Type, Raw: p}}, nil
	}
	op, v, err := r.next(deadline)
	if err != nil {
		return wsclient.Message{}, err
	}
	if op != ws.OpBinary {
		return wsclient.Message{}, fmt.Errorf("cursor p%d@%d followed by a text frame %q", head.Partition, head.Offset, v)
	}
	return wsclient.Message{Kind: wsclient.KindRecord, Record: wsclient.Record{Partition: head.Partition, Offset: int64(head.Offset), Value: v}}, nil
}

// read reads r into s until done, failing the test after timeout.
func (r *coreRaw) read(t testing.TB, s *coreStream, timeout time.Duration, what string, done func(*coreStream) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !done(s) {
		m, err := r.nextMessage(deadline)
		if err != nil {
			t.Fatalf("%s: %v; got so far: %s", what, err, s.summary())
		}
		s.add(m)
	}
}

// coreBigEvent is a valid Event of about size bytes (a long node id).
func coreBigEvent(t testing.TB, thread string, seq uint64, size int) []byte {
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
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: coreBigEvent(t, "big-"+strconv.Itoa(int(p)), uint64(i+1), size)})
		}
	}
	offs := k.ProduceRecords(t, recs...)
	out := map[int32][]int64{}
	for i, r := range recs {
		out[r.Partition] = append(out[r.Partition], offs[i])
	}
	return out
}

// coreTCPState returns the kernel's state (hex, as in /proc/net/tcp: "01"
// ESTABLISHED, "04" FIN_WAIT1, ...) of the IPv4 socket local→remote, "" when
// no such socket exists, and false when /proc/net/tcp cannot be read.
func coreTCPState(local, remote *net.TCPAddr) (string, bool) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return "", false
	}
	hexAddr := func(a *net.TCPAddr) string {
		ip := a.IP.To4()
		return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], a.Port)
	}
	l, r := hexAddr(local), hexAddr(remote)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == l && f[2] == r {
			return f[3], true
		}
	}
	return "", true
}
