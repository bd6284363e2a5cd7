package hub

import (
	"time"

	"github.com/gobwas/ws"

	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// lagState accounts a slow client's catch-up: records delivered while its
// backlog exceeded its queue bound, per second over a sliding window.
type lagState struct {
	catching   bool
	since      time.Time
	severity   string
	cumulative int64
	buckets    []lagBucket // ascending seconds, pruned to the window
}

type lagBucket struct {
	sec   int64
	count int64
}

func (l *lagState) add(now time.Time, n int64, window time.Duration) {
	if n == 0 {
		return
	}
	l.cumulative += n
	sec := now.Unix()
	if k := len(l.buckets); k > 0 && l.buckets[k-1].sec == sec {
		l.buckets[k-1].count += n
	} else {
		l.buckets = append(l.buckets, lagBucket{sec, n})
	}
	l.prune(sec, window)
}

func (l *lagState) prune(sec int64, window time.Duration) {
	cut := sec - int64(window/time.Second)
	i := 0
	for i < len(l.buckets) && l.buckets[i].sec <= cut {
		i++
	}
	l.buckets = l.buckets[i:]
}

func (l *lagState) inWindow(now time.Time, window time.Duration) int64 {
	l.prune(now.Unix(), window)
	var n int64
	for _, b := range l.buckets {
		n += b.count
	}
	return n
}

func (l *lagState) overThreshold(cfg Config, now time.Time) bool {
	return l.inWindow(now, cfg.SlowWindow) > cfg.SlowThreshold
}

// tooSlow ends a live client whose catch-up exceeded
// SLOW_CLIENT_DISCONNECT_THRESHOLD records within the window; the writer
// asks after every write.
func (d *delivery) tooSlow() *closeReason {
	if d.rp == nil && d.lag.catching && d.lag.overThreshold(d.h.cfg, time.Now()) {
		return d.slowDisconnect("catch-up exceeded the threshold within the window")
	}
	return nil
}

// slowDisconnect tells the client why it is cut off (reason backpressure)
// and closes with 1008; it can reconnect and resume.
func (d *delivery) slowDisconnect(why string) *closeReason {
	d.h.m.SlowClientDisconnects.Inc()
	cfg := d.h.cfg
	m := wsproto.Disconnect{Type: wsproto.TypeDisconnect, Reason: "backpressure",
		LagInWindow: d.lag.inWindow(time.Now(), cfg.SlowWindow), CumulativeLag: d.lag.cumulative,
		Threshold: cfg.SlowThreshold, WindowSecs: int64(cfg.SlowWindow / time.Second),
		Message: "slow client: " + why + "; reconnect and resume from your cursor"}
	return &closeReason{code: ws.StatusPolicyViolation, reason: "backpressure", frames: [][]byte{wsproto.Frame(m)}}
}

// owed reports whether the rest of a capped replay (up to the heads seen at
// its resume) is still being delivered: docs/PROTOCOL.md §3.4 owes it to
// the client without a new resume, so it must not count as slow-client
// catch-up (a client reading at full speed would otherwise be disconnected
// after SLOW_CLIENT_DISCONNECT_THRESHOLD records). The send deadline still
// guards a client that stops reading. Once every partition reached its
// target the remainder is dropped.
func (d *delivery) owed() bool {
	if d.remainder == nil {
		return false
	}
	for p, t := range d.remainder.targets {
		if o, ok := d.pos[p]; !ok || o < t {
			return true
		}
	}
	d.remainder = nil
	return false
}

// enterCatchup starts catch-up accounting when the client's backlog exceeds
// its queue bound.
func (d *delivery) enterCatchup(now time.Time) {
	var backlog int64
	unknown := false
	for p, o := range d.pos {
		n, u := d.h.source.Backlog(p, o)
		backlog += n
		unknown = unknown || u
	}
	if backlog <= d.h.cfg.QueueBytes && !unknown {
		return
	}
	d.lag.catching, d.lag.since = true, now
	d.lag.severity = wsproto.GapSeverity(backlog / 1024) // KiB behind: <10 info, <100 warning
	d.h.m.ClientLagEvents.WithLabelValues(d.lag.severity).Inc()
}
