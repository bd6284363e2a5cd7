package wsclient

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// rawServer upgrades and runs script on the raw connection, then waits
// (up to 5 s) for the client to go.
func rawServer(t *testing.T, script func(conn net.Conn)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		defer conn.Close()
		script(conn)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 512)
		for {
			if _, err := conn.Read(buf); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// frameWriter writes each frame it is given on its own.
func frameWriter(t *testing.T, conn net.Conn) func(ws.Frame) {
	return func(f ws.Frame) {
		if err := ws.WriteFrame(conn, f); err != nil {
			t.Errorf("server write: %v", err)
		}
	}
}

func cursorText(p, o int) ws.Frame {
	return ws.NewTextFrame([]byte(`{"type":"cursor","partition":` + strconv.Itoa(p) + `,"offset":"` + strconv.Itoa(o) + `"}`))
}

// TestLeanValuesAcrossBufferSizes reads records smaller than, equal to and
// larger than the read buffer, and fragmented ones: values returned in
// place and values reassembled must both be byte-exact.
func TestLeanValuesAcrossBufferSizes(t *testing.T) {
	const bufSize = 64
	sizes := []int{0, 1, 40, bufSize - 1, bufSize, bufSize + 1, 3*bufSize + 7, 1000}
	payload := func(i, n int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, n) }
	url := rawServer(t, func(conn net.Conn) {
		w := frameWriter(t, conn)
		for i, n := range sizes {
			w(cursorText(0, i))
			w(ws.NewBinaryFrame(payload(i, n)))
		}
		// A fragmented record: binary without FIN, then a continuation.
		p := payload(len(sizes), 90)
		w(cursorText(0, len(sizes)))
		w(ws.NewFrame(ws.OpBinary, false, p[:30]))
		w(ws.NewFrame(ws.OpPing, true, []byte("x")))
		w(ws.NewFrame(ws.OpContinuation, true, p[30:]))
	})
	c, err := DialLean(context.Background(), url, Options{ReadBufferSize: bufSize})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	want := append(append([]int(nil), sizes...), 90)
	for i, n := range want {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		msg, err := c.Next(ctx)
		cancel()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if msg.Kind != KindRecord || msg.Record.Offset != int64(i) {
			t.Fatalf("record %d: got %+v", i, msg)
		}
		if !bytes.Equal(msg.Record.Value, payload(i, n)) {
			t.Fatalf("record %d (%d bytes): value %q", i, n, msg.Record.Value)
		}
	}
}

// TestLeanReceivedAt checks that ReceivedAt times each message by the socket
// read that brought it: two records sent 100 ms apart are stamped about
// 100 ms apart, and never later than Next returned.
func TestLeanReceivedAt(t *testing.T) {
	url := rawServer(t, func(conn net.Conn) {
		w := frameWriter(t, conn)
		w(cursorText(0, 0))
		w(ws.NewBinaryFrame([]byte("first")))
		time.Sleep(100 * time.Millisecond)
		w(cursorText(0, 1))
		w(ws.NewBinaryFrame([]byte("second")))
	})
	start := time.Now()
	c, err := DialLean(context.Background(), url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	var at [2]time.Time
	for i := range at {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := c.Next(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		at[i] = c.ReceivedAt()
		if at[i].Before(start.Truncate(time.Microsecond)) || at[i].After(time.Now()) {
			t.Fatalf("record %d stamped %v, outside [%v, now]", i, at[i], start)
		}
	}
	if d := at[1].Sub(at[0]); d < 90*time.Millisecond {
		t.Fatalf("records sent 100 ms apart stamped %v apart", d)
	}
}

// TestLeanReadsFramesSentWithTheHandshake covers frames that arrive in the
// same segment as the 101 response: the dialer buffered them, and they must
// come first, intact.
func TestLeanReadsFramesSentWithTheHandshake(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		req, err := http.ReadRequest(bufio.NewReader(conn))
		if err != nil {
			return
		}
		sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		var out bytes.Buffer
		out.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
		for i := range 3 {
			ws.WriteFrame(&out, cursorText(0, i))
			ws.WriteFrame(&out, ws.NewBinaryFrame([]byte("v"+strconv.Itoa(i))))
		}
		conn.Write(out.Bytes()) // one write: handshake and frames together
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, conn)
	}()
	c, err := DialLean(context.Background(), "ws://"+ln.Addr().String()+"/ws", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		msg, err := c.Next(ctx)
		cancel()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if msg.Record.Offset != int64(i) || string(msg.Record.Value) != "v"+strconv.Itoa(i) {
			t.Fatalf("record %d: %+v", i, msg.Record)
		}
	}
}
