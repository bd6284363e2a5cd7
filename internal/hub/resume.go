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
	targets  map[int32]int64   // heads at the resume
	threads  map[string]uint64 // thread mode: deliver only these threads' newer events
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

// startResume begins a new epoch: it cancels any running replay or catch-up,
// positions every partition and starts the replay part. ctx is the
// session's; the replay's look-ups are bounded by the replay deadline.
func (s *session) startResume(ctx context.Context, r *wsproto.Resume) *closeReason {
	mode := r.ReplayMode()
	s.h.m.ResumeRequests.WithLabelValues(mode).Inc()
	hs := s.h.heads.Load()
	frames := s.cancelReplay()
	s.tail = nil
	s.lag = lagState{}
	s.pos = make(map[int32]int64, len(hs.offsets))
	s.resumed = hs.offsets
	now := time.Now()
	s.rp = &replayRun{mode: mode, targets: hs.offsets, start: now,
		deadline: now.Add(s.h.cfg.ReplayTimeout), timer: time.NewTimer(s.h.cfg.ReplayTimeout)}
	// The span travels in the replay's context, so the deep reads it needs
	// are its children.
	ctx, s.rp.span = tracer().Start(ctx, "hub.resume", trace.WithAttributes(
		attribute.String("dashstream.replay.mode", mode), attribute.Int("dashstream.resume.partitions", len(r.Offsets))))
	s.rp.ctx, s.rp.cancel = context.WithDeadline(ctx, s.rp.deadline)
	if cr := s.acquireReplaySlot(frames); cr != nil {
		return cr
	}
	if len(r.Invalid) > 0 {
		e := wsproto.NewError(wsproto.CodeResumeInvalidEntry, "invalid resume entries were ignored")
		e.Entries = r.Invalid
		frames = append(frames, wsproto.Frame(e))
	}
	switch {
	case r.Mode == wsproto.ModeThread:
		s.rp.threads = r.Threads // every partition from the oldest retained record
	case r.From == wsproto.FromLatest:
		for p, o := range hs.offsets {
			s.pos[p] = o
		}
	case r.From == wsproto.FromCursor:
		planned, err := s.applyCursors(r, mode)
		if err != nil {
			return s.unavailable(frames, err) // no cursor_stale, no gap: nothing is known to be lost
		}
		frames = append(frames, planned...)
	}
	return s.write(frames...)
}

// unavailable ends the session when a tier the resume or catch-up needs
// cannot answer (Kafka unreachable, so a range memory and Redis miss can be
// neither read nor proven gone): error REPLAY_UNAVAILABLE and close 1013,
// after frames. The client resumes later from its cursor; nothing was
// skipped (docs/PROTOCOL.md §3.4, "A gap needs proof"). A look-up cut short
// by the replay deadline is a REPLAY_TIMEOUT.
func (s *session) unavailable(frames [][]byte, err error) *closeReason {
	if s.rp != nil && errors.Is(err, context.DeadlineExceeded) && time.Now().After(s.rp.deadline) {
		cr := s.replayTimeout()
		cr.frames = append(frames, cr.frames...)
		return cr
	}
	logCtx := context.Background()
	if s.rp != nil {
		logCtx = s.rp.ctx
	}
	s.h.log.DebugContext(logCtx, "replay tier unavailable", "err", err)
	return &closeReason{code: statusTryAgainLater, reason: "replay unavailable",
		frames: append(frames, wsproto.Frame(wsproto.NewError(wsproto.CodeReplayUnavailable,
			"a replay tier is unavailable; resume again later from the same cursor")))}
}

// cancelReplay ends the replay still running, if any, with its own
// replay_complete: every resume gets exactly one, also when a later resume
// or a cursor_reset cuts it short. It reports what was sent so far.
func (s *session) cancelReplay() [][]byte {
	if s.rp == nil {
		return nil
	}
	return [][]byte{s.finishReplay()}
}

func (s *session) stopReplay() {
	if s.rp != nil {
		s.rp.timer.Stop()
		s.rp.cancel()
		s.rp.endSpan()
		if s.rp.slot {
			<-s.h.replaySlots
		}
		s.rp = nil
	}
}

// acquireReplaySlot waits, within the replay timeout, for one of the hub's
// bounded replay slots, so a reconnect storm cannot starve live delivery.
// frames (a cancelled replay's replay_complete) are sent before a refusal.
func (s *session) acquireReplaySlot(frames [][]byte) *closeReason {
	select {
	case s.h.replaySlots <- struct{}{}:
		s.rp.slot = true
		return nil
	default:
	}
	select {
	case s.h.replaySlots <- struct{}{}:
		s.rp.slot = true
		return nil
	case <-s.rp.timer.C:
		s.stopReplay()
		return &closeReason{code: statusTryAgainLater, reason: "replay timeout",
			frames: append(frames, wsproto.Frame(wsproto.NewError(wsproto.CodeReplayTimeout,
				"no replay slot became free within the replay timeout; resume again")))}
	case <-s.h.done:
		s.stopReplay()
		return goingAway
	case <-s.readDone:
		s.stopReplay()
		return peerGone
	}
}

