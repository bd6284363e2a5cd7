package wsclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gobwas/ws"

	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// Lean is a protocol connection over a raw net.Conn (gobwas/ws handshake,
// hand-rolled frame reading into one reused buffer). It exists for load
// generation: Next allocates nothing per record, and a Record's Value (like
// a Control's Raw) aliases the connection's buffer until the next call.
type Lean struct {
	conn   net.Conn
	br     *bufio.Reader
	buf    []byte
	limit  int64
	pair   pairer
	ctrl   [125]byte // payload of one control frame
	v2     bool      // the server selected dashstream.v2
	readAt int64     // unix µs when the last socket read returned data
	// watched is the context Next watched last; like readAt it belongs to
	// the reading goroutine.
	watched context.Context

	wmu sync.Mutex // serializes writes: Send, pongs, Close

	cmu    sync.Mutex // guards the context watch below
	ctx    context.Context
	stop   func() bool
	gen    uint64
	closed bool
}

// DialLean connects like Dial, with the lean transport.
func DialLean(ctx context.Context, url string, opts Options) (*Lean, error) {
	d := ws.Dialer{
		Timeout:        opts.dialTimeout(),
		Header:         ws.HandshakeHeaderHTTP(opts.header()),
		ReadBufferSize: readBufferSize(opts),
		Protocols:      opts.subprotocols(),
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nd := net.Dialer{}
			if opts.LocalAddr != nil {
				nd.LocalAddr = opts.LocalAddr
			}
			return nd.DialContext(ctx, network, addr)
		},
	}
	conn, br, hs, err := d.Dial(ctx, url)
	if err != nil {
		var se ws.StatusError
		if errors.As(err, &se) {
			err = &HandshakeError{Status: int(se)}
		}
		return nil, fmt.Errorf("wsclient: dial %s: %w", url, err)
	}
	l := &Lean{conn: conn, buf: make([]byte, 0, 1024), limit: opts.readLimit(), v2: hs.Protocol == wsproto.SubprotocolV2}
	var src io.Reader = stampedReader{conn: conn, at: &l.readAt}
	if br != nil { // bytes the server sent right after the handshake come first
		held, _ := br.Peek(br.Buffered())
		src = io.MultiReader(bytes.NewReader(bytes.Clone(held)), src)
		ws.PutReader(br)
	}
	l.readAt = time.Now().UnixMicro()
	l.br = bufio.NewReaderSize(src, readBufferSize(opts))
	if opts.Resume != nil {
		if err := l.Send(opts.Resume); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return l, nil
}

// stampedReader notes when each socket read returns data: the moment the
// bytes reached this process.
type stampedReader struct {
	conn net.Conn
	at   *int64
}

func (r stampedReader) Read(p []byte) (int, error) {
	n, err := r.conn.Read(p)
	if n > 0 {
		*r.at = time.Now().UnixMicro()
	}
	return n, err
}

// ReceivedAt is when the message Next returned last was complete in this
// process: the return of the socket read that brought its last byte (for
// bytes that came with the handshake, the end of DialLean). One clock
// reading per read call serves every message that read brought, so a load
// generator can time each record without a clock call per record. Like
// Next, it belongs to the reading goroutine.
func (l *Lean) ReceivedAt() time.Time { return time.UnixMicro(l.readAt) }

func readBufferSize(opts Options) int {
	if opts.ReadBufferSize > 0 {
		return opts.ReadBufferSize
	}
	return 8 << 10
}

// Send writes v as a masked JSON text frame.
func (l *Lean) Send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("wsclient: encode frame: %w", err)
	}
	return l.writeFrame(ws.OpText, b)
}

func (l *Lean) writeFrame(op ws.OpCode, payload []byte) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := ws.WriteFrame(l.conn, ws.MaskFrameInPlace(ws.NewFrame(op, true, payload))); err != nil {
		return fmt.Errorf("wsclient: send: %w", err)
	}
	return nil
}

// Next returns the next record or control frame; see Lean for how long the
// returned bytes stay valid. When ctx ends the read is interrupted and ctx's
// error returned; the connection must then be closed.
func (l *Lean) Next(ctx context.Context) (Message, error) {
	l.watch(ctx)
	for {
		op, payload, err := l.readMessage()
		if err != nil {
			return Message{}, l.readErr(ctx, err)
		}
		if l.v2 {
			return v2Message(op == ws.OpBinary, payload)
		}
		if op == ws.OpBinary {
			return l.pair.binary(payload)
		}
		msg, ok, err := l.pair.text(payload, true)
		if ok || err != nil {
			return msg, err
		}
	}
}

// NextFrame returns the next data frame of a v2 connection as it came:
// text tells a text frame (a JSON record or a control frame) from a binary
// one, and payload aliases the connection's buffer like Next's values. It
// lets a caller read the frames it knows with its own parser and hand the
// rest to ParseV2Frame; a v1 connection (whose records span two frames)
// gets an error.
func (l *Lean) NextFrame(ctx context.Context) (text bool, payload []byte, err error) {
	if !l.v2 {
		return false, nil, fmt.Errorf("%w: NextFrame needs a v2 connection", ErrProtocol)
	}
	l.watch(ctx)
	op, payload, err := l.readMessage()
	if err != nil {
		return false, nil, l.readErr(ctx, err)
	}
	return op == ws.OpText, payload, nil
}

// V2 reports whether the server selected protocol v2.
func (l *Lean) V2() bool { return l.v2 }

func (l *Lean) readErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ce *CloseError
	if errors.As(err, &ce) || errors.Is(err, ErrProtocol) {
		return err
	}
	return fmt.Errorf("wsclient: read: %w", err)
}

// watch arranges for ctx's end to interrupt the blocking read. The
// registration is kept while callers pass the same ctx, so a read loop pays
// for it once.
func (l *Lean) watch(ctx context.Context) {
	if ctx == l.watched { // the read loop's usual case: no lock
		return
	}
	l.cmu.Lock()
	defer l.cmu.Unlock()
	l.watched = ctx
	if ctx == l.ctx {
		return
	}
	if l.stop != nil {
		l.stop()
	}
	l.gen++
	l.ctx, l.stop = ctx, nil
	l.conn.SetReadDeadline(time.Time{})
	if ctx.Done() != nil {
		gen := l.gen
		l.stop = context.AfterFunc(ctx, func() { l.interrupt(gen) })
	}
}

func (l *Lean) interrupt(gen uint64) {
	l.cmu.Lock()
	defer l.cmu.Unlock()
	if gen == l.gen {
		l.conn.SetReadDeadline(time.Unix(1, 0))
	}
}

// Close sends a close frame (bounded by a short deadline) and closes the
// socket.
func (l *Lean) Close() error {
	l.cmu.Lock()
	if l.closed {
		l.cmu.Unlock()
		return nil
	}
	l.closed = true
	if l.stop != nil {
		l.stop()
	}
	l.gen++
	l.cmu.Unlock()
	_ = l.writeFrame(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, "")) // best effort; closing is what matters
	return l.conn.Close()
}

// CloseNow closes the socket without a close frame.
func (l *Lean) CloseNow() error {
	l.cmu.Lock()
	l.closed = true
	l.cmu.Unlock()
	return l.conn.Close()
}
