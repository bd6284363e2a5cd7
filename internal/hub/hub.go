// Package hub fans records out to WebSocket clients.
//
// The consumer hands records to Publish, which encodes each record's frames
// once, appends the records to the replay tiers (memory at once, Redis
// asynchronously), advances the partition heads and, 5 ms later, wakes
// every client with a non-blocking signal (the publishes of those 5 ms
// share one wake-up). Nothing is queued per client: each client's delivery
// (delivery.go) pulls records from the replay tiers from its own
// per-partition position, and its session (session.go) writes the shared,
// pre-encoded bytes straight to its socket. Live delivery, resume replay
// and slow-client catch-up are therefore one code path, and a slow client
// can never slow the consumer or another client. See
// docs/ARCHITECTURE.md.
//
// Hub is safe for concurrent use. A session's state, its delivery
// included, is owned by its writer goroutine (parked while the session is
// idle); its reader goroutine only forwards client frames.
package hub

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/limits"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// Topology is what the hub needs to know about the topic; the Kafka consumer
// provides it.
type Topology interface {
	// Partitions lists the topic's partitions, sorted.
	Partitions() []int32
	// HighWatermark is the partition's latest known high watermark, as
	// the consumer last saw it (no I/O).
	HighWatermark(p int32) (int64, bool)
	// LatestHighWatermark asks Kafka for the partition's current high
	// watermark (a cursor beyond the cached one may only mean that this
	// instance is behind); an error means Kafka did not answer.
	LatestHighWatermark(ctx context.Context, p int32) (int64, error)
}

// Source is the merged view of the replay tiers that sessions read. Every
// call that may ask Redis or Kafka takes the context of the resume (its
// deadline) or of the session.
type Source interface {
	// Page returns records of p after 'after'; see replay.Tiers.Page for
	// how buf is reused. A Gap is backed by a log start Kafka reported;
	// an error wrapping replay.ErrUnavailable means the range can be
	// neither read nor proven gone right now.
	Page(ctx context.Context, p int32, after int64, lim replay.Limit, buf []*replay.Record) (replay.Page, error)
	// WindowStart is the oldest offset of the replay window (memory and
	// Redis): where a client without a cursor for p starts. It proves
	// nothing about what Kafka holds.
	WindowStart(ctx context.Context, p int32) (int64, bool)
	// ProveStale reports whether cursor 'after' is older than anything any
	// tier retains, with that oldest offset; an error means Kafka could
	// not prove it either way.
	ProveStale(ctx context.Context, p int32, after int64) (oldest int64, stale bool, err error)
	// Backlog is the bytes of p after 'after' in the memory tier (no I/O)
	// and whether memory holds nothing to estimate them by.
	Backlog(p int32, after int64) (bytes int64, unknown bool)
	// ReadThreads reads, from the memory tier's thread index only, the
	// records of p after 'after' that carry an event of one of threads
	// (replay.Memory.ReadThreads): when covered, nothing else of those
	// threads lies in (after, through]. Not covered: read Page and filter.
	ReadThreads(p int32, after int64, threads []string, lim replay.Limit, buf []*replay.Record) (recs []*replay.Record, through int64, covered bool)
	// ReadTypes is ReadThreads for the records of the message types and
	// event types q selects, from the memory tier's type index
	// (replay.Memory.ReadTypes).
	ReadTypes(p int32, after int64, q replay.TypeQuery, lim replay.Limit, buf []*replay.Record) (recs []*replay.Record, through int64, covered bool)
	// Runs and RunOf answer the memory tier's run index (no I/O): a joining
	// client finds there each active thread's latest full-state record.
	Runs(q replay.RunQuery) (runs []replay.Run, more bool)
	RunOf(thread string) (replay.Run, bool)
}

// Tiers is the replay tiers as the hub uses them (replay.Tiers): Publish
// appends to them, sessions read through them.
type Tiers interface {
	// Append stores published records without blocking and returns how
	// many the memory tier added.
	Append(recs []*replay.Record) int
	Source
}