// applyCursors positions the listed partitions; the others start from the
// oldest record of the replay window (lazily, in position). A cursor is
// called stale, with a gap, only on a log start Kafka reported; when Kafka
// cannot be asked the error ends the resume.
func (s *session) applyCursors(r *wsproto.Resume, mode string) ([][]byte, error) {
	var frames [][]byte
	ns := ""
	if s.h.cfg.Namespace != nil {
		ns = s.h.cfg.Namespace()
	}
	otherNS := r.Namespace != "" && ns != "" && r.Namespace != ns
	ctx := s.rp.ctx
	s.rp.unread = make(map[int32]int64, len(r.Offsets))
	for _, p := range sortedKeys(r.Offsets) {
		o := r.Offsets[p]
		if otherNS {
			frames = append(frames, s.staleFrame(p, o, s.windowStart(ctx, p), "cursor belongs to another topic or cluster (namespace mismatch)"))
			continue
		}
		if s.beyondHighWatermark(ctx, p, o) {
			frames = append(frames, s.staleFrame(p, o, s.windowStart(ctx, p), "cursor is at or beyond the partition's high watermark"))
			continue
		}
		oldest, stale, err := s.h.source.Stale(ctx, p, o)
		if err != nil {
			return nil, err
		}
		if stale {
			frames = append(frames, s.staleFrame(p, o, oldest, "cursor is older than anything retained"))
			frames = append(frames, s.gapFrame(p, o+1, oldest-1, mode))
			s.pos[p] = oldest - 1
			continue
		}
		s.pos[p] = o
		s.rp.unread[p] = o
	}
	return frames, nil
}

// windowStart is where a partition treated as unlisted starts: the oldest
// record of the replay window (0 when it holds none).
func (s *session) windowStart(ctx context.Context, p int32) int64 {
	oldest, _ := s.h.source.Oldest(ctx, p)
	return oldest
}

