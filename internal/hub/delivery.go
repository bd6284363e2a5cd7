package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/filter"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// delivery is what one client is owed and how far it got: its position per
// partition, the replay part of its last resume, the owed remainder of a
// capped replay, slow-client accounting and the record filter (filter.go).
// It turns the replay tiers into the frames due to the client, one write
// batch at a time, and never touches a socket: the WebSocket session
// (session.go) writes what it returns, and any other transport can drive
// it the same way:
//
//	frames, cr := d.resume(ctx, r)       // then write frames
//	frames, advanced, cr := d.next(ctx, buf) // then write frames, then d.tooSlow()
//
// A closeReason it returns ends the stream: its frames go out before the
// end (a transport without close codes ignores the code).
//
// Not safe for concurrent use: one goroutine at a time owns it (the
// session's writer; a parked writer hands it to the next).
type delivery struct {
	h      *Hub
	tenant string     // "": unrestricted (see setFilter)
	v2     bool       // the connection speaks protocol v2 (see add)
	sub    subscriber // woken by the hub's fan-out index; nil: not indexed

	// Of the current epoch (set by resume).
	json    bool             // v2: records as JSON text frames
	b64     bool             // v2, SSE: records as base64 text frames (sse.go)
	filter  *filter.Filter   // the client's filter with its tenant; nil: every record
	all     bool             // filter admits every record: no per-record matching
	threads []string         // the filter's exact threads: read through the thread index; nil: see types
	types   replay.TypeQuery // else the filter's types: read through the type index; zero: scan
	path    string           // pathIndex, pathTypeIndex or pathScan, for metrics

	pos       map[int32]int64  // last offset delivered (or passed) per partition; nil before the first resume
	resumed   map[int32]int64  // the heads the last resume saw (partitions that existed then)
	rp        *replayRun       // the running replay part of a resume, if any
	remainder *replayRun       // a capped replay whose rest is still owed (thread mode: filtered)
	lag       lagState         // slow-client catch-up accounting
	recs      []*replay.Record // reused storage of one memory-tier page
	turn      int              // round-robin start over partitions
	more      bool             // the last batch of next was full: more is due at once

	// joinLate holds, after a join, the threads whose newest full-state
	// record is past the heads it joined at: their records before it are
	// not sent live (join.go).
	joinLate map[string]replay.Ref
}

// newDelivery returns the delivery of a client restricted to tenant ("":
// none), speaking v2 or v1; sub, when not nil, is woken by the hub's
// fan-out index.
func (h *Hub) newDelivery(tenant string, v2 bool, sub subscriber) *delivery {
	f := (*filter.Filter)(nil).WithTenant(tenant)
	return &delivery{h: h, tenant: tenant, v2: v2, sub: sub, filter: f, all: f.AdmitsAll(), path: pathScan}
}

// started reports whether the client resumed (or was treated as resuming
// from "latest"): nothing is delivered before.
func (d *delivery) started() bool { return d.pos != nil }

// busy reports whether a replay or a catch-up is running: they keep their
// writer goroutine, and their deadlines.
func (d *delivery) busy() bool { return d.rp != nil || d.lag.catching }

// dropBuffers lets an idle client's page storage go (a big replay grows it
// to hundreds of KiB); it grows again when needed.
func (d *delivery) dropBuffers() { d.recs = nil }

// stop releases what a running replay holds (its slot, its span); the
// client is gone.
func (d *delivery) stop() { d.stopReplay() }

// pageRecords bounds one read of one partition.
const pageRecords = 512

// batch is one gathered write.
type batch struct {
	frames   [][]byte
	budget   int
	records  int
	bytes    int
	last     *replay.Record
	advanced bool
	pending  bool // a partition has more to deliver than this batch took
	scanned  int  // records examined (filtered clients' metrics)
	matched  int  // of which delivered
}