// Config tunes client handling. Zero values mean the defaults noted
// (README.md, Configuration).
type Config struct {
	QueueBytes     int64         // backlog beyond which a client is catching up; 0 = 4 MiB
	SendTimeout    time.Duration // deadline of every socket write; 0 = 5 s
	PingInterval   time.Duration // server pings; two missed pongs close; 0 = 20 s
	ResumeWait     time.Duration // wait for a first resume before "latest"; 0 = 1 s
	ReplayTimeout  time.Duration // bounds the replay part of a resume; 0 = 30 s
	ReplayMaxTotal int           // records per replay before capped; 0 = 10000
	ReplayMaxBytes int           // bytes per replay before capped; 0 = 64 MiB
	ReplaySlots    int           // replays running at once (others wait); 0 = 32
	SlowThreshold  int64         // catch-up records per window before disconnect; 0 = 1000
	SlowWindow     time.Duration // 0 = 60 s
	MaxCatchup     time.Duration // longest catch-up before disconnect; 0 = 120 s
	WriteBatch     int           // bytes gathered into one write; 0 = 256 KiB
	MaxPayload     int           // cap of a record's decoded payload for v2 JSON; 0 = dashstream's default
	// LatestJoin "checkpoint" makes a v1 resume from "latest" join at the
	// last full state, as a v2 resume with join "checkpoint"; "" or "none":
	// it does not.
	LatestJoin string
	JoinWindow time.Duration // a thread with a record this recent is active; 0 = 300 s
	// ScanFilters turns the thread and type indexes off: a client filtered
	// to named threads, message types or event types is woken by every
	// publish and scans every record, as any other filter
	// (WEBSOCKET_FILTER_INDEX=off, for benchmark comparisons).
	ScanFilters bool
	// Tokens verifies the token of a refresh frame. Nil: refresh refused
	// (TOKEN_INVALID); sessions still expire with their upgrade's token.
	Tokens TokenVerifier
	// Namespace returns the resume namespace; cursors of another namespace
	// are stale. Nil or "" disables the check.
	Namespace func() string
}

func (c *Config) defaults() {
	c.QueueBytes = cmp.Or(c.QueueBytes, 4<<20)
	c.SendTimeout = cmp.Or(c.SendTimeout, 5*time.Second)
	c.PingInterval = cmp.Or(c.PingInterval, 20*time.Second)
	c.ResumeWait = cmp.Or(c.ResumeWait, time.Second)
	c.ReplayTimeout = cmp.Or(c.ReplayTimeout, 30*time.Second)
	c.ReplayMaxTotal = cmp.Or(c.ReplayMaxTotal, 10000)
	c.ReplayMaxBytes = cmp.Or(c.ReplayMaxBytes, 64<<20)
	c.ReplaySlots = cmp.Or(c.ReplaySlots, 32)
	c.SlowThreshold = cmp.Or(c.SlowThreshold, 1000)
	c.SlowWindow = cmp.Or(c.SlowWindow, 60*time.Second)
	c.MaxCatchup = cmp.Or(c.MaxCatchup, 120*time.Second)
	c.WriteBatch = cmp.Or(c.WriteBatch, 256<<10)
	c.JoinWindow = cmp.Or(c.JoinWindow, 300*time.Second)
}

// Hub is the registry of sessions and the owner of partition heads.
type Hub struct {
	cfg     Config
	log     *slog.Logger
	m       *metrics.Metrics
	tiers   Tiers
	source  Source // tiers, as sessions read them
	topo    Topology
	heads   atomic.Pointer[heads]
	publish sync.Mutex // serializes Publish (one consumer, but be safe)

	mu       sync.Mutex // guards sessions and closing
	sessions map[*session]struct{}
	closing  bool
	done     chan struct{} // closed by Shutdown: sessions send 1001

	// ctx is the parent of every session's context; Shutdown cancels it
	// (cause ErrClosing), which ends the look-ups sessions are waiting for.
	ctx    context.Context
	cancel context.CancelCauseFunc

	// index says whom a wake-up concerns (index.go); guarded by mu.
	index   subIndex
	indexed atomic.Int64 // subscribers indexed by thread or type
	// pending is what was published since the last wake-up (while
	// indexed > 0); guarded by wakeMu.
	wakeMu  sync.Mutex
	pending published

	slots       uint32              // sessions added so far: each one's ping slot (guarded by mu)
	dec         *dashstream.Decoder // v2 JSON: decodes a record once for every JSON client
	replaySlots chan struct{}       // bounded concurrent replays (admission control)
	wakePending atomic.Bool         // a wake-up is due (scheduleWake)
	wg          sync.WaitGroup
}

// heads is an immutable snapshot of the highest offset handed to the hub per
// partition.
type heads struct {
	offsets    map[int32]int64
	partitions []int32 // sorted keys of offsets
	// added holds the partitions added to the topic while the consumer
	// ran, with the offset it started each at (see PartitionsAdded).
	// Shared between snapshots: replaced, never changed.
	added map[int32]int64
}

