package hub

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// event is what the reader goroutine hands to the writer.
type event struct {
	text   []byte // a client text message, parsed by the writer
	reply  []byte // a frame to send as is (pong, error); may come with close
	close  ws.StatusCode
	reason string // of the close frame, with close
}

// accept upgrades the connection and starts its reader goroutine. A
// client that offers dashstream.v2 gets it selected and speaks protocol v2;
// otherwise the client's auth.Identity (from the admission check) selects
// the bearer subprotocol when the client authenticated with that idiom.
// The identity restricts the session to its tenant.
func (h *Hub) accept(w http.ResponseWriter, r *http.Request, id auth.Identity) (*session, error) {
	up := ws.HTTPUpgrader{Timeout: h.cfg.SendTimeout}
	v2 := offersV2(r)
	switch {
	case v2:
		up.Protocol = func(p string) bool { return p == wsproto.SubprotocolV2 }
	case id.Subprotocol != "":
		up.Protocol = func(p string) bool { return p == id.Subprotocol }
	}
	conn, rw, _, err := up.Upgrade(r, w)
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, err
	}
	s := newSession(h, conn, id.Tenant, v2)
	s.setExpiry(id.Expires)
	if err := h.add(s); err != nil {
		s.cancel(err)
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = conn.Write(closeFrame(ws.StatusGoingAway, "shutting down")) // best effort: the connection is closed next
		conn.Close()
		h.m.Rejected("shutdown")
		return nil, err
	}
	go s.readLoop(readerFor(conn, rw.Reader))
	return s, nil
}

// readerFor returns a small reader of conn, unless the hijacked reader still
// holds bytes the client already sent. Client frames are rare and small, so
// a 512-byte buffer saves memory on every idle connection.
func readerFor(conn net.Conn, hijacked *bufio.Reader) *bufio.Reader {
	if hijacked.Buffered() > 0 {
		return hijacked
	}
	return bufio.NewReaderSize(conn, 512)
}

func closeFrame(code ws.StatusCode, reason string) []byte {
	return wsproto.AppendFrame(nil, ws.OpClose, ws.NewCloseFrameBody(code, reason))
}

// readLoop reads client frames until the connection fails or the client
// closes it, and hands what they mean to the writer. It never writes:
// replies go to the writer through events.
func (s *session) readLoop(br *bufio.Reader) {
	defer s.kick() // a parked writer must see readDone
	defer close(s.readDone)
	defer s.cancel(errPeerGone) // a look-up in flight for this client stops
	fr := frameReader{br: br}
	for {
		in, err := fr.next()
		if err != nil {
			return
		}
		switch {
		case in.fail == ws.StatusMessageTooBig:
			s.h.m.ControlOversized.Inc()
			s.send(event{reply: wsproto.Frame(wsproto.NewError(wsproto.CodeControlTooLarge,
				"control frame exceeds 1 MiB")), close: ws.StatusMessageTooBig})
			return
		case in.fail != 0:
			s.send(event{close: in.fail})
			return
		case in.op == ws.OpPing:
			s.send(event{reply: wsproto.AppendFrame(nil, ws.OpPong, in.data)})
		case in.op == ws.OpPong:
			s.lastPong.Store(time.Now().UnixNano())
		case in.op == ws.OpClose:
			s.send(event{close: in.closeCode})
			return
		default:
			s.handleMessage(in.op, in.data)
		}
	}
}

// inbound is what one call of frameReader.next read.
type inbound struct {
	// op is OpText or OpBinary for a whole message, OpPing, OpPong or
	// OpClose for a control frame.
	op ws.OpCode
	// data is the message or control payload, unmasked; valid until the
	// next call.
	data []byte
	// closeCode answers a client close: its own code echoed, 1000 when it
	// sent none.
	closeCode ws.StatusCode
	// fail, when set, is the close code to fail the connection with
	// (RFC 6455 §7.1.7): 1002 protocol error, 1007 text that is not UTF-8,
	// 1009 message over wsproto.MaxControlBytes.
	fail ws.StatusCode
}

// frameReader reads client frames (RFC 6455 §5) from a hand-written,
// allocation-bounded loop: every size is checked against its bound before
// a byte of payload is buffered. No extension is negotiated, so RSV bits
// are errors. Not safe for concurrent use.
type frameReader struct {
	br         *bufio.Reader
	msg        []byte    // the message being assembled from fragments
	op         ws.OpCode // its opcode (text or binary)
	fragmented bool      // a data frame without FIN started a message
	// valid is how many bytes of a text msg are known to be whole, valid
	// UTF-8 runes; the rest (at most 3 bytes) is a rune cut by a fragment
	// boundary.
	valid int
}

