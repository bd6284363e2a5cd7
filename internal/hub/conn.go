package hub

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gobwas/ws"

	"github.com/dashflow/dashstream-gateway/internal/limits"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// event is what the reader goroutine hands to the writer.
type event struct {
	text   []byte // a client text message, parsed by the writer
	reply  []byte // a frame to send as is (pong, error); may come with close
	close  ws.StatusCode
	reason string // of the close frame, with close
}

// accept upgrades the connection and starts its reader goroutine. The
// client's limits.Identity (from the admission check) selects the bearer
// subprotocol when the client authenticated with that idiom, and restricts
// the session to its tenant.
func (h *Hub) accept(w http.ResponseWriter, r *http.Request) (*session, error) {
	id, _ := limits.IdentityFrom(r.Context())
	up := ws.HTTPUpgrader{Timeout: h.cfg.SendTimeout}
	if id.Subprotocol != "" {
		up.Protocol = func(p string) bool { return p == id.Subprotocol }
	}
	conn, rw, _, err := up.Upgrade(r, w)
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, err
	}
	s := newSession(h, conn)
	s.tenant = id.Tenant
	if err := h.add(s); err != nil {
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		conn.Write(closeFrame(ws.StatusGoingAway, "shutting down"))
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

// readLoop reads client frames until the connection fails. Text frames are
// bounded before they are buffered. It never writes: replies go to the
// writer through events.
func (s *session) readLoop(br *bufio.Reader) {
	defer s.kick() // a parked writer must see readDone
	defer close(s.readDone)
	var msg []byte
	var op ws.OpCode
	fragmented := false // a data frame without FIN started a message
	for {
		hdr, err := ws.ReadHeader(br)
		if err != nil {
			return
		}
		// No extension is negotiated, so RSV bits and reserved opcodes are
		// errors; so are continuations out of place (RFC 6455 §5.2, §5.4).
		if !hdr.Masked || hdr.Rsv != 0 || hdr.OpCode.IsReserved() ||
			(hdr.OpCode.IsData() && (hdr.OpCode == ws.OpContinuation) != fragmented) {
			s.send(event{close: ws.StatusProtocolError})
			return
		}
		if hdr.OpCode.IsControl() {
			if !s.readControlFrame(br, hdr) {
				return
			}
			continue
		}
		if int64(len(msg))+hdr.Length > wsproto.MaxControlBytes {
			s.h.m.ControlOversized.Inc()
			s.send(event{reply: wsproto.Frame(wsproto.NewError(wsproto.CodeControlTooLarge,
				"control frame exceeds 1 MiB")), close: ws.StatusMessageTooBig})
			return
		}
		if hdr.OpCode != ws.OpContinuation {
			op = hdr.OpCode
		}
		if msg, err = readPayload(br, hdr, msg); err != nil {
			return
		}
		fragmented = !hdr.Fin
		if hdr.Fin {
			s.handleMessage(op, msg)
			msg = msg[:0]
		}
	}
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

func (s *session) readControlFrame(br *bufio.Reader, hdr ws.Header) bool {
	if hdr.Length > 125 || !hdr.Fin {
		s.send(event{close: ws.StatusProtocolError})
		return false
	}
	p, err := readPayload(br, hdr, nil)
	if err != nil {
		return false
	}
	switch hdr.OpCode {
	case ws.OpPing:
		s.send(event{reply: wsproto.AppendFrame(nil, ws.OpPong, p)})
	case ws.OpPong:
		s.lastPong.Store(time.Now().UnixNano())
	case ws.OpClose:
		s.send(event{close: ws.StatusNormalClosure})
		return false
	}
	return true
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
	s.conn.SetWriteDeadline(time.Now().Add(s.h.cfg.SendTimeout))
	s.wbufs = append(s.wbufs[:0], frames...)
	s.wview = s.wbufs // WriteTo consumes wview; wbufs keeps the storage
	n, err := s.wview.WriteTo(s.conn)
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

// unwritten returns the rest of the buffer in which a write of n bytes of
// bufs stopped, or nil when it stopped between buffers. Each buffer holds
// whole frames, so sending the rest first keeps the stream well-formed.
func unwritten(bufs [][]byte, n int64) []byte {
	for _, b := range bufs {
		if n < int64(len(b)) {
			if n == 0 {
				return nil
			}
			return b[n:]
		}
		n -= int64(len(b))
	}
	return nil
}

var errSendTimeout = errors.New("hub: send deadline exceeded")

// closeWith sends a close frame (after optional frames) with a 1 s deadline
// and closes the connection.
func (s *session) closeWith(code ws.StatusCode, reason string, before ...[]byte) {
	s.conn.SetWriteDeadline(time.Now().Add(time.Second))
	bufs := append(net.Buffers(before), closeFrame(code, reason))
	bufs.WriteTo(s.conn)
	s.conn.Close()
}

// pongAge is the time since the last pong (or since the connection opened).
func (s *session) pongAge() time.Duration {
	return time.Since(time.Unix(0, s.lastPong.Load()))
}

// statusTryAgainLater is close code 1013 (overload, replay timeout).
const statusTryAgainLater ws.StatusCode = 1013