// New returns a hub publishing into tiers and serving clients from them.
// Its sessions run until Shutdown.
func New(cfg Config, tiers Tiers, topo Topology, m *metrics.Metrics, log *slog.Logger) *Hub {
	cfg.defaults()
	h := &Hub{cfg: cfg, log: log, m: m, tiers: tiers, source: tiers, topo: topo,
		sessions: map[*session]struct{}{}, done: make(chan struct{}), index: newSubIndex(),
		dec:         dashstream.NewDecoder(dashstream.DecoderConfig{MaxPayload: cfg.MaxPayload}),
		replaySlots: make(chan struct{}, cfg.ReplaySlots)}
	// The sessions' root: the hub owns their lifetime, and a session
	// outlives the request that opened it (the request's context would pin
	// net/http's per-connection state).
	h.ctx, h.cancel = context.WithCancelCause(context.Background())
	h.heads.Store(&heads{offsets: map[int32]int64{}})
	h.wg.Add(1)
	go h.pinger()
	return h
}

// idleSweep is how often sessions are asked whether they were idle: a
// session idle for a whole interval parks its writer goroutine.
const idleSweep = 250 * time.Millisecond

// indexedWakeSweeps: every this many sweeps (1 s) the subscribers indexed
// by thread or type are woken even without a record of theirs (see wakeIndexed).
const indexedWakeSweeps = 4

// maxPingSlices bounds how many slices the pinger spreads the sessions'
// pings over (pingSlices).
const maxPingSlices = 80

// pingSlices is how many slices of the sessions the pinger pings in turn,
// one slice per PingInterval/slices: one per idle sweep interval, at most
// maxPingSlices (20 s: 80 slices, one every 250 ms). Pinging every session
// at once would stall the live writes of 10,000 clients behind 10,000 pings
// every interval (the p99.9 of a filtered benchmark showed it).
func pingSlices(interval time.Duration) int {
	return min(max(int(interval/idleSweep), 1), maxPingSlices)
}

// pinger marks the sessions' pings as due and wakes them: each session once
// per PingInterval, a slice of them at a time (pingSlices), from one ticker
// for all sessions instead of one per connection. It also runs the idle
// sweep, which does not start parked writers (except those whose token
// expired, which must close: see markExpired). It stops at Shutdown.
func (h *Hub) pinger() {
	defer h.wg.Done()
	slices := uint32(pingSlices(h.cfg.PingInterval))
	t := time.NewTicker(h.cfg.PingInterval / time.Duration(slices))
	defer t.Stop()
	var slice uint32
	sweep := time.NewTicker(idleSweep)
	defer sweep.Stop()
	sweeps := 0
	for {
		select {
		case <-h.done:
			return
		case <-t.C:
			h.each(func(s *session) {
				if s.slot%slices == slice {
					s.pingDue.Store(true)
					s.wake()
				}
			})
			slice = (slice + 1) % slices
		case now := <-sweep.C:
			h.each(func(s *session) {
				// A writer that did something since the last sweep is
				// left alone; one that did not is asked once whether it
				// may park (a parked one has nothing to ask).
				if s.state.Load() == writerRunning && !s.recent.Swap(false) && !s.sweep.Swap(true) {
					s.signal()
				}
				s.markExpired(now)
			})
			if sweeps++; sweeps%indexedWakeSweeps == 0 {
				h.wakeIndexed()
			}
		}
	}
}

func (h *Hub) each(f func(*session)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.sessions {
		f(s)
	}
}

// Publish encodes recs, appends them to the replay tiers, advances the
// heads and schedules a wake-up of every session. It never blocks on a
// client.
func (h *Hub) Publish(recs []*replay.Record) {
	if len(recs) == 0 {
		return
	}
	for _, r := range recs {
		r.EncodeFrames()
	}
	h.publish.Lock()
	h.tiers.Append(recs)
	h.heads.Store(h.heads.Load().advance(recs))
	h.publish.Unlock()
	h.noteThreads(recs)
	h.scheduleWake()
}

// wakeDelay is how long Publish lets records gather before it wakes every
// session: the publishes of that window are delivered by one wake-up, which
// means bigger writes, fewer context switches and wake-ups that do not run
// on the consumer's goroutine. It adds at most this much latency. At 1,000
// clients x 1,000 records/s it lowered p50 latency by about a third.
const wakeDelay = 5 * time.Millisecond

// scheduleWake wakes every session wakeDelay from now, unless a wake-up is
// already pending: that one fires after this Publish's heads are visible.
func (h *Hub) scheduleWake() {
	if isClosed(h.done) {
		return // after Shutdown there is no one to wake
	}
	if h.wakePending.CompareAndSwap(false, true) {
		time.AfterFunc(wakeDelay, h.fireWake)
	}
}

// fireWake clears the pending flag before it takes the noted threads, so
// a Publish that finds the flag still set noted its threads in time.
func (h *Hub) fireWake() {
	h.wakePending.Store(false)
	h.wakeSubscribers()
}

