package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
)

// progressLoop saves progress every ProgressInterval until ctx ends; Run
// saves once more after the consumer has stopped.
func (c *Consumer) progressLoop(ctx context.Context, s *clusterConn) {
	every(ctx, c.cfg.ProgressInterval, func() {
		if err := c.commit(ctx, s); err != nil && ctx.Err() == nil {
			c.logs.warn("commit", "kafka: saving progress failed", "group", c.group, "err", err)
		}
	})
}

// commit saves the next offset of every partition that moved since the last
// save under the progress group. Offsets in the view are only ever those of
// published records (or of transaction markers after them), so a restart
// re-reads at most what was not yet saved and never skips a record.
func (c *Consumer) commit(ctx context.Context, s *clusterConn) error {
	var offs kadm.Offsets
	ns := c.Namespace() // commit metadata: see savedProgress
	for p, next := range c.view.progress() {
		if old, ok := s.committed[p]; !ok || old != next {
			offs.Add(kadm.Offset{Topic: c.cfg.Topic, Partition: p, At: next, LeaderEpoch: -1, Metadata: ns})
		}
	}
	if len(offs) == 0 {
		return nil
	}
	resp, err := s.adm.CommitOffsets(ctx, c.group, offs)
	if err != nil {
		c.m.KafkaError("commit")
		return fmt.Errorf("kafka: commit progress: %w", err)
	}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil {
			s.committed[o.Partition] = o.At
		}
	})
	if err := resp.Error(); err != nil {
		c.m.KafkaError("commit")
		return fmt.Errorf("kafka: commit progress: %w", err)
	}
	return nil
}