// next reads frames until one means something to the session: a whole
// message, a control frame, or a violation to fail the connection for. An
// error means the connection ended (or broke) mid-frame.
func (fr *frameReader) next() (inbound, error) {
	for {
		hdr, err := ws.ReadHeader(fr.br)
		if errors.Is(err, ws.ErrHeaderLengthMSB) || errors.Is(err, ws.ErrHeaderLengthUnexpected) {
			return inbound{fail: ws.StatusProtocolError}, nil
		}
		if err != nil {
			return inbound{}, err
		}
		// RFC 6455 §5.1 (clients mask), §5.2 (RSV, reserved opcodes), §5.4
		// (continuations only inside a fragmented message).
		if !hdr.Masked || hdr.Rsv != 0 || hdr.OpCode.IsReserved() ||
			(hdr.OpCode.IsData() && (hdr.OpCode == ws.OpContinuation) != fr.fragmented) {
			return inbound{fail: ws.StatusProtocolError}, nil
		}
		if hdr.OpCode.IsControl() {
			return fr.control(hdr)
		}
		in, done, err := fr.data(hdr)
		if err != nil || done {
			return in, err
		}
	}
}

// control reads a control frame: at most 125 bytes, never fragmented
// (RFC 6455 §5.5).
func (fr *frameReader) control(hdr ws.Header) (inbound, error) {
	if hdr.Length > 125 || !hdr.Fin {
		return inbound{fail: ws.StatusProtocolError}, nil
	}
	p, err := readPayload(fr.br, hdr, nil)
	if err != nil {
		return inbound{}, err
	}
	in := inbound{op: hdr.OpCode, data: p}
	if hdr.OpCode == ws.OpClose {
		in.closeCode, in.fail = closeReply(p)
	}
	return in, nil
}

// closeReply checks a client close payload (RFC 6455 §5.5.1, §7.4): empty,
// or a code a peer may send followed by a UTF-8 reason. It returns the code
// to answer with, or the code to fail the connection with.
func closeReply(p []byte) (reply, fail ws.StatusCode) {
	switch {
	case len(p) == 0:
		return ws.StatusNormalClosure, 0
	case len(p) == 1:
		return 0, ws.StatusProtocolError
	}
	code := ws.StatusCode(binary.BigEndian.Uint16(p))
	switch {
	case !validCloseCode(code):
		return 0, ws.StatusProtocolError
	case !utf8.Valid(p[2:]):
		return 0, ws.StatusInvalidFramePayloadData
	}
	return code, 0
}

// validCloseCode reports whether a peer may send code in a close frame
// (RFC 6455 §7.4.1 and the IANA registry): 1000-1003 and 1007-1014 are
// defined (1004 is reserved; 1005, 1006 and 1015 must never be sent) and
// 3000-4999 belong to applications. 1016-2999 are reserved for future
// revisions of the protocol, so a peer sending one is in error.
func validCloseCode(code ws.StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	}
	return code >= 3000 && code <= 4999
}

// data reads a data frame into the message being assembled; done reports a
// whole message (or a failure) in in.
func (fr *frameReader) data(hdr ws.Header) (in inbound, done bool, err error) {
	if int64(len(fr.msg))+hdr.Length > wsproto.MaxControlBytes {
		return inbound{fail: ws.StatusMessageTooBig}, true, nil
	}
	if hdr.OpCode != ws.OpContinuation {
		fr.op, fr.valid = hdr.OpCode, 0
	}
	if fr.msg, err = readPayload(fr.br, hdr, fr.msg); err != nil {
		return inbound{}, true, err
	}
	fr.fragmented = !hdr.Fin
	// Text is checked as it arrives (RFC 6455 §8.1: fail at once, with
	// 1007), across fragments: a rune may be split between two of them.
	if fr.op == ws.OpText {
		n, ok := validUTF8Prefix(fr.msg[fr.valid:])
		fr.valid += n
		if !ok || (hdr.Fin && fr.valid != len(fr.msg)) {
			return inbound{fail: ws.StatusInvalidFramePayloadData}, true, nil
		}
	}
	if !hdr.Fin {
		return inbound{}, false, nil
	}
	in = inbound{op: fr.op, data: fr.msg}
	fr.msg = fr.msg[:0]
	if cap(fr.msg) > maxKeptBuffer { // an idle connection keeps no large buffer
		fr.msg = nil
	}
	return in, true, nil
}

// maxKeptBuffer is the largest message buffer a connection keeps between
// messages.
const maxKeptBuffer = 4 << 10

// validUTF8Prefix returns how many bytes at the start of b are whole, valid
// UTF-8 runes, and false if b holds an invalid sequence; an incomplete rune
// at the very end of b is not invalid (its next bytes may follow).
func validUTF8Prefix(b []byte) (int, bool) {
	if utf8.Valid(b) {
		return len(b), true
	}
	i := 0
	for i < len(b) {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		// FullRune is false only for a proper prefix of a valid encoding
		// (it checks the second byte's range, where surrogates and
		// overlong forms show).
		if !utf8.FullRune(b[i:]) {
			return i, true
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i, false
		}
		i += size
	}
	return i, true
}

