package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// lagSample is one partition's lag metrics.
type lagSample struct {
	label      string
	lag        int64
	age        float64 // seconds
	catchingUp bool
}

// lagLoop polls end offsets every LagCheckInterval (and once at once) and
// publishes per-partition lag, lag age and catch-up phase.
func (c *Consumer) lagLoop(ctx context.Context, s *clusterConn) {
	t := time.NewTicker(c.cfg.LagCheckInterval)
	defer t.Stop()
	for {
		c.checkLag(ctx, s)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkLag lists high watermarks and last stable offsets. The consumer reads
// read_committed, so lag is measured to the last stable offset: records of
// an open transaction are not waiting for us yet.
func (c *Consumer) checkLag(ctx context.Context, s *clusterConn) {
	hwm, err := listOffsets(ctx, s.adm.ListEndOffsets, c.cfg.Topic)
	if err != nil {
		c.lagPollFailed(ctx)
		return
	}
	lso, err := listOffsets(ctx, s.adm.ListCommittedOffsets, c.cfg.Topic)
	if err != nil {
		c.lagPollFailed(ctx)
		return
	}
	now := c.now()
	c.view.setWatermarks(hwm, lso, now)
	for _, l := range c.view.lagSamples(now) {
		c.m.KafkaConsumerLag.WithLabelValues(l.label).Set(float64(l.lag))
		c.m.KafkaLagOffsetAge.WithLabelValues(l.label).Set(l.age)
		c.m.KafkaCatchupPhase.WithLabelValues(l.label).Set(boolFloat(l.catchingUp))
	}
}

func (c *Consumer) lagPollFailed(ctx context.Context) {
	if ctx.Err() != nil {
		return // stopping, not failing
	}
	c.m.KafkaLagPollFailures.Inc() // reachability is the health loop's (healthLoop)
}

// listOffsets runs one kadm List*Offsets call and keeps the partitions of
// topic that answered; any failed partition fails the poll.
func listOffsets(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error), topic string) (map[int32]int64, error) {
	resp, err := list(ctx, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return nil, err
	}
	out := make(map[int32]int64, len(resp[topic]))
	for p, o := range resp[topic] {
		out[p] = o.Offset
	}
	return out, nil
}

// lagSamples computes the lag metrics of every partition. The age of the
// oldest unconsumed record is approximated without reading it: the age of the
// last record read (the next one is younger, so this is an upper bound that
// is exact when records arrive steadily), or, before any record was read,
// how long the lag has been positive.
func (v *view) lagSamples(now time.Time) []lagSample {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]lagSample, 0, len(v.parts))
	for _, pv := range v.parts {
		l := lagSample{label: pv.label, lag: pv.lag(), catchingUp: pv.next < pv.startHWM}
		switch {
		case l.lag == 0:
		case pv.lastTsMs > 0:
			l.age = max(0, float64(now.UnixMilli()-pv.lastTsMs)/1000)
		case !pv.behindSince.IsZero():
			l.age = now.Sub(pv.behindSince).Seconds()
		}
		out = append(out, l)
	}
	return out
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