// next gathers up to one write batch (Config.WriteBatch bytes) of the
// frames due, round-robin over partitions, appending them to dst[:0], and
// accounts it (replay progress and replay_complete, catch-up). advanced
// reports whether any position moved; d.more then says whether the batch
// was full (more is due without a wake-up).
//
// A range no tier can serve or prove gone (Kafka unreachable) ends the
// stream with REPLAY_UNAVAILABLE and 1013 after the frames already
// gathered — in a replay, and equally in slow-client catch-up or a capped
// replay's rest: a gap there would make the client skip records Kafka may
// still hold, and retrying inside the session would hold its writer (and
// its catch-up deadline) hostage to the outage. The client reconnects and
// resumes from its cursor once Kafka is back.
func (d *delivery) next(ctx context.Context, dst [][]byte) (frames [][]byte, advanced bool, cr *closeReason) {
	hs := d.h.heads.Load()
	b := batch{frames: dst[:0], budget: d.h.cfg.WriteBatch}
	if d.rp != nil {
		ctx = d.rp.ctx // the replay's look-ups end at its deadline
	}
	n := len(hs.partitions)
	for i := 0; i < n && d.byteRoom(&b) > 0 && d.room(&b) > 0; i++ {
		p := hs.partitions[(d.turn+i)%n]
		if err := d.collect(ctx, p, hs.offsets[p], &b); err != nil {
			return nil, false, d.unavailable(ctx, b.frames, err)
		}
	}
	d.turn++
	d.countFiltered(&b)
	full := b.budget <= 0 || b.pending
	d.more = full
	return d.account(&b, full), b.advanced, nil
}

// collect appends p's pending frames to b.
func (d *delivery) collect(ctx context.Context, p int32, head int64, b *batch) error {
	limit, ok := d.rp.limit(p, head)
	after := d.position(ctx, p, head)
	if !ok || after >= limit {
		return nil
	}
	if d.path != pathScan && d.collectIndexed(p, after, limit, b) {
		return nil
	}
	page, err := d.h.source.Page(ctx, p, after, replay.Limit{Records: d.room(b), Bytes: d.byteRoom(b)}, d.recs)
	if err != nil {
		return err
	}
	if page.Gap == nil && len(page.Records) == 0 {
		// No tier returned anything, yet the head is beyond: not proof
		// that the records are gone (only Kafka's log start is).
		return fmt.Errorf("hub: p%d: no tier returned %d..%d: %w", p, after+1, limit, replay.ErrUnavailable)
	}
	d.countTierHit(page)
	if stale := d.staleOnFirstPage(p, after, page.Gap); stale != nil {
		b.frames = append(b.frames, stale)
	}
	if page.Gap != nil {
		b.frames = append(b.frames, d.gapFrame(p, page.Gap.From, page.Gap.To, d.modeLabel()))
		after = page.Gap.To
	}
	for _, r := range page.Records {
		if r.Offset > limit {
			break
		}
		after = r.Offset // also over records this client does not get
		b.scanned++
		if d.delivers(p, r) {
			b.matched++
			d.add(b, r)
		}
	}
	if page.Tier == replay.TierMemory && cap(page.Records) > 0 { // d.recs, maybe grown: ours to reuse
		clear(page.Records)
		d.recs = page.Records[:0]
	}
	b.advanced = b.advanced || after != d.pos[p]
	b.pending = b.pending || after < limit
	d.pos[p] = after
	return nil
}

// collectIndexed appends the frames of p's records after 'after' that the
// client's threads carry (or, without threads, of its message types or
// event types), read from the memory tier's thread (or type) index without
// looking at any other record, and moves the position over the rest. It
// reports false when memory does not hold the range (the caller then
// reads the tiers and filters).
func (d *delivery) collectIndexed(p int32, after, limit int64, b *batch) bool {
	lim := replay.Limit{Records: d.room(b), Bytes: d.byteRoom(b)}
	var recs []*replay.Record
	var through int64
	var covered bool
	if d.threads != nil {
		recs, through, covered = d.h.source.ReadThreads(p, after, d.threads, lim, d.recs)
	} else {
		recs, through, covered = d.h.source.ReadTypes(p, after, d.types, lim, d.recs)
	}
	if !covered || (through <= after && len(recs) == 0) {
		clear(recs)
		return false
	}
	pos := min(through, limit)
	for _, r := range recs {
		if r.Offset > limit {
			break
		}
		b.scanned++
		if d.delivers(p, r) {
			b.matched++
			d.add(b, r)
		}
	}
	if len(recs) > 0 {
		d.countTierHit(replay.Page{Tier: replay.TierMemory})
	}
	clear(recs)
	d.recs = recs[:0]
	b.advanced = b.advanced || pos != d.pos[p]
	b.pending = b.pending || pos < limit
	d.pos[p] = pos
	return true
}

// add gathers one frame of r.
func (b *batch) add(r *replay.Record, frame []byte) {
	b.frames = append(b.frames, frame)
	b.budget -= len(frame)
	b.bytes += len(frame)
	b.records++
	b.last = r
}

func (d *delivery) modeLabel() string {
	if d.rp != nil {
		return d.rp.mode
	}
	return "live"
}

