package hub

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/dashflow/dashstream-gateway/internal/limits"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// session is one WebSocket client: the socket loop around its delivery.
// The reader goroutine (conn.go) forwards client frames; the writer
// goroutine (run, then serve) owns the socket's writes, the delivery
// (delivery.go: positions, replay, catch-up, filter) and the fields from
// active on; the atomics are shared with the reader and the hub.
//
// The writer parks (its goroutine ends) when the session has been idle for
// a sweep interval, and kick starts a new one when something arrives, so an
// idle connection costs one goroutine, its reader. state hands the
// writer-owned fields from one writer goroutine to the next.
type session struct {
	h *Hub
	// ctx is the session's: cancelled when the hub shuts down (cause
	// ErrClosing), when the reader exits and when the session ends, so a
	// look-up in flight for a client that is gone stops.
	ctx        context.Context
	cancel     context.CancelCauseFunc
	conn       net.Conn      // reads, close frames, Close (frees the listener place)
	wconn      net.Conn      // record writes: the socket itself, so net.Buffers uses writev (limits.Unwrap)
	events     chan event    // reader → writer
	wakeCh     chan struct{} // hub → writer: new records (capacity 1, never blocks)
	readDone   chan struct{} // closed when the reader exits
	writerDone chan struct{} // closed when the session's last writer finishes
	lastPong   atomic.Int64  // unix nanos, written by the reader
	pingDue    atomic.Bool   // set by the hub's pinger, cleared by the writer
	sweep      atomic.Bool   // set by the hub's idle sweep, cleared by the writer
	expires    atomic.Int64  // unix nanos the credentials expire at; 0: never (written by the writer on refresh)
	expireDue  atomic.Bool   // set by the idle sweep once expired, cleared by the writer
	state      atomic.Int32  // writerRunning or writerParked
	// recent: the writer did something since the last idle sweep, which
	// clears it; the sweep signals only a running writer that did not, so
	// a busy writer is not woken four times a second for nothing.
	recent     atomic.Bool
	end        func() // called once when the session is over
	slot       uint32 // which of the pinger's slices pings it (set by Hub.add)
	resumeSeen bool   // a resume arrived (maybe refused): no implicit "latest"

	d       *delivery   // what the client is owed (writer-owned)
	backing [][]byte    // reused storage of one gathered write
	wbufs   net.Buffers // reused copy of the headers writev consumes
	wview   net.Buffers // the part of wbufs a write has not consumed yet
}

// closeReason says how the writer ends the connection.
type closeReason struct {
	code   ws.StatusCode // 0: the peer is gone, just close the socket
	reason string
	frames [][]byte // sent right before the close frame
}

var (
	peerGone  = &closeReason{}
	goingAway = &closeReason{code: ws.StatusGoingAway, reason: "server shutting down"}
)

// newSession returns the session of conn, restricted to tenant ("": none),
// speaking protocol v2 or v1. Its context ends with the hub's (h nil: a
// session that never runs).
func newSession(h *Hub, conn net.Conn, tenant string, v2 bool) *session {
	s := &session{h: h, conn: conn, wconn: limits.Unwrap(conn), events: make(chan event, 4), wakeCh: make(chan struct{}, 1),
		readDone: make(chan struct{}), writerDone: make(chan struct{})}
	if h != nil {
		s.ctx, s.cancel = context.WithCancelCause(h.ctx)
		s.d = h.newDelivery(tenant, v2, s)
	}
	s.lastPong.Store(time.Now().UnixNano())
	return s
}

// Writer states.
const (
	writerRunning int32 = iota
	writerParked
)

// wake signals new records without ever blocking the publisher, and starts
// a writer if the session's was parked.
func (s *session) wake() {
	s.signal()
	s.kick()
}

// signal leaves a wake-up for the writer without starting one.
func (s *session) signal() {
	select {
	case s.wakeCh <- struct{}{}:
	default:
	}
}

// kick starts a writer goroutine if none is running. Callers first make
// the reason visible (a wake-up, an event, a closed channel), so a writer
// that is parking either sees it or is replaced by this one.
func (s *session) kick() {
	if s.state.CompareAndSwap(writerParked, writerRunning) {
		go s.serve(s.ctx)
	}
}

