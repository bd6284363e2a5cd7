package e2e

// The kit's client side (doc.go describes the whole kit): what a client
// received, read in order by readers that do not fail the test (usable
// from goroutines) or do; offsets per partition; waiting for the
// gateway's heads; and a raw WebSocket client over a plain TCP connection
// (for clients that misbehave: never read, send malformed or oversized
// frames).

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
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// stream is everything a client received, in arrival order.
type stream struct {
	msgs []wsclient.Message
	n    int // records among msgs
}

func (s *stream) add(m wsclient.Message) {
	if m.Kind == wsclient.KindRecord {
		m.Record.Value = bytes.Clone(m.Record.Value)
		s.n++
	} else {
		m.Control.Raw = bytes.Clone(m.Control.Raw)
	}
	s.msgs = append(s.msgs, m)
}

// records returns the records in arrival order.
func (s *stream) records() []wsclient.Record {
	var out []wsclient.Record
	for _, m := range s.msgs {
		if m.Kind == wsclient.KindRecord {
			out = append(out, m.Record)
		}
	}
	return out
}

// controls returns the control frames of type typ ("" = all) in order.
func (s *stream) controls(typ string) []wsclient.Control {
	var out []wsclient.Control
	for _, m := range s.msgs {
		if m.Kind == wsclient.KindControl && (typ == "" || m.Control.Type == typ) {
			out = append(out, m.Control)
		}
	}
	return out
}

// hasControl reports whether a control frame of type typ was received.
func (s *stream) hasControl(typ string) bool { return len(s.controls(typ)) > 0 }

// recordsBefore counts the records received before the first control frame
// of type typ (-1 when there is none).
func (s *stream) recordsBefore(typ string) int {
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
func (s *stream) last() map[int32]int64 {
	out := map[int32]int64{}
	for _, r := range s.records() {
		out[r.Partition] = r.Offset
	}
	return out
}

// reachedAll reports whether the last offset of every partition of want
// reached it.
func (s *stream) reachedAll(want map[int32]int64) bool {
	last := s.last()
	for p, o := range want {
		if l, ok := last[p]; !ok || l < o {
			return false
		}
	}
	return true
}

func (s *stream) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d records, last %v, controls:", len(s.records()), s.last())
	for _, c := range s.controls("") {
		fmt.Fprintf(&b, " %s", c.Raw)
	}
	return b.String()
}

// readMoreCtx reads c until done(stream) holds. It never fails the test, so it
// can run in a goroutine; the stream read so far comes back with the error.
func readMoreCtx(ctx context.Context, c *wsclient.Conn, s *stream, done func(*stream) bool) error {
	for !done(s) {
		m, err := c.Next(ctx)
		if err != nil {
			return err
		}
		s.add(m)
	}
	return nil
}

// readMore is readMoreCtx on the test goroutine: it fails the test on error.
func readMore(t testing.TB, c *wsclient.Conn, s *stream, timeout time.Duration, what string, done func(*stream) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := readMoreCtx(ctx, c, s, done); err != nil {
		t.Fatalf("%s: %v; got so far: %s", what, err, s.summary())
	}
}

// readN reads c, from now on, until n records arrived (control frames are
// kept too), failing the test at timeout.
func readN(t testing.TB, c *wsclient.Conn, n int, timeout time.Duration) *stream {
	t.Helper()
	return readUntil(t, c, timeout, func(s *stream) bool { return s.n >= n })
}

// readUntil reads c, from now on, until done holds, failing the test at
// timeout.
func readUntil(t testing.TB, c *wsclient.Conn, timeout time.Duration, done func(*stream) bool) *stream {
	t.Helper()
	s := &stream{}
	readMore(t, c, s, timeout, "read", done)
	return s
}

// untilControl is a done func: a control frame of type typ was received n
// times.
func untilControl(typ string, n int) func(*stream) bool {
	return func(s *stream) bool { return len(s.controls(typ)) >= n }
}

// offsetsOf groups offsets per partition in arrival order.
func offsetsOf(recs []wsclient.Record) map[int32][]int64 {
	out := map[int32][]int64{}
	for _, r := range recs {
		out[r.Partition] = append(out[r.Partition], r.Offset)
	}
	return out
}

// offsetRange returns the offsets from..to inclusive.
func offsetRange(from, to int64) []int64 {
	var out []int64
	for o := from; o <= to; o++ {
		out = append(out, o)
	}
	return out
}