// account updates replay and lag state for a gathered batch and appends
// replay_complete when the replay part is over.
func (d *delivery) account(b *batch, full bool) [][]byte {
	if d.rp != nil {
		d.rp.sent += b.records
		d.rp.bytes += b.bytes
		if d.replayDone() {
			return append(b.frames, d.finishReplay())
		}
		return b.frames
	}
	now := time.Now()
	if d.owed() {
		full = false // the rest of a capped replay is not slowness
	}
	if full && !d.lag.catching {
		d.enterCatchup(now)
	} else if !full && d.lag.catching {
		d.lag.catching = false
	}
	if d.lag.catching {
		d.lag.add(now, int64(b.records), d.h.cfg.SlowWindow)
		d.h.m.ClientLagMessages.WithLabelValues(d.lag.severity).Add(float64(b.records))
	}
	if b.last != nil && b.last.TimestampUs > 0 {
		ms := float64(now.UnixMicro()-b.last.TimestampUs) / 1000
		d.h.m.E2ELatencyMs.WithLabelValues(metrics.StageProducerToClientWrite).Observe(max(ms, 0))
	}
	return b.frames
}

// countTierHit counts a page served to a replay or a catch-up by its tier
// (live reads of the newest records are not replay hits).
func (d *delivery) countTierHit(page replay.Page) {
	d.rp.noteTier(page.Tier)
	if page.Tier != "" && (d.rp != nil || d.lag.catching || page.Tier != replay.TierMemory) {
		d.h.m.ReplayTierHit(page.Tier)
	}
}

// position returns the last offset delivered on p, starting a partition the
// client has no position on (see start).
func (d *delivery) position(ctx context.Context, p int32, head int64) int64 {
	if o, ok := d.pos[p]; ok {
		return o
	}
	o := d.start(ctx, p, head)
	d.pos[p] = o
	return o
}

// start is the position of a partition the client has no position on. A
// partition added to the topic after the client's resume starts at its
// beginning as the consumer started it: every record in it is new to the
// client, as everything in a re-created topic is, and the lower tiers serve
// what memory evicted (a gap only on Kafka's proof, docs/PROTOCOL.md §3.4).
// Any other partition (one that existed at the resume but was not listed,
// or one the consumer read from its start) begins at the oldest record of
// the replay window.
func (d *delivery) start(ctx context.Context, p int32, head int64) int64 {
	if _, existed := d.resumed[p]; !existed {
		if first, ok := d.h.heads.Load().added[p]; ok {
			return first - 1
		}
	}
	if oldest, ok := d.h.source.WindowStart(ctx, p); ok {
		return oldest - 1
	}
	return head
}

// reset starts the client over from the current heads (cursor_reset). The
// replay tiers are shared by every client, so nothing is cleared
// (bufferCleared stays false, docs/PROTOCOL.md §3.5). It returns the frames
// to send: a cut-short replay's replay_complete, then
// cursor_reset_complete.
func (d *delivery) reset() [][]byte {
	hs := d.h.heads.Load()
	frames := d.cancelReplay()
	d.remainder = nil
	d.lag = lagState{}
	d.pos = make(map[int32]int64, len(hs.offsets))
	latest := make(wsproto.Offsets, len(hs.offsets))
	for p, o := range hs.offsets {
		d.pos[p] = o
		latest[p] = wsproto.Offset(o)
	}
	return append(frames, wsproto.Frame(wsproto.CursorResetComplete{Type: wsproto.TypeCursorResetComplete,
		LatestOffsetsByPartition: latest, TotalPartitions: len(latest),
		Message: "cursor reset: continuing from the latest offsets; the shared replay buffer is kept"}))
}

// checkDeadlines ends a replay that ran out of time and a catch-up that
// lasts too long.
func (d *delivery) checkDeadlines() *closeReason {
	if d.rp != nil && time.Now().After(d.rp.deadline) {
		return d.replayTimeout()
	}
	if d.lag.catching && time.Since(d.lag.since) > d.h.cfg.MaxCatchup {
		return d.slowDisconnect("catch-up took longer than allowed")
	}
	return nil
}

// deadline fires when the running replay's deadline passes (nil without
// one): the writer must then call checkDeadlines even if nothing else
// happens.
func (d *delivery) deadline() <-chan time.Time {
	if d.rp == nil {
		return nil
	}
	return d.rp.timer.C
}

// stopped is how the stream ends when its context was cancelled: the hub
// is shutting down (1001), or the client left.
func stopped(ctx context.Context) *closeReason {
	if errors.Is(context.Cause(ctx), ErrClosing) {
		return goingAway
	}
	return peerGone
}
