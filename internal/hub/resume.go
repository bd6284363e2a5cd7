package hub

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// replayRun is the replay part of one resume (an epoch): records up to the
// heads seen at the resume are replay; replay_complete follows them, then
// live delivery continues from the same positions.
type replayRun struct {
	ctx      context.Context // bounds the replay's Redis and Kafka look-ups by its deadline
	cancel   context.CancelFunc
	mode     string
	targets  map[int32]int64       // heads at the resume
	threads  map[string]uint64     // thread mode: deliver only these threads' newer events
	join     map[string]replay.Ref // a join: deliver only these threads, from these records on
	sent     int
	bytes    int
	capped   bool
	start    time.Time
	deadline time.Time
	timer    *time.Timer
	slot     bool // holds one of the hub's replay slots
	// unread holds the listed cursors the planner found retained whose
	// partition has not been read yet (see staleOnFirstPage).
	unread map[int32]int64
	// span traces the replay (a non-recording one when tracing is off);
	// tier is the deepest replay tier that served it, for the span.
	span trace.Span
	tier string
}

// tracerName is the instrumentation scope of the resume spans.
const tracerName = "github.com/dashflow/dashstream-gateway/internal/hub"

// tracer traces resumes through the global provider that tracing.Setup
// installs (without it, and when tracing is off, spans are no-ops). It is
// looked up per resume: a tracer taken earlier stays bound to the provider
// of its time, and a process may set up a new one (a restarted App).
func tracer() trace.Tracer { return otel.GetTracerProvider().Tracer(tracerName) }

// tierDepth orders the replay tiers from the nearest.
var tierDepth = map[string]int{replay.TierMemory: 1, replay.TierRedis: 2, replay.TierKafka: 3}

// noteTier records that tier served a page of the replay.
func (rp *replayRun) noteTier(tier string) {
	if rp != nil && tierDepth[tier] > tierDepth[rp.tier] {
		rp.tier = tier
	}
}

// endSpan ends the replay's span with what the replay did.
func (rp *replayRun) endSpan() {
	tier := rp.tier
	if tier == "" {
		tier = "none"
	}
	rp.span.SetAttributes(attribute.String("dashstream.replay.tier", tier),
		attribute.Int("dashstream.replay.records", rp.sent),
		attribute.Int("dashstream.replay.bytes", rp.bytes),
		attribute.Bool("dashstream.replay.capped", rp.capped))
	rp.span.End()
}

// resume begins a new epoch (docs/PROTOCOL.md §3.4): it cancels any
// running replay or catch-up, positions every partition and starts the
// replay part. It returns the frames to send (a cut-short replay's
// replay_complete, errors, cursor_stale and gap). ctx is the stream's; the
// replay's look-ups are bounded by the replay deadline.
func (d *delivery) resume(ctx context.Context, r *wsproto.Resume) ([][]byte, *closeReason) {
	if e := d.setFilter(r.Filter); e != nil {
		return [][]byte{wsproto.Frame(e)}, nil // refused: the current epoch, if any, goes on
	}
	d.json = d.v2 && r.Format == wsproto.FormatJSON
	mode := r.ReplayMode()
	d.h.m.ResumeRequests.WithLabelValues(mode).Inc()
	hs := d.h.heads.Load()
	frames := d.cancelReplay()
	d.remainder = nil
	d.joinLate = nil
	d.lag = lagState{}
	d.pos = make(map[int32]int64, len(hs.offsets))
	d.resumed = hs.offsets
	now := time.Now()
	d.rp = &replayRun{mode: mode, targets: hs.offsets, start: now,
		deadline: now.Add(d.h.cfg.ReplayTimeout), timer: time.NewTimer(d.h.cfg.ReplayTimeout)}
	// The span travels in the replay's context, so the deep reads it needs
	// are its children.
	spanCtx, span := tracer().Start(ctx, "hub.resume", trace.WithAttributes(
		attribute.String("dashstream.replay.mode", mode), attribute.Int("dashstream.resume.partitions", len(r.Offsets))))
	d.rp.span = span
	d.rp.ctx, d.rp.cancel = context.WithDeadline(spanCtx, d.rp.deadline)
	if cr := d.acquireReplaySlot(ctx, frames); cr != nil {
		return nil, cr
	}
	if len(r.Invalid) > 0 {
		e := wsproto.NewError(wsproto.CodeResumeInvalidEntry, "invalid resume entries were ignored")
		e.Entries = r.Invalid
		frames = append(frames, wsproto.Frame(e))
	}
	switch {
	case r.Mode == wsproto.ModeThread:
		d.rp.threads = r.Threads // every partition from the oldest retained record
	case r.From == wsproto.FromLatest:
		for p, o := range hs.offsets {
			d.pos[p] = o
		}
		if d.joins(r) {
			d.joinCheckpoints(hs)
		}
	case r.From == wsproto.FromCursor:
		planned, err := d.applyCursors(r, mode)
		if err != nil {
			return nil, d.unavailable(d.rp.ctx, frames, err) // no cursor_stale, no gap: nothing is known to be lost
		}
		frames = append(frames, planned...)
	}
	return frames, nil
}

