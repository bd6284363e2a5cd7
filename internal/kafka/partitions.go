package kafka

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// partitionLoop checks the topic's metadata every PartitionCheckInterval and
// starts reading partitions added since, from their log start.
func (c *Consumer) partitionLoop(ctx context.Context, s *clusterConn) {
	every(ctx, c.cfg.PartitionCheckInterval, func() { c.checkPartitions(ctx, s) })
}

// every runs fn each period until ctx ends.
func every(ctx context.Context, period time.Duration, fn func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// A changed topic identity is the health loop's to act on (healthLoop);
// partitions are added only while the identity is the connection's.
func (c *Consumer) checkPartitions(ctx context.Context, s *clusterConn) {
	ns, parts, err := c.topicMetadata(ctx, s.adm)
	if err != nil {
		if ctx.Err() == nil {
			c.m.KafkaError("metadata")
		}
		return
	}
	if ns != c.Namespace() {
		return
	}
	c.startAdded(ctx, s, parts)
}

// startAdded starts the partitions of parts (the topic's partitions as
// metadata of the connection's topic identity lists them) that the consumer
// does not read yet. The health loop calls it every healthInterval, so new
// partitions are read within a second or two of their creation;
// partitionLoop is the slower fallback.
func (c *Consumer) startAdded(ctx context.Context, s *clusterConn, parts []int32) {
	known := c.view.partitions()
	var added []int32
	for _, p := range parts {
		if _, found := slices.BinarySearch(known, p); !found {
			added = append(added, p)
		}
	}
	if len(added) > 0 {
		ctx, cancel := context.WithTimeout(ctx, addTimeout)
		defer cancel()
		c.addPartitions(ctx, s, added)
	}
}

// addTimeout bounds the offset look-ups of new partitions, so that the
// health loop keeps its pace; a failure is retried at the next check.
const addTimeout = healthTimeout

// addPartitions reads the new partitions' offsets here, then has the
// consumer goroutine start them. A failure is retried at the next check.
func (c *Consumer) addPartitions(ctx context.Context, s *clusterConn, added []int32) {
	bs, err := listBounds(ctx, s.adm, c.cfg.Topic)
	if err != nil {
		c.m.KafkaError("list_offsets")
		return
	}
	states := make(map[int32]*partState, len(added))
	for _, p := range added {
		if b, ok := bs[p]; ok {
			states[p] = newPartState(p, b.start, b.end)
		}
	}
	if len(states) > 0 {
		_ = c.enqueue(ctx, func(s *clusterConn) { c.startPartitions(s, states) })
	}
}

// PartitionSink is a Sink that is told about partitions added to the topic
// while the consumer runs, with the first offset it reads of each (the
// partition's log start when it was added), before any of their records
// is published. Every record of such a partition is new to a client
// connected before it existed.
type PartitionSink interface {
	Sink
	PartitionsAdded(first map[int32]int64)
}

// startPartitions runs on the consumer goroutine.
func (c *Consumer) startPartitions(s *clusterConn, states map[int32]*partState) {
	offsets := make(map[int32]kgo.Offset, len(states))
	for p, st := range states {
		if s.parts[p] != nil {
			continue // already added by an earlier check
		}
		s.parts[p] = st
		c.view.add(st)
		offsets[p] = kgo.NewOffset().At(st.next)
	}
	if len(offsets) == 0 {
		return
	}
	if ps, ok := c.sink.(PartitionSink); ok {
		first := make(map[int32]int64, len(offsets))
		for p := range offsets {
			first[p] = states[p].next
		}
		ps.PartitionsAdded(first)
	}
	s.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{c.cfg.Topic: offsets})
	c.log.Info("kafka: reading new partitions", "topic", c.cfg.Topic, "partitions", slices.Sorted(maps.Keys(offsets)))
}
