package hub

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/gobwas/ws"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// SSE: GET /sse (docs/PROTOCOL.md §3.9) is a second thin writer around the
// same delivery as a WebSocket session. The delivery gathers the frames a
// WebSocket client would get; sseStream transcodes each gathered batch into
// Server-Sent Events in one reused buffer and writes it with one write and
// one flush:
//
//	record frames      -> event: record, id: the whole position vector
//	control frames     -> an event of the frame's type, data: its JSON
//	(gap and skipped move positions: they carry the id too)
//
// There is no reader goroutine: the request's context ending is the client
// leaving. The SSE session is registered with the hub like any other, so
// wake-ups, token expiry, CloseAll and Shutdown reach it; its writer never
// parks (net/http holds the handler goroutine for the stream anyway).

// sseHeartbeat is how often an SSE stream gets a comment line, which keeps
// proxies from closing an idle stream.
var sseHeartbeat = 15 * time.Second

// sseCompactAbove is the capacity of the event buffer beyond which an idle
// stream lets it go (a replay batch grows it to a few hundred KiB).
const sseCompactAbove = 64 << 10

// ServeSSE serves an admitted GET /sse request until the client leaves or
// the hub shuts down. Admission (origin, authentication, connection caps,
// per-IP limits) happens before it, as for ServeWS: id's tenant restricts
// the stream and its expiry ends it. A request whose parameters do not
// parse is answered 400 before any event.
func (h *Hub) ServeSSE(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	req, perr := parseSSERequest(r)
	if perr != nil {
		writeSSEError(w, http.StatusBadRequest, perr.Code, perr.Message)
		return
	}
	s := h.newSSESession(id, req.Format == wsproto.FormatJSON)
	if err := h.add(s); err != nil {
		s.cancel(err)
		h.m.Rejected("shutdown")
		writeSSEError(w, http.StatusServiceUnavailable, "SHUTTING_DOWN", "server is shutting down")
		return
	}
	h.m.ClientConnected()
	defer func() {
		s.d.stop()
		s.cancel(errSessionOver)
		close(s.writerDone)
		h.m.ClientDisconnected()
		h.remove(s)
	}()
	// The client leaving ends the request's context: the session's
	// look-ups in flight stop with it.
	defer context.AfterFunc(r.Context(), func() { s.cancel(errPeerGone) })()

	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	if r.ProtoMajor == 1 {
		// The stream ends with its connection: no chunk framing, so each
		// flushed batch is one write to the socket (net/http's chunked
		// writer makes it two or three).
		hdr.Set("Transfer-Encoding", "identity")
	}
	w.WriteHeader(http.StatusOK)
	st := &sseStream{s: s, w: w, rc: http.NewResponseController(w), json: req.Format == wsproto.FormatJSON}
	if h.cfg.Namespace != nil {
		st.ns = h.cfg.Namespace()
	}
	// The stream lives as long as the client: no request deadline applies
	// (a kept-alive connection may carry one), only each write's.
	_ = st.rc.SetReadDeadline(time.Time{})
	_ = st.rc.SetWriteDeadline(time.Now().Add(h.cfg.SendTimeout))
	if st.rc.Flush() != nil { // the headers, before a replay's first batch
		return
	}
	st.run(s.ctx, req)
}