// unavailable ends the stream when a tier the resume or catch-up needs
// cannot answer (Kafka unreachable, so a range memory and Redis miss can be
// neither read nor proven gone): error REPLAY_UNAVAILABLE and close 1013,
// after frames. The client resumes later from its cursor; nothing was
// skipped (docs/PROTOCOL.md §3.4, "A gap needs proof"). A look-up cut short
// by the replay deadline is a REPLAY_TIMEOUT, one cut short because the
// stream itself ended (ctx cancelled: shutdown, client gone) is that end.
func (d *delivery) unavailable(ctx context.Context, frames [][]byte, err error) *closeReason {
	if d.rp != nil && errors.Is(err, context.DeadlineExceeded) && time.Now().After(d.rp.deadline) {
		cr := d.replayTimeout()
		cr.frames = append(frames, cr.frames...)
		return cr
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return stopped(ctx)
	}
	d.h.log.DebugContext(ctx, "replay tier unavailable", "err", err)
	return &closeReason{code: statusTryAgainLater, reason: "replay unavailable",
		frames: append(frames, wsproto.Frame(wsproto.NewError(wsproto.CodeReplayUnavailable,
			"a replay tier is unavailable; resume again later from the same cursor")))}
}

// cancelReplay ends the replay still running, if any, with its own
// replay_complete: every resume gets exactly one, also when a later resume
// or a cursor_reset cuts it short. It reports what was sent so far.
func (d *delivery) cancelReplay() [][]byte {
	if d.rp == nil {
		return nil
	}
	return [][]byte{d.finishReplay()}
}

func (d *delivery) stopReplay() {
	if d.rp != nil {
		d.rp.timer.Stop()
		d.rp.cancel()
		d.rp.endSpan()
		if d.rp.slot {
			<-d.h.replaySlots
		}
		d.rp = nil
	}
}

// acquireReplaySlot waits, within the replay timeout, for one of the hub's
// bounded replay slots, so a reconnect storm cannot starve live delivery.
// frames (a cancelled replay's replay_complete) are sent before a refusal.
// ctx ending (shutdown, client gone) ends the wait.
func (d *delivery) acquireReplaySlot(ctx context.Context, frames [][]byte) *closeReason {
	select {
	case d.h.replaySlots <- struct{}{}:
		d.rp.slot = true
		return nil
	default:
	}
	select {
	case d.h.replaySlots <- struct{}{}:
		d.rp.slot = true
		return nil
	case <-d.rp.timer.C:
		d.stopReplay()
		return &closeReason{code: statusTryAgainLater, reason: "replay timeout",
			frames: append(frames, wsproto.Frame(wsproto.NewError(wsproto.CodeReplayTimeout,
				"no replay slot became free within the replay timeout; resume again")))}
	case <-ctx.Done():
		d.stopReplay()
		return stopped(ctx)
	}
}

// applyCursors positions the listed partitions; the others start from the
// oldest record of the replay window (lazily, in position). A cursor is
// called stale, with a gap, only on a log start Kafka reported; when Kafka
// cannot be asked the error ends the resume.
func (d *delivery) applyCursors(r *wsproto.Resume, mode string) ([][]byte, error) {
	var frames [][]byte
	ns := ""
	if d.h.cfg.Namespace != nil {
		ns = d.h.cfg.Namespace()
	}
	otherNS := r.Namespace != "" && ns != "" && r.Namespace != ns
	ctx := d.rp.ctx
	d.rp.unread = make(map[int32]int64, len(r.Offsets))
	for _, p := range sortedKeys(r.Offsets) {
		o := r.Offsets[p]
		if otherNS {
			frames = append(frames, d.staleFrame(p, o, d.windowStart(ctx, p), "cursor belongs to another topic or cluster (namespace mismatch)"))
			continue
		}
		if d.beyondHighWatermark(ctx, p, o) {
			frames = append(frames, d.staleFrame(p, o, d.windowStart(ctx, p), "cursor is at or beyond the partition's high watermark"))
			continue
		}
		oldest, stale, err := d.h.source.ProveStale(ctx, p, o)
		if err != nil {
			return nil, err
		}
		if stale {
			frames = append(frames, d.staleFrame(p, o, oldest, "cursor is older than anything retained"))
			frames = append(frames, d.gapFrame(p, o+1, oldest-1, mode))
			d.pos[p] = oldest - 1
			continue
		}
		d.pos[p] = o
		d.rp.unread[p] = o
	}
	return frames, nil
}

// windowStart is where a partition treated as unlisted starts: the oldest
// record of the replay window (0 when it holds none).
func (d *delivery) windowStart(ctx context.Context, p int32) int64 {
	oldest, _ := d.h.source.WindowStart(ctx, p)
	return oldest
}

