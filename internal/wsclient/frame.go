package wsclient

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/gobwas/ws"
)

// frameHeader is the part of a server frame header the reader needs.
type frameHeader struct {
	fin    bool
	op     ws.OpCode
	length int64
}

// readHeader parses a frame header straight from the buffered reader
// (Peek + Discard: no allocation). Server frames are never masked and,
// without negotiated extensions, never set RSV bits.
func (l *Lean) readHeader() (frameHeader, error) {
	b, err := l.br.Peek(2)
	if err != nil {
		return frameHeader{}, err
	}
	h := frameHeader{fin: b[0]&0x80 != 0, op: ws.OpCode(b[0] & 0x0f), length: int64(b[1] & 0x7f)}
	if b[0]&0x70 != 0 || b[1]&0x80 != 0 {
		return frameHeader{}, fmt.Errorf("%w: server frame with RSV bits or mask (% x)", ErrProtocol, b)
	}
	size := 2
	switch h.length {
	case 126:
		size = 4
	case 127:
		size = 10
	}
	if size > 2 {
		if b, err = l.br.Peek(size); err != nil {
			return frameHeader{}, err
		}
		if h.length, err = extendedLength(b); err != nil {
			return frameHeader{}, err
		}
	}
	_, err = l.br.Discard(size)
	return h, err
}

func extendedLength(b []byte) (int64, error) {
	if len(b) == 4 {
		return int64(binary.BigEndian.Uint16(b[2:])), nil
	}
	n := binary.BigEndian.Uint64(b[2:])
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("%w: frame length %d", ErrProtocol, n)
	}
	return int64(n), nil
}

// readMessage returns the next complete data message (reassembling
// fragments into l.buf) and answers control frames on the way.
func (l *Lean) readMessage() (ws.OpCode, []byte, error) {
	if cap(l.buf) > 4<<20 { // do not keep one huge message's buffer forever
		l.buf = make([]byte, 0, 1024)
	}
	l.buf = l.buf[:0]
	var op ws.OpCode
	for {
		h, err := l.readHeader()
		if err != nil {
			return 0, nil, err
		}
		if h.op.IsControl() {
			if err := l.control(h); err != nil {
				return 0, nil, err
			}
			continue
		}
		if op, err = nextOp(op, h.op); err != nil {
			return 0, nil, err
		}
		if int64(len(l.buf))+h.length > l.limit {
			return 0, nil, fmt.Errorf("%w: message larger than the read limit %d", ErrProtocol, l.limit)
		}
		if h.fin && len(l.buf) == 0 && h.length <= int64(l.br.Size()) {
			// A whole message that fits the read buffer is returned in
			// place: no copy (it stays valid until the next read).
			p, err := l.br.Peek(int(h.length))
			if err != nil {
				return 0, nil, err
			}
			_, err = l.br.Discard(len(p))
			return op, p, err
		}
		if l.buf, err = readAppend(l.br, l.buf, int(h.length)); err != nil {
			return 0, nil, err
		}
		if h.fin {
			return op, l.buf, nil
		}
	}
}

// nextOp checks fragmentation: a message starts with text or binary and
// continues with continuation frames only.
func nextOp(cur, got ws.OpCode) (ws.OpCode, error) {
	switch {
	case cur == 0 && (got == ws.OpText || got == ws.OpBinary):
		return got, nil
	case cur != 0 && got == ws.OpContinuation:
		return cur, nil
	}
	return 0, fmt.Errorf("%w: unexpected opcode %d", ErrProtocol, got)
}

// readAppend reads n bytes from r onto buf, growing it only when needed.
func readAppend(r io.Reader, buf []byte, n int) ([]byte, error) {
	at := len(buf)
	if cap(buf)-at < n {
		grown := make([]byte, at, max(2*cap(buf), at+n))
		copy(grown, buf)
		buf = grown
	}
	buf = buf[:at+n]
	_, err := io.ReadFull(r, buf[at:])
	return buf, err
}

// control handles ping, pong and close frames.
func (l *Lean) control(h frameHeader) error {
	if h.length > 125 || !h.fin {
		return fmt.Errorf("%w: control frame of %d bytes or fragmented", ErrProtocol, h.length)
	}
	p := l.ctrl[:h.length]
	if _, err := io.ReadFull(l.br, p); err != nil {
		return err
	}
	switch h.op {
	case ws.OpPing:
		return l.writeFrame(ws.OpPong, p)
	case ws.OpClose:
		return l.peerClosed(p)
	}
	return nil // pong
}

// peerClosed answers the server's close frame and reports it.
func (l *Lean) peerClosed(p []byte) error {
	ce := &CloseError{Code: int(ws.StatusNoStatusRcvd)}
	var reply []byte
	if len(p) >= 2 {
		ce.Code = int(binary.BigEndian.Uint16(p))
		ce.Reason = string(p[2:])
		reply = ws.NewCloseFrameBody(ws.StatusCode(ce.Code), "")
	}
	_ = l.writeFrame(ws.OpClose, reply) // best effort: the peer already closed
	return ce
}