func (hs *heads) advance(recs []*replay.Record) *heads {
	next := &heads{offsets: make(map[int32]int64, len(hs.offsets)+1), added: hs.added}
	for p, o := range hs.offsets {
		next.offsets[p] = o
	}
	for _, r := range recs {
		if o, ok := next.offsets[r.Partition]; !ok || r.Offset > o {
			next.offsets[r.Partition] = r.Offset
		}
	}
	for p := range next.offsets {
		next.partitions = append(next.partitions, p)
	}
	slices.Sort(next.partitions)
	return next
}

// PartitionsAdded records partitions added to the topic while the consumer
// runs, each with the first offset the consumer reads of it (its log start
// when it was added). The consumer calls it before it publishes any of
// their records. A session that resumed before such a partition had a
// record starts it there instead of at the replay window's oldest record:
// all of it is new to the client (see delivery.start).
func (h *Hub) PartitionsAdded(first map[int32]int64) {
	if len(first) == 0 {
		return
	}
	h.publish.Lock()
	defer h.publish.Unlock()
	hs := h.heads.Load()
	added := make(map[int32]int64, len(hs.added)+len(first))
	maps.Copy(added, hs.added)
	maps.Copy(added, first)
	h.heads.Store(&heads{offsets: hs.offsets, partitions: hs.partitions, added: added})
}

// Heads returns the highest offset handed to the hub per partition.
func (h *Hub) Heads() map[int32]int64 {
	hs := h.heads.Load()
	out := make(map[int32]int64, len(hs.offsets))
	for p, o := range hs.offsets {
		out[p] = o
	}
	return out
}

// Clients returns the number of connected sessions.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

// ResetHeads forgets every partition head: the topic was re-created and its
// offsets restart (docs/PROTOCOL.md §3.7). Publish must not run concurrently with it
// for the reset to be exact (the consumer calls it between sessions).
func (h *Hub) ResetHeads() {
	h.publish.Lock()
	h.heads.Store(&heads{offsets: map[int32]int64{}})
	h.publish.Unlock()
}

// CloseAll closes every connected session with code and reason (1012
// "topic re-created", say), after what was already queued for it, and
// waits until their writers finished (nothing more is written to them) or
// ctx ends. Each writer sends the close frame with a 1 s deadline. It
// returns how many sessions it closed.
func (h *Hub) CloseAll(ctx context.Context, code ws.StatusCode, reason string) int {
	h.mu.Lock()
	closing := make([]*session, 0, len(h.sessions))
	for s := range h.sessions {
		closing = append(closing, s)
		ev := event{close: code, reason: reason}
		select {
		case s.events <- ev:
			s.kick()
		default:
			// The reader filled the queue: hand the event over without
			// blocking, or give up when the session ends.
			go s.send(ev)
		}
	}
	h.mu.Unlock()
	for _, s := range closing {
		select {
		case <-s.writerDone:
		case <-ctx.Done():
			return len(closing)
		}
	}
	return len(closing)
}

// ErrClosing is returned when a connection arrives during shutdown.
var ErrClosing = errors.New("hub: shutting down")

func (h *Hub) add(s *session) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return ErrClosing
	}
	h.sessions[s] = struct{}{}
	s.slot = h.slots
	h.slots++
	h.index.add(s)
	h.wg.Add(1)
	return nil
}

func (h *Hub) remove(s *session) {
	h.mu.Lock()
	delete(h.sessions, s)
	h.index.remove(s)
	h.indexed.Store(int64(len(h.index.indexed)))
	h.mu.Unlock()
	h.wg.Done()
}

// ServeWS upgrades an admitted request and runs the client's session until
// the connection ends. Admission (origin, authentication, per-IP limits)
// happens before it: id is the client's identity (its tenant restricts the
// session, its expiry ends it, its subprotocol is selected), and slot, when
// not nil, is the per-IP slot the session takes over and releases when it
// ends.
//
// After the upgrade the session runs on goroutines of its own and ServeWS
// returns, so net/http's per-connection state (buffers, request, handler
// stack) is freed: an idle client costs little more than its two small
// goroutines.
func (h *Hub) ServeWS(w http.ResponseWriter, r *http.Request, id auth.Identity, slot *limits.Slot) {
	s, err := h.accept(w, r, id)
	if err != nil {
		return
	}
	release := func() {}
	if slot != nil {
		release = slot.Take()
	}
	h.m.ClientConnected()
	s.end = func() {
		h.m.ClientDisconnected()
		h.remove(s)
		release()
	}
	go s.run(s.ctx)
}

// Shutdown closes every session with 1001 and waits for them, bounded by ctx.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	if !h.closing {
		h.closing = true
		close(h.done)
		h.cancel(ErrClosing)
	}
	for s := range h.sessions {
		s.kick() // parked writers must see done
	}
	h.mu.Unlock()
	waited := make(chan struct{})
	go func() { h.wg.Wait(); close(waited) }()
	select {
	case <-waited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