// staleOnFirstPage returns the cursor_stale owed before the first page of a
// listed partition when that page starts with a gap right after the cursor:
// the planner trusted a cached log start (less than replay.ProofMaxAge old)
// and the deep read found that Kafka's log start has moved past the cursor
// since. The cursor is stale after all, and the client hears it before the
// gap (docs/PROTOCOL.md §3.4). Every later page of the partition returns
// nil. A capped replay's rest (d.remainder) still owes it.
func (d *delivery) staleOnFirstPage(p int32, after int64, g *replay.Gap) []byte {
	run := d.rp
	if run == nil {
		run = d.remainder
	}
	if run == nil {
		return nil
	}
	o, ok := run.unread[p]
	if !ok {
		return nil
	}
	delete(run.unread, p)
	if g == nil || o != after || g.From != after+1 {
		return nil
	}
	return d.staleFrame(p, after, g.To+1, "cursor is older than anything retained (Kafka's log start moved)")
}

func (d *delivery) staleFrame(p int32, requested, oldest int64, msg string) []byte {
	return wsproto.Frame(wsproto.CursorStale{Type: wsproto.TypeCursorStale, Partition: p,
		Requested: wsproto.Offset(requested), Oldest: wsproto.Offset(oldest), Message: msg})
}

func (d *delivery) gapFrame(p int32, from, to int64, mode string) []byte {
	g := wsproto.NewGap(p, from, to)
	d.h.m.ReplayGaps.WithLabelValues(mode).Inc()
	d.h.m.ReplayGapMessages.WithLabelValues(mode).Add(float64(g.Count))
	d.h.m.Dropped("retention", int(min(g.Count, 1<<30)))
	return wsproto.Frame(g)
}

// replayDone reports whether every partition reached its replay target, or
// the replay reached REPLAY_MAX_TOTAL / REPLAY_MAX_BYTES first (capped: the
// remainder follows as catch-up).
func (d *delivery) replayDone() bool {
	for p, t := range d.rp.targets {
		if d.position(d.rp.ctx, p, t) < t {
			d.rp.capped = d.rp.sent >= d.h.cfg.ReplayMaxTotal || d.rp.bytes >= d.h.cfg.ReplayMaxBytes
			return d.rp.capped
		}
	}
	return true
}

// finishReplay sends replay_complete, exactly once per resume.
func (d *delivery) finishReplay() []byte {
	rp := d.rp
	d.stopReplay()
	if rp.capped {
		// The rest follows as catch-up: owed to the client, not lag (see
		// owed); in thread mode still filtered (see wants).
		d.remainder = rp
	}
	last := make(wsproto.Offsets, len(d.pos))
	for p, o := range d.pos {
		if o >= 0 {
			last[p] = wsproto.Offset(o)
		}
	}
	d.h.m.ReplayMessages.WithLabelValues(rp.mode).Add(float64(rp.sent))
	d.h.m.ReplayLatencyMs.WithLabelValues(rp.mode).Observe(float64(time.Since(rp.start).Microseconds()) / 1000)
	return wsproto.Frame(wsproto.ReplayComplete{Type: wsproto.TypeReplayComplete, TotalReplayed: rp.sent,
		LastOffsetsByPartition: last, Capped: rp.capped, Mode: rp.mode})
}

// limit returns how far p may be delivered now, and false when p is not
// part of the running replay.
func (rp *replayRun) limit(p int32, head int64) (int64, bool) {
	if rp == nil {
		return head, true
	}
	t, ok := rp.targets[p]
	return min(t, head), ok
}

// room is how many records one page may hold: what the replay may still
// send, counting those already gathered into b.
func (d *delivery) room(b *batch) int {
	if d.rp == nil {
		return pageRecords
	}
	return min(pageRecords, d.h.cfg.ReplayMaxTotal-d.rp.sent-b.records)
}

// byteRoom is how many bytes one page may hold: what is left of the write
// batch and, during a replay, of REPLAY_MAX_BYTES.
func (d *delivery) byteRoom(b *batch) int {
	if d.rp == nil {
		return b.budget
	}
	return min(b.budget, d.h.cfg.ReplayMaxBytes-d.rp.bytes-b.bytes)
}

func (d *delivery) replayTimeout() *closeReason {
	return &closeReason{code: statusTryAgainLater, reason: "replay timeout",
		frames: [][]byte{wsproto.Frame(wsproto.NewError(wsproto.CodeReplayTimeout,
			"replay did not finish within "+strconv.Itoa(int(d.h.cfg.ReplayTimeout.Seconds()))+"s; resume again"))}}
}

func sortedKeys[V any](m map[int32]V) []int32 {
	keys := make([]int32, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// watermarkTimeout bounds the look-up of a partition's current high
// watermark while a resume is positioned (within the resume's deadline):
// a Kafka that does not answer in time leaves the cached watermark's
// verdict standing.
const watermarkTimeout = 2 * time.Second

// beyondHighWatermark reports whether cursor o names an offset that does not
// exist yet. The cached watermark may lag (this instance is behind, or the
// partition is paused): Kafka is asked before a cursor is called stale, so a
// cursor from a faster instance waits for the consumer instead.
func (d *delivery) beyondHighWatermark(ctx context.Context, p int32, o int64) bool {
	hwm, ok := d.h.topo.HighWatermark(p)
	if !ok || o < hwm {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, watermarkTimeout)
	defer cancel()
	latest, err := d.h.topo.LatestHighWatermark(ctx, p)
	return err != nil || o >= latest
}