// offsetsAfter returns the offsets of offs strictly greater than cursor.
func offsetsAfter(offs []int64, cursor int64) []int64 {
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
func assertOffsets(t testing.TB, what string, got []wsclient.Record, want map[int32][]int64) {
	t.Helper()
	g := offsetsOf(got)
	for p, w := range want {
		if !slices.Equal(g[p], w) {
			t.Errorf("%s: partition %d: got %s, want %s", what, p, fmtOffsets(g[p]), fmtOffsets(w))
		}
	}
	for p, o := range g {
		if _, ok := want[p]; !ok && len(o) > 0 {
			t.Errorf("%s: partition %d: got %s, want nothing", what, p, fmtOffsets(o))
		}
	}
}

// fmtOffsets prints runs of consecutive offsets compactly: [0-9 11 13-20].
func fmtOffsets(offs []int64) string {
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

// decodeControl decodes a control frame, failing the test on error.
func decodeControl[T any](t testing.TB, c wsclient.Control) T {
	t.Helper()
	var v T
	if err := c.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", c.Raw, err)
	}
	return v
}

// replayCompleteOf returns the single replay_complete frame, failing the
// test when there is not exactly one.
func replayCompleteOf(t testing.TB, s *stream) wsclient.ReplayComplete {
	t.Helper()
	rcs := s.controls("replay_complete")
	if len(rcs) != 1 {
		t.Fatalf("want exactly one replay_complete, got %d: %s", len(rcs), s.summary())
	}
	return decodeControl[wsclient.ReplayComplete](t, rcs[0])
}

// rcLast is a replay_complete's lastOffsetsByPartition as last offsets.
func rcLast(rc wsclient.ReplayComplete) map[int32]int64 {
	out := make(map[int32]int64, len(rc.LastOffsetsByPartition))
	for p, o := range rc.LastOffsetsByPartition {
		out[p] = int64(o)
	}
	return out
}

// waitHeads waits until the gateway's hub has been handed every partition
// of last up to its offset (the consumer consumed and published them).
func waitHeads(t testing.TB, g *gateway, last map[int32]int64, timeout time.Duration) {
	t.Helper()
	testenv.WaitFor(t, timeout, func() bool {
		h := g.Hub().Heads()
		for p, o := range last {
			if head, ok := h[p]; !ok || head < o {
				return false
			}
		}
		return true
	}, fmt.Sprintf("gateway heads reach %v", last))
}

// lastOf returns the last offset per partition of produced offsets.
func lastOf(m map[int32][]int64) map[int32]int64 {
	out := map[int32]int64{}
	for p, o := range m {
		if len(o) > 0 {
			out[p] = o[len(o)-1]
		}
	}
	return out
}

// rawConn is a WebSocket client on a plain TCP connection: the test decides
// what it sends and when (or whether) it reads.
type rawConn struct {
	conn net.Conn
	br   *bufio.Reader
}

// dialRaw upgrades a TCP connection to g's /ws. rcvBuf > 0 shrinks the
// socket's receive buffer first (a client that does not read then stalls
// the server's writes quickly).
func dialRaw(t testing.TB, g *gateway, rcvBuf int) *rawConn {
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
	return &rawConn{conn: conn, br: br}
}

// writeFrame writes one masked frame.
func (r *rawConn) writeFrame(t testing.TB, op ws.OpCode, fin bool, payload []byte) {
	t.Helper()
	r.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := ws.WriteFrame(r.conn, ws.MaskFrameInPlace(ws.NewFrame(op, fin, payload))); err != nil {
		t.Fatalf("raw write: %v", err)
	}
}

// sendJSON writes v as a text frame.
func (r *rawConn) sendJSON(t testing.TB, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	r.writeFrame(t, ws.OpText, true, b)
}

// rawClosed is returned by rawConn.next when a close frame arrived.
type rawClosed struct {
	code   int
	reason string
}

func (e *rawClosed) Error() string { return fmt.Sprintf("close frame %d %q", e.code, e.reason) }

// next reads the next data frame (answering pings) until deadline: a text
// frame (cursor frames included) or a binary frame.
func (r *rawConn) next(deadline time.Time) (ws.OpCode, []byte, error) {
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
			ce := &rawClosed{code: 1005}
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
func (r *rawConn) nextControl(t testing.TB, timeout time.Duration) map[string]any {
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
func (r *rawConn) nextMessage(deadline time.Time) (wsclient.Message, error) {
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
func (r *rawConn) read(t testing.TB, s *stream, timeout time.Duration, what string, done func(*stream) bool) {
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

// tcpState returns the kernel's state (hex, as in /proc/net/tcp: "01"
// ESTABLISHED, "04" FIN_WAIT1, ...) of the IPv4 socket local→remote, "" when
// no such socket exists, and false when /proc/net/tcp cannot be read.
func tcpState(local, remote *net.TCPAddr) (string, bool) {
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