// newSSESession is a session without a socket: only its delivery, its
// wake-up channel, its events (CloseAll) and its expiry are used. Its
// delivery speaks v2 with one text frame per record whose JSON is the
// event's data: the JSON record frame shared with v2 WebSocket clients
// (format=json), or the base64 frame of encodeBase64; each is made at most
// once per record, however many clients read it.
func (h *Hub) newSSESession(id auth.Identity, json bool) *session {
	s := &session{h: h, events: make(chan event, 4), wakeCh: make(chan struct{}, 1),
		readDone: make(chan struct{}), writerDone: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancelCause(h.ctx)
	s.d = h.newDelivery(id.Tenant, true, s)
	s.d.b64 = !json
	s.setExpiry(id.Expires)
	s.lastPong.Store(time.Now().UnixNano())
	return s
}

// sseStream is the writer of one SSE client. Owned by the handler's
// goroutine.
type sseStream struct {
	s       *session
	w       http.ResponseWriter
	rc      *http.ResponseController
	json    bool   // records as their JSON (format=json); else base64 of the value
	ns      string // resume namespace, part of every id
	vec     cursorVec
	dirty   bool     // vec moved since the last id written
	out     []byte   // the events of one write, reused
	backing [][]byte // reused storage of one gathered batch
}

// run resumes, then writes what the delivery owes batch by batch until the
// stream ends.
func (st *sseStream) run(ctx context.Context, req *wsproto.Resume) {
	s, d := st.s, st.s.d
	frames, cr := d.resume(ctx, req)
	if cr == nil && !d.started() { // refused (its filter): the error frame says why
		cr = &closeReason{frames: frames}
	}
	if cr != nil {
		st.end(cr)
		return
	}
	st.syncPositions()
	st.transcode(frames)
	if st.flush() != nil {
		return
	}
	tick := time.NewTicker(sseHeartbeat)
	defer tick.Stop()
	for {
		advanced, cr, err := st.pump(ctx)
		if err != nil {
			return
		}
		if cr != nil {
			st.end(cr)
			return
		}
		if advanced {
			s.recent.Store(true)
			if d.more {
				if !st.poll(ctx) {
					return
				}
				continue
			}
		}
		// Idle for a whole sweep interval (as a WebSocket writer parks):
		// let big buffers go; a busy stream keeps them.
		if s.sweep.Swap(false) && !s.recent.Load() && cap(st.out) > sseCompactAbove {
			st.out, st.backing = nil, nil
			d.dropBuffers()
		}
		select {
		case <-s.wakeCh:
		case ev := <-s.events:
			st.closeEvent(ev)
			return
		case <-ctx.Done():
			return
		case <-d.deadline():
		case <-tick.C:
			st.out = append(st.out, ":\n\n"...)
			if st.flush() != nil {
				return
			}
		}
	}
}

// pump writes one batch of what the delivery owes the client and reports
// whether any position advanced; a closeReason ends the stream, an error
// means the write failed (the client is gone or too slow).
func (st *sseStream) pump(ctx context.Context) (advanced bool, cr *closeReason, err error) {
	frames, advanced, cr := st.s.d.next(ctx, st.backing)
	if cr != nil {
		return false, cr, nil
	}
	if len(frames) > 0 || advanced {
		st.transcode(frames)
		st.syncPositions()
		if err := st.flush(); err != nil {
			return false, nil, err
		}
	}
	clear(frames)
	st.backing = frames[:0]
	return advanced, st.check(), nil
}

// check runs what ends a stream between batches: slowness, deadlines,
// token expiry.
func (st *sseStream) check() *closeReason {
	if cr := st.s.d.tooSlow(); cr != nil {
		return cr
	}
	if cr := st.s.d.checkDeadlines(); cr != nil {
		return cr
	}
	return st.s.checkExpiry()
}

// poll looks for an end without waiting, between batches of a stream that
// is still moving. It reports whether the stream goes on.
func (st *sseStream) poll(ctx context.Context) bool {
	select {
	case ev := <-st.s.events:
		st.closeEvent(ev)
		return false
	case <-ctx.Done():
		return false
	default:
		return true
	}
}

// closeEvent ends the stream as a WebSocket session would close it (CloseAll:
// topic re-created, say): what it carries goes out first. The browser then
// reconnects and resumes from its Last-Event-ID.
func (st *sseStream) closeEvent(ev event) {
	cr := &closeReason{code: ev.close, reason: ev.reason}
	if ev.reply != nil {
		cr.frames = [][]byte{ev.reply}
	}
	st.end(cr)
}

// end writes the frames a closeReason carries (disconnect, an error) with
// a one-second deadline; the handler returning then ends the response.
func (st *sseStream) end(cr *closeReason) {
	if len(cr.frames) == 0 {
		return
	}
	st.transcode(cr.frames)
	_ = st.write(time.Second)
}

// flush writes the gathered events with the send deadline. A write that
// misses it is a slow client's: counted like a WebSocket send timeout.
func (st *sseStream) flush() error {
	if len(st.out) == 0 {
		return nil
	}
	return st.write(st.s.h.cfg.SendTimeout)
}

func (st *sseStream) write(timeout time.Duration) error {
	_ = st.rc.SetWriteDeadline(time.Now().Add(timeout))
	_, err := st.w.Write(st.out)
	if err == nil {
		err = st.rc.Flush()
	}
	st.out = st.out[:0]
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		st.s.h.m.SendTimeoutEvent()
	default:
		st.s.h.m.SendFailedEvent()
	}
	return err
}