// staleOnFirstPage returns the cursor_stale owed before the first page of a
// listed partition when that page starts with a gap right after the cursor:
// the planner trusted a cached log start (less than replay.ProofMaxAge old)
// and the deep read found that Kafka's log start has moved past the cursor
// since. The cursor is stale after all, and the client hears it before the
// gap (docs/PROTOCOL.md §3.4). Every later page of the partition returns
// nil. A capped replay's rest (s.tail) still owes it.
func (s *session) staleOnFirstPage(p int32, after int64, g *replay.Gap) []byte {
	run := s.rp
	if run == nil {
		run = s.tail
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
	return s.staleFrame(p, after, g.To+1, "cursor is older than anything retained (Kafka's log start moved)")
}

func (s *session) staleFrame(p int32, requested, oldest int64, msg string) []byte {
	return wsproto.Frame(wsproto.CursorStale{Type: wsproto.TypeCursorStale, Partition: p,
		Requested: wsproto.Offset(requested), Oldest: wsproto.Offset(oldest), Message: msg})
}

func (s *session) gapFrame(p int32, from, to int64, mode string) []byte {
	g := wsproto.NewGap(p, from, to)
	s.h.m.ReplayGaps.WithLabelValues(mode).Inc()
	s.h.m.ReplayGapMessages.WithLabelValues(mode).Add(float64(g.Count))
	s.h.m.Dropped("retention", int(min(g.Count, 1<<30)))
	return wsproto.Frame(g)
}

// position returns the last offset delivered on p, starting a partition the
// client has no position on (see start).
func (s *session) position(ctx context.Context, p int32, head int64) int64 {
	if o, ok := s.pos[p]; ok {
		return o
	}
	o := s.start(ctx, p, head)
	s.pos[p] = o
	return o
}

// start is the position of a partition the client has no position on. A
// partition added to the topic after the session's resume starts at its
// beginning as the consumer started it: every record in it is new to the
// client, as everything in a re-created topic is, and the lower tiers serve
// what memory evicted (a gap only on Kafka's proof, docs/PROTOCOL.md §3.4). Any other partition (one that existed at the resume but was
// not listed, or one the consumer read from its start) begins at the oldest
// record of the replay window.
func (s *session) start(ctx context.Context, p int32, head int64) int64 {
	if _, existed := s.resumed[p]; !existed {
		if first, ok := s.h.heads.Load().added[p]; ok {
			return first - 1
		}
	}
	if oldest, ok := s.h.source.Oldest(ctx, p); ok {
		return oldest - 1
	}
	return head
}

// replayDone reports whether every partition reached its replay target, or
// the replay reached REPLAY_MAX_TOTAL / REPLAY_MAX_BYTES first (capped: the
// remainder follows as catch-up).
func (s *session) replayDone() bool {
	for p, t := range s.rp.targets {
		if s.position(s.rp.ctx, p, t) < t {
			s.rp.capped = s.rp.sent >= s.h.cfg.ReplayMaxTotal || s.rp.bytes >= s.h.cfg.ReplayMaxBytes
			return s.rp.capped
		}
	}
	return true
}

// finishReplay sends replay_complete, exactly once per resume.
func (s *session) finishReplay() []byte {
	rp := s.rp
	s.stopReplay()
	if rp.capped {
		// The rest follows as catch-up: owed to the client, not lag (see
		// owed); in thread mode still filtered (see wants).
		s.tail = rp
	}
	last := make(wsproto.Offsets, len(s.pos))
	for p, o := range s.pos {
		if o >= 0 {
			last[p] = wsproto.Offset(o)
		}
	}
	s.h.m.ReplayMessages.WithLabelValues(rp.mode).Add(float64(rp.sent))
	s.h.m.ReplayLatencyMs.WithLabelValues(rp.mode).Observe(float64(time.Since(rp.start).Microseconds()) / 1000)
	return wsproto.Frame(wsproto.ReplayComplete{Type: wsproto.TypeReplayComplete, TotalReplayed: rp.sent,
		LastOffsetsByPartition: last, Capped: rp.capped, Mode: rp.mode})
}

// wants tells whether r of p is delivered: a thread-mode replay, and after it
// was capped the records up to its targets, carry only the listed threads.
func (s *session) wants(p int32, r *replay.Record) bool {
	if s.rp != nil {
		return s.rp.wantsRecord(r)
	}
	if s.tail != nil {
		if t, ok := s.tail.targets[p]; ok && r.Offset <= t {
			return s.tail.wantsRecord(r)
		}
	}
	return true
}

// wantsRecord applies the thread filter of a thread-mode replay.
func (rp *replayRun) wantsRecord(r *replay.Record) bool {
	if rp == nil || rp.threads == nil {
		return true
	}
	for _, t := range r.Threads {
		if last, ok := rp.threads[t.Thread]; ok && t.Sequence > last {
			return true
		}
	}
	return false
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
func (s *session) room(b *batch) int {
	if s.rp == nil {
		return pageRecords
	}
	return min(pageRecords, s.h.cfg.ReplayMaxTotal-s.rp.sent-b.records)
}

// byteRoom is how many bytes one page may hold: what is left of the write
// batch and, during a replay, of REPLAY_MAX_BYTES.
func (s *session) byteRoom(b *batch) int {
	if s.rp == nil {
		return b.budget
	}
	return min(b.budget, s.h.cfg.ReplayMaxBytes-s.rp.bytes-b.bytes)
}

func (s *session) replayTimer() <-chan time.Time {
	if s.rp == nil {
		return nil
	}
	return s.rp.timer.C
}

// checkDeadlines ends a replay that ran out of time and a catch-up that
// lasts too long.
func (s *session) checkDeadlines() *closeReason {
	if s.rp != nil && time.Now().After(s.rp.deadline) {
		return s.replayTimeout()
	}
	if s.lag.catching && time.Since(s.lag.since) > s.h.cfg.MaxCatchup {
		return s.slowDisconnect("catch-up took longer than allowed")
	}
	return nil
}

func (s *session) replayTimeout() *closeReason {
	return &closeReason{code: statusTryAgainLater, reason: "replay timeout",
		frames: [][]byte{wsproto.Frame(wsproto.NewError(wsproto.CodeReplayTimeout,
			"replay did not finish within "+strconv.Itoa(int(s.h.cfg.ReplayTimeout.Seconds()))+"s; resume again"))}}
}

func sortedKeys[V any](m map[int32]V) []int32 {
	keys := make([]int32, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// latestWatermark is implemented by topologies that can ask Kafka for a
// partition's current high watermark.
type latestWatermark interface {
	LatestHighWatermark(ctx context.Context, p int32) (int64, bool)
}

// beyondHighWatermark reports whether cursor o names an offset that does not
// exist yet. The cached watermark may lag (this instance is behind, or the
// partition is paused): Kafka is asked before a cursor is called stale, so a
// cursor from a faster instance waits for the consumer instead.
func (s *session) beyondHighWatermark(ctx context.Context, p int32, o int64) bool {
	hwm, ok := s.h.topo.HighWatermark(p)
	if !ok || o < hwm {
		return false
	}
	lw, ok := s.h.topo.(latestWatermark)
	if !ok {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	latest, ok := lw.LatestHighWatermark(ctx, p)
	return !ok || o >= latest
}
