package hub

import (
	"context"
	"fmt"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/metrics"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

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
}

// pump gathers up to one write batch of pending frames, round-robin over
// partitions, and writes it. It returns whether any position advanced.
//
// A range no tier can serve or prove gone (Kafka unreachable) ends the
// session with REPLAY_UNAVAILABLE and 1013 after the frames already
// gathered — in a replay, and equally in slow-client catch-up or a capped
// replay's rest: a gap there would make the client skip records Kafka may
// still hold, and retrying inside the session would hold its writer (and
// its catch-up deadline) hostage to the outage. The client reconnects and
// resumes from its cursor once Kafka is back.
func (s *session) pump(ctx context.Context) (bool, *closeReason) {
	hs := s.h.heads.Load()
	b := batch{frames: s.backing[:0], budget: s.h.cfg.WriteBatch}
	if s.rp != nil {
		ctx = s.rp.ctx // the replay's look-ups end at its deadline
	}
	n := len(hs.partitions)
	for i := 0; i < n && s.byteRoom(&b) > 0 && s.room(&b) > 0; i++ {
		p := hs.partitions[(s.next+i)%n]
		if err := s.collect(ctx, p, hs.offsets[p], &b); err != nil {
			return false, s.unavailable(b.frames, err)
		}
	}
	s.next++
	full := b.budget <= 0 || b.pending
	frames := s.account(&b, full)
	if cr := s.write(frames...); cr != nil {
		return false, cr
	}
	clear(frames)
	s.backing = frames[:0]
	if s.rp == nil && s.lag.catching && s.lag.overThreshold(s.h.cfg, time.Now()) {
		return false, s.slowDisconnect("catch-up exceeded the threshold within the window")
	}
	return b.advanced, nil
}

// collect appends p's pending frames to b.
func (s *session) collect(ctx context.Context, p int32, head int64, b *batch) error {
	limit, ok := s.rp.limit(p, head)
	after := s.position(ctx, p, head)
	if !ok || after >= limit {
		return nil
	}
	page, err := s.h.source.Page(ctx, p, after, replay.Limit{Records: s.room(b), Bytes: s.byteRoom(b)}, s.recs)
	if err != nil {
		return err
	}
	if page.Gap == nil && len(page.Records) == 0 {
		// No tier returned anything, yet the head is beyond: not proof
		// that the records are gone (only Kafka's log start is).
		return fmt.Errorf("hub: p%d: no tier returned %d..%d: %w", p, after+1, limit, replay.ErrUnavailable)
	}
	s.countTierHit(page)
	if stale := s.staleOnFirstPage(p, after, page.Gap); stale != nil {
		b.frames = append(b.frames, stale)
	}
	if page.Gap != nil {
		b.frames = append(b.frames, s.gapFrame(p, page.Gap.From, page.Gap.To, s.modeLabel()))
		after = page.Gap.To
	}
	for _, r := range page.Records {
		if r.Offset > limit {
			break
		}
		after = r.Offset // also over records this client does not get
		if s.visible(r) && s.wants(p, r) {
			b.add(r)
		}
	}
	if page.Tier == replay.TierMemory && cap(page.Records) > 0 { // s.recs, maybe grown: ours to reuse
		clear(page.Records)
		s.recs = page.Records[:0]
	}
	b.advanced = b.advanced || after != s.pos[p]
	b.pending = b.pending || after < limit
	s.pos[p] = after
	return nil
}

func (b *batch) add(r *replay.Record) {
	b.frames = append(b.frames, r.Frame)
	b.budget -= len(r.Frame)
	b.bytes += len(r.Frame)
	b.records++
	b.last = r
}

func (s *session) modeLabel() string {
	if s.rp != nil {
		return s.rp.mode
	}
	return "live"
}

// account updates replay and lag state for a gathered batch and appends
// replay_complete when the replay part is over.
func (s *session) account(b *batch, full bool) [][]byte {
	if s.rp != nil {
		s.rp.sent += b.records
		s.rp.bytes += b.bytes
		if s.replayDone() {
			return append(b.frames, s.finishReplay())
		}
		return b.frames
	}
	now := time.Now()
	if s.owed() {
		full = false // the rest of a capped replay is not slowness
	}
	if full && !s.lag.catching {
		s.enterCatchup(now)
	} else if !full && s.lag.catching {
		s.lag.catching = false
	}
	if s.lag.catching {
		s.lag.add(now, int64(b.records), s.h.cfg.SlowWindow)
		s.h.m.ClientLagMessages.WithLabelValues(s.lag.severity).Add(float64(b.records))
	}
	if b.last != nil && b.last.TimestampUs > 0 {
		ms := float64(now.UnixMicro()-b.last.TimestampUs) / 1000
		s.h.m.E2ELatencyMs.WithLabelValues(metrics.StageProducerToClientWrite).Observe(max(ms, 0))
	}
	return b.frames
}

// owed reports whether the rest of a capped replay (up to the heads seen at
// its resume) is still being delivered: docs/PROTOCOL.md §3.4 owes it to the client
// without a new resume, so it must not count as slow-client catch-up (a
// client reading at full speed would otherwise be disconnected after
// SLOW_CLIENT_DISCONNECT_THRESHOLD records). The send deadline still guards
// a client that stops reading. Once every partition reached its target the
// tail is dropped.
func (s *session) owed() bool {
	if s.tail == nil {
		return false
	}
	for p, t := range s.tail.targets {
		if o, ok := s.pos[p]; !ok || o < t {
			return true
		}
	}
	s.tail = nil
	return false
}

// enterCatchup starts catch-up accounting when the client's backlog exceeds
// its queue bound.
func (s *session) enterCatchup(now time.Time) {
	var backlog int64
	unknown := false
	for p, o := range s.pos {
		n, u := s.h.source.Backlog(p, o)
		backlog += n
		unknown = unknown || u
	}
	if backlog <= s.h.cfg.QueueBytes && !unknown {
		return
	}
	s.lag.catching, s.lag.since = true, now
	s.lag.severity = wsproto.GapSeverity(backlog / 1024) // KiB behind: <10 info, <100 warning
	s.h.m.ClientLagEvents.WithLabelValues(s.lag.severity).Inc()
}

// countTierHit counts a page served to a replay or a catch-up by its tier
// (live reads of the newest records are not replay hits).
func (s *session) countTierHit(page replay.Page) {
	s.rp.noteTier(page.Tier)
	if page.Tier != "" && (s.rp != nil || s.lag.catching || page.Tier != replay.TierMemory) {
		s.h.m.ReplayTierHit(page.Tier)
	}
}