// syncPositions makes vec the delivery's positions after a batch: they
// also moved over records the client does not get (its filter, its
// tenant), and every frame up to them is in the batch. An id-only event
// carries a move no record announced, so that Last-Event-ID includes it.
func (st *sseStream) syncPositions() {
	for p, o := range st.s.d.pos {
		i := st.vec.index(p)
		if i < 0 || st.vec[i].o != o {
			st.vec.set(p, o)
			st.dirty = true
		}
	}
	if st.dirty {
		st.out = append(st.out, "id: "...)
		st.out = st.vec.appendID(st.out, st.ns)
		st.out = append(st.out, "\n\n"...)
		st.dirty = false
	}
}

// index returns the position of p in v, or -1.
func (v cursorVec) index(p int32) int {
	lo, hi := 0, len(v)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch {
		case v[m].p == p:
			return m
		case v[m].p < p:
			lo = m + 1
		default:
			hi = m
		}
	}
	return -1
}

// transcode appends the events of frames (WebSocket frames as the delivery
// gathers them: each buffer holds whole frames) to out.
func (st *sseStream) transcode(frames [][]byte) {
	for _, buf := range frames {
		for len(buf) > 0 {
			op, payload, rest, ok := nextFrame(buf)
			if !ok {
				break // not ours: never happens, the hub made every frame
			}
			buf = rest
			st.frame(op, payload)
		}
	}
}

// frame turns one WebSocket frame into events.
func (st *sseStream) frame(op ws.OpCode, payload []byte) {
	if op != ws.OpText {
		return // never: a v2 delivery with text records sends only text frames
	}
	if p, o, ok := recordPosition(payload); ok { // the common case, without a search
		st.record(p, o, payload)
		return
	}
	typ, _ := jsonRaw(payload, `"type":"`, '"')
	switch string(typ) {
	case wsproto.TypeRecord:
		st.record(jsonPartition(payload), jsonOffset(payload, `"offset":"`), payload)
	case wsproto.TypeSkipped:
		st.vec.set(jsonPartition(payload), jsonOffset(payload, `"offset":"`))
		st.event(typ, payload, true)
	case wsproto.TypeGap:
		st.vec.set(jsonPartition(payload), jsonOffset(payload, `"toOffset":"`))
		st.event(typ, payload, true)
	default:
		st.event(typ, payload, false)
	}
}

// record appends the event of one record; text is its shared JSON.
func (st *sseStream) record(p int32, o int64, text []byte) {
	st.vec.set(p, o)
	st.out = append(st.out, "event: record\nid: "...)
	st.out = st.vec.appendID(st.out, st.ns)
	st.dirty = false
	st.out = append(st.out, "\ndata: "...)
	st.out = append(st.out, text...)
	st.out = append(st.out, "\n\n"...)
}

// encodeBase64 makes r's shared text frame for base64 SSE clients:
// {"type":"record","partition":p,"offset":"o","value":"<base64 of the
// value>"} (docs/PROTOCOL.md §3.9).
func encodeBase64(r *replay.Record) []byte {
	var head [80]byte
	prefix := append(head[:0], `{"type":"record","partition":`...)
	prefix = strconv.AppendInt(prefix, int64(r.Partition), 10)
	prefix = append(prefix, `,"offset":"`...)
	prefix = strconv.AppendInt(prefix, r.Offset, 10)
	prefix = append(prefix, `","value":"`...)
	n := len(prefix) + base64.StdEncoding.EncodedLen(len(r.Value)) + 2
	frame := wsproto.AppendFrameHeader(make([]byte, 0, n+wsproto.MaxFrameHeader), ws.OpText, n)
	frame = append(frame, prefix...)
	frame = base64.StdEncoding.AppendEncode(frame, r.Value)
	return append(frame, `"}`...)
}

