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

// slowDisconnect tells the client why it is cut off (reason backpressure)
// and closes with 1008; it can reconnect and resume.
func (s *session) slowDisconnect(why string) *closeReason {
	s.h.m.SlowClientDisconnects.Inc()
	cfg := s.h.cfg
	d := wsproto.Disconnect{Type: wsproto.TypeDisconnect, Reason: "backpressure",
		LagInWindow: s.lag.inWindow(time.Now(), cfg.SlowWindow), CumulativeLag: s.lag.cumulative,
		Threshold: cfg.SlowThreshold, WindowSecs: int64(cfg.SlowWindow / time.Second),
		Message: "slow client: " + why + "; reconnect and resume from your cursor"}
	return &closeReason{code: ws.StatusPolicyViolation, reason: "backpressure", frames: [][]byte{wsproto.Frame(d)}}
}