// run is the session's first writer goroutine: it waits for the resume,
// then serves. Writers own every write to the socket.
func (s *session) run(ctx context.Context) {
	if cr := s.awaitResume(ctx); cr != nil {
		s.finish(cr)
		return
	}
	s.serve(ctx)
}

// serve writes until the session ends or the writer parks.
func (s *session) serve(ctx context.Context) {
	for {
		progressed, more, cr := s.pump(ctx)
		if cr == peerGone && isClosed(s.readDone) {
			cr = s.drainEvents(ctx) // what the reader queued before it left (a last error frame)
		}
		if progressed {
			s.recent.Store(true)
		}
		if cr == nil {
			cr = s.d.checkDeadlines()
		}
		if cr == nil {
			cr = s.checkExpiry()
		}
		if cr == nil && s.pingDue.Swap(false) {
			s.recent.Store(true)
			cr = s.ping()
		}
		// Park only right after a pump that found nothing: a wake-up that
		// wait consumed must be pumped first.
		if cr == nil && !progressed && s.sweep.Swap(false) && s.idle() {
			s.dropBuffers()
			if s.park() {
				return
			}
		}
		if cr == nil {
			cr = s.wait(ctx, more)
		}
		if cr != nil {
			s.finish(cr)
			return
		}
	}
}

// idle reports, at a sweep, whether the writer may park: nothing happened
// since the previous sweep and no replay or catch-up is running (they keep
// their goroutine, and their deadlines).
func (s *session) idle() bool {
	return !s.recent.Load() && !s.d.busy()
}

// dropBuffers lets an idle session's write and page storage go (a big
// replay grows them to hundreds of KiB); they grow again when needed. It
// runs before park: once parked, the next writer owns these fields.
func (s *session) dropBuffers() {
	s.backing, s.wbufs, s.wview = nil, nil, nil
	s.d.dropBuffers()
}

// park ends this writer goroutine unless something is already pending, in
// which case it keeps running (or, if a kick already started the next
// writer, ends in its favour). It reports whether this goroutine must end.
func (s *session) park() bool {
	s.state.Store(writerParked)
	if !s.pending() {
		return true
	}
	return !s.state.CompareAndSwap(writerParked, writerRunning)
}