// event appends a control event; withID when it moved a position.
func (st *sseStream) event(typ []byte, payload []byte, withID bool) {
	st.out = append(st.out, "event: "...)
	st.out = append(st.out, typ...)
	if withID {
		st.out = append(st.out, "\nid: "...)
		st.out = st.vec.appendID(st.out, st.ns)
		st.dirty = false
	}
	st.out = append(st.out, "\ndata: "...)
	st.out = append(st.out, payload...) // compact JSON: never a line break
	st.out = append(st.out, "\n\n"...)
}

// nextFrame splits the first unmasked WebSocket frame off buf.
func nextFrame(buf []byte) (op ws.OpCode, payload, rest []byte, ok bool) {
	if len(buf) < 2 {
		return 0, nil, nil, false
	}
	op = ws.OpCode(buf[0] & 0x0f)
	n, hl := uint64(buf[1]&0x7f), 2
	switch n {
	case 126:
		if len(buf) < 4 {
			return 0, nil, nil, false
		}
		n, hl = uint64(binary.BigEndian.Uint16(buf[2:])), 4
	case 127:
		if len(buf) < 10 {
			return 0, nil, nil, false
		}
		n, hl = binary.BigEndian.Uint64(buf[2:]), 10
	}
	if uint64(len(buf)-hl) < n {
		return 0, nil, nil, false
	}
	end := hl + int(n)
	return op, buf[hl:end], buf[end:], true
}

// The hub's own frames are compact JSON made by wsproto: a field's first
// occurrence is the field (a string value cannot hold an unescaped quote),
// and "partition" and "offset" come before a record's message. Numbers are
// read without strconv, whose errors would allocate.

func jsonPartition(b []byte) int32 {
	v, _ := jsonRaw(b, `"partition":`, ',')
	return int32(atoi(v))
}

func jsonOffset(b []byte, key string) int64 {
	v, _ := jsonRaw(b, key, '"')
	return atoi(v)
}

// recordPrefix starts every record frame's text (wsproto.AppendRecordJSON,
// encodeBase64).
const recordPrefix = `{"type":"record","partition":`

// recordPosition reads the partition and offset at the fixed start of a
// record frame's text.
func recordPosition(b []byte) (p int32, o int64, ok bool) {
	if len(b) < len(recordPrefix) || string(b[:len(recordPrefix)]) != recordPrefix {
		return 0, 0, false
	}
	b = b[len(recordPrefix):]
	i := bytes.IndexByte(b, ',')
	const offsetKey = `,"offset":"`
	if i < 0 || len(b) < i+len(offsetKey) || string(b[i:i+len(offsetKey)]) != offsetKey {
		return 0, 0, false
	}
	ps := b[:i]
	b = b[i+len(offsetKey):]
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return 0, 0, false
	}
	return int32(atoi(ps)), atoi(b[:j]), true
}

// atoi reads a decimal integer the hub wrote (int64 range, maybe negative).
func atoi(v []byte) int64 {
	neg := len(v) > 0 && v[0] == '-'
	if neg {
		v = v[1:]
	}
	var n int64
	for _, c := range v {
		n = n*10 + int64(c-'0')
	}
	if neg {
		return -n
	}
	return n
}

// jsonRaw returns the bytes after key up to the terminator (or a closing
// brace).
func jsonRaw(b []byte, key string, term byte) ([]byte, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return nil, false
	}
	b = b[i+len(key):]
	for j, c := range b {
		if c == term || c == '}' {
			return b[:j], true
		}
	}
	return nil, false
}

// writeSSEError answers a refused /sse request before the stream starts.
func writeSSEError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"error": msg, "code": code})
	_, _ = w.Write(append(b, '\n'))
}