func readPayload(br *bufio.Reader, hdr ws.Header, dst []byte) ([]byte, error) {
	n := len(dst)
	dst = append(dst, make([]byte, hdr.Length)...)
	if _, err := io.ReadFull(br, dst[n:]); err != nil {
		return dst, err
	}
	ws.Cipher(dst[n:], hdr.Mask, 0)
	return dst, nil
}

func (s *session) handleMessage(op ws.OpCode, msg []byte) {
	if op != ws.OpText {
		s.send(event{reply: wsproto.Frame(wsproto.NewError(wsproto.CodeBinaryNotSupported,
			"only JSON text frames are accepted"))})
		return
	}
	// Parsing (encoding/json) happens on the writer: the reader's stack
	// stays small for the life of an idle connection.
	s.send(event{text: bytes.Clone(msg)})
}

// send hands an event to the writer unless the session is over.
func (s *session) send(ev event) {
	select {
	case s.events <- ev:
		s.kick()
	case <-s.writerDone:
	}
}

// writeFrames writes frames with the send deadline and returns how many
// bytes went out. net.Buffers uses writev, so shared record frames are never
// copied; it consumes the slice it writes, so it gets a copy of the headers
// and frames stays intact for the caller.
func (s *session) writeFrames(frames [][]byte) (int64, error) {
	s.wconn.SetWriteDeadline(time.Now().Add(s.h.cfg.SendTimeout))
	s.wbufs = append(s.wbufs[:0], frames...)
	s.wview = s.wbufs // WriteTo consumes wview; wbufs keeps the storage
	n, err := s.wview.WriteTo(s.wconn)
	clear(s.wbufs)
	if err == nil {
		return n, nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		s.h.m.SendTimeoutEvent()
		return n, errSendTimeout
	}
	s.h.m.SendFailedEvent()
	return n, err
}

// unwritten returns what must still be sent after a write of n bytes of
// bufs stopped, so that the stream ends on a frame boundary: the rest of
// the frame it stopped in, or nothing when it stopped between frames. A
// buffer holds whole frames, except a v2 record's head, whose frame
// continues in the next buffer (the shared value).
func unwritten(bufs [][]byte, n int64) [][]byte {
	cont := false // bufs[i] continues the frame bufs[i-1] opened
	for i, b := range bufs {
		opens := !cont && opensFrame(b)
		if n < int64(len(b)) {
			if n == 0 && !cont {
				return nil
			}
			rest := [][]byte{b[n:]}
			if opens && i+1 < len(bufs) {
				rest = append(rest, bufs[i+1])
			}
			return rest
		}
		n -= int64(len(b))
		cont = opens
	}
	return nil
}

// opensFrame reports whether b starts with a frame whose payload goes on
// past b's end.
func opensFrame(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	size, length := 2, int64(b[1]&0x7f)
	switch length {
	case 126:
		if len(b) < 4 {
			return false
		}
		size, length = 4, int64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		if len(b) < 10 {
			return false
		}
		size, length = 10, int64(binary.BigEndian.Uint64(b[2:10]))
	}
	return int64(size)+length > int64(len(b))
}

var errSendTimeout = errors.New("hub: send deadline exceeded")

// closeWith sends a close frame (after optional frames) with a 1 s deadline
// and closes the connection.
func (s *session) closeWith(code ws.StatusCode, reason string, before ...[]byte) {
	s.conn.SetWriteDeadline(time.Now().Add(closeLinger))
	bufs := append(net.Buffers(before), closeFrame(code, reason))
	if _, err := bufs.WriteTo(s.conn); err != nil { // best effort within the deadline
		s.conn.Close() // the client does not read: nothing to wait for
		return
	}
	// Closing the socket now would make the kernel answer anything the
	// client still sends (a pong to a ping it reads late, its close frame)
	// with a reset, and a reset makes the client's kernel drop what it has
	// not read yet: the frames above and the close frame. So the write side
	// is shut (the client reads them, then EOF) and the reader goes on
	// reading until the client closes or closeLinger passes (finish then
	// closes the socket).
	if cw, ok := s.wconn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		s.conn.SetReadDeadline(time.Now().Add(closeLinger))
		return
	}
	s.conn.Close()
}

// closeLinger bounds the close frame's write and the wait for the client's
// answer to it (closeWith).
const closeLinger = time.Second

// pongAge is the time since the last pong (or since the connection opened).
func (s *session) pongAge() time.Duration {
	return time.Since(time.Unix(0, s.lastPong.Load()))
}

// statusTryAgainLater is close code 1013 (overload, replay timeout).
const statusTryAgainLater ws.StatusCode = 1013