// pending reports whether a writer has something to do.
func (s *session) pending() bool {
	return len(s.wakeCh) > 0 || len(s.events) > 0 || s.pingDue.Load() || s.expireDue.Load() ||
		isClosed(s.h.done) || isClosed(s.readDone)
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// finish ends the session: close frame, then the reader (which reads what
// the client still sends until it closes, or for at most closeLinger after
// a close frame), socket, then s.end.
func (s *session) finish(cr *closeReason) {
	s.d.stop() // release a replay slot still held
	s.cancel(errSessionOver)
	if cr.code != 0 {
		s.closeWith(cr.code, cr.reason, cr.frames...)
	} else {
		s.conn.Close()
	}
	close(s.writerDone) // nothing more is written; a reader blocked on events goes on
	<-s.readDone
	s.conn.Close()
	if s.end != nil {
		s.end()
	}
}

// wait blocks until something happens; with more (the last batch was
// full: more is due now) it only polls, so a long stream of writes still
// sees control frames and shutdown. Pings are due when the hub's pinger
// says so (one ticker for all sessions).
func (s *session) wait(ctx context.Context, more bool) *closeReason {
	var idle <-chan struct{} = s.wakeCh
	if more {
		idle = closedChan
	}
	select {
	case <-idle:
		return nil
	case ev := <-s.events:
		return s.handle(ctx, ev)
	case <-s.h.done:
		return goingAway
	case <-s.readDone:
		return s.drainEvents(ctx)
	case <-s.d.deadline():
		return nil // checkDeadlines acts on it
	}
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// awaitResume waits for the client's first resume; without one in time the
// client is treated as if it had asked for "latest". Nothing is sent before.
func (s *session) awaitResume(ctx context.Context) *closeReason {
	timer := time.NewTimer(s.h.cfg.ResumeWait)
	defer timer.Stop()
	for !s.d.started() {
		select {
		case ev := <-s.events:
			if cr := s.handle(ctx, ev); cr != nil {
				return cr
			}
		case <-timer.C:
			for ev, ok := s.queuedEvent(); ok && !s.d.started(); ev, ok = s.queuedEvent() {
				if cr := s.handle(ctx, ev); cr != nil { // a resume that raced the timer wins
					return cr
				}
			}
			if s.d.started() {
				return nil
			}
			if s.resumeSeen {
				continue // a refused resume (its filter): wait for the corrected one
			}
			return s.startResume(ctx, &wsproto.Resume{From: wsproto.FromLatest, Mode: wsproto.ModePartition})
		case <-s.h.done:
			return goingAway
		case <-s.readDone:
			return s.drainEvents(ctx)
		}
	}
	return nil
}

// queuedEvent returns an event the reader already queued, if any.
func (s *session) queuedEvent() (event, bool) {
	select {
	case ev := <-s.events:
		return ev, true
	default:
		return event{}, false
	}
}

// drainEvents handles what the reader queued before it exited (a last error
// frame with its close code, say).
func (s *session) drainEvents(ctx context.Context) *closeReason {
	for {
		select {
		case ev := <-s.events:
			if cr := s.handle(ctx, ev); cr != nil {
				return cr
			}
		default:
			return peerGone
		}
	}
}

func (s *session) handle(ctx context.Context, ev event) *closeReason {
	s.recent.Store(true)
	if ev.close != 0 {
		cr := &closeReason{code: ev.close, reason: ev.reason}
		if ev.reply != nil {
			cr.frames = [][]byte{ev.reply}
		}
		return cr
	}
	if ev.reply != nil {
		return s.write(ev.reply)
	}
	ctrl, perr := wsproto.ParseControl(ev.text)
	if perr != nil {
		if perr.Code == wsproto.CodeInvalidJSON {
			s.h.m.ControlParseFailures.Inc()
		}
		return s.write(wsproto.Frame(perr))
	}
	switch ctrl.Kind {
	case wsproto.ControlResume:
		s.resumeSeen = true
		return s.startResume(ctx, ctrl.Resume)
	case wsproto.ControlPing:
		return s.write(wsproto.PongFrame)
	case wsproto.ControlCursorReset:
		return s.cursorReset()
	case wsproto.ControlRefresh:
		return s.refresh(ctx, ctrl.Token)
	}
	return nil
}

// write sends frames now; a failure ends the session.
func (s *session) write(frames ...[]byte) *closeReason {
	if len(frames) == 0 {
		return nil
	}
	n, err := s.writeFrames(frames)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, errSendTimeout):
		return peerGone
	}
	cr := s.d.slowDisconnect("socket did not drain within the send deadline")
	// The deadline may have cut a frame in two: its rest goes out first, or
	// the peer would read the disconnect frame as the end of its payload.
	if rest := unwritten(frames, n); rest != nil {
		cr.frames = append(rest, cr.frames...)
	}
	return cr
}

// ping sends a WebSocket ping; a peer that missed two pongs is closed.
func (s *session) ping() *closeReason {
	if s.pongAge() > 2*s.h.cfg.PingInterval+s.h.cfg.SendTimeout {
		return &closeReason{code: ws.StatusPolicyViolation, reason: "pong timeout"}
	}
	return s.write(pingFrame)
}

var pingFrame = wsproto.AppendFrame(nil, ws.OpPing, nil)

// startResume begins a new epoch of the delivery and sends what it owes
// first (docs/PROTOCOL.md §3.4).
func (s *session) startResume(ctx context.Context, r *wsproto.Resume) *closeReason {
	frames, cr := s.d.resume(ctx, r)
	if cr != nil {
		return cr
	}
	return s.write(frames...)
}

// cursorReset starts the client over from the current heads.
func (s *session) cursorReset() *closeReason {
	return s.write(s.d.reset()...)
}

// pump writes one batch of what the delivery owes the client. It returns
// whether any position advanced and whether more is due at once (the batch
// was full): otherwise the writer waits for the next wake-up instead of
// reading the tiers again for nothing.
func (s *session) pump(ctx context.Context) (advanced, more bool, cr *closeReason) {
	frames, advanced, cr := s.d.next(ctx, s.backing)
	if cr != nil {
		return false, false, cr
	}
	if cr := s.write(frames...); cr != nil {
		return false, false, cr
	}
	clear(frames)
	s.backing = frames[:0]
	if cr := s.d.tooSlow(); cr != nil {
		return false, false, cr
	}
	return advanced, s.d.more, nil
}

// Causes of a session context's end besides ErrClosing.
var (
	errPeerGone    = errors.New("hub: client gone")
	errSessionOver = errors.New("hub: session over")
)
