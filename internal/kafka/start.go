package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// bounds are a partition's log start and end (high watermark) offsets.
type bounds struct{ start, end int64 }

// startPlan is where each partition starts, decided before the consumer
// client exists so that it is created with exact offsets.
type startPlan struct {
	namespace string
	saved     map[int32]int64 // progress found in the group
	states    map[int32]*partState
}

// dial connects: metadata, saved progress and offsets first, then the DLQ
// producer and the consumer, which starts at the planned offsets.
func (c *Consumer) dial(ctx context.Context) (*clusterConn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	admCl, err := kgo.NewClient(append(slices.Clone(c.opts), kgo.RetryBackoffFn(adminRetryBackoff))...)
	if err != nil {
		return nil, fmt.Errorf("%w: admin client: %w", ErrInvalidConfig, err)
	}
	s := &clusterConn{admCl: admCl, adm: kadm.NewClient(admCl)}
	if err := c.prepare(ctx, s); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// adminRetryBackoff is the admin client's pause between retries of one
// request (franz-go's default grows to 2.5 s): a broker that just came up
// is noticed within about half a second, and a dead one costs a refused
// connection every half second at most.
func adminRetryBackoff(tries int) time.Duration {
	return jittered(50*time.Millisecond, 500*time.Millisecond, tries)
}

func (c *Consumer) prepare(ctx context.Context, s *clusterConn) error {
	plan, err := c.plan(ctx, s.adm)
	if err != nil {
		return err
	}
	if s.dlqCl, err = kgo.NewClient(slices.Concat(c.opts, dlqProducerOpts(c.cfg))...); err != nil {
		return fmt.Errorf("%w: DLQ producer: %w", ErrInvalidConfig, err)
	}
	s.dlq = newDeadLetters(s.dlqCl, c.cfg, c.m, c.now)
	if s.cl, err = kgo.NewClient(slices.Concat(c.opts, c.consumerOpts(plan.states))...); err != nil {
		return fmt.Errorf("%w: consumer client: %w", ErrInvalidConfig, err)
	}
	s.parts, s.committed = plan.states, plan.saved
	c.adoptNamespace(plan.namespace, func() { c.view.reset(plan.states) })
	return nil
}

// consumerOpts read every planned partition from its exact offset, only
// committed transactional data, with control records kept so the position
// (and thus lag and progress) moves past transaction markers.
func (c *Consumer) consumerOpts(states map[int32]*partState) []kgo.Opt {
	offsets := make(map[int32]kgo.Offset, len(states))
	for p, st := range states {
		offsets[p] = kgo.NewOffset().At(st.next)
	}
	return []kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.cfg.Topic: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		// Position out of range (retention overtook us): never skip ahead.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}
}

func (c *Consumer) plan(ctx context.Context, adm *kadm.Client) (startPlan, error) {
	ns, parts, err := c.topicMetadata(ctx, adm)
	if err != nil {
		return startPlan{}, err
	}
	saved, foreign, err := c.savedProgress(ctx, adm, ns)
	if err != nil {
		return startPlan{}, err
	}
	reset := c.cfg.AutoOffsetReset
	if cur := c.Namespace(); foreign || (cur != "" && cur != ns) {
		// A re-created topic: everything in it is new (docs/PROTOCOL.md §3.7).
		reset = ResetEarliest
	}
	bs, err := listBounds(ctx, adm, c.cfg.Topic)
	if err != nil {
		return startPlan{}, err
	}
	plan := startPlan{namespace: ns, saved: saved, states: make(map[int32]*partState, len(parts))}
	for _, p := range parts {
		b, ok := bs[p]
		if !ok {
			return startPlan{}, fmt.Errorf("kafka: no offsets for %s/%d", c.cfg.Topic, p)
		}
		off, has := saved[p]
		plan.states[p] = newPartState(p, startOffset(off, has, b, reset, c.cfg.WarmRecords), b.end)
	}
	return plan, nil
}

// startOffset is where a partition starts: its saved progress (kept within
// the log), else the log start for "earliest", else WarmRecords before the
// end (never before the log start) for "latest".
func startOffset(saved int64, hasSaved bool, b bounds, reset string, warm int) int64 {
	switch {
	case hasSaved:
		return min(max(saved, b.start), b.end)
	case reset == ResetEarliest:
		return b.start
	}
	return max(b.start, b.end-int64(warm))
}

// topicMetadata returns the namespace and the sorted partitions of the topic.
func (c *Consumer) topicMetadata(ctx context.Context, adm *kadm.Client) (string, []int32, error) {
	md, err := adm.Metadata(ctx, c.cfg.Topic)
	if err != nil {
		return "", nil, fmt.Errorf("kafka: metadata: %w", err)
	}
	td, ok := md.Topics[c.cfg.Topic]
	if !ok || td.Err != nil || len(td.Partitions) == 0 {
		return "", nil, fmt.Errorf("%w: %s: %w", ErrTopicNotFound, c.cfg.Topic, td.Err)
	}
	return namespaceOf(md.Cluster, c.cfg.Topic, td.ID), td.Partitions.Numbers(), nil
}

// savedProgress reads this instance's saved next offsets in namespace ns. A
// group that never committed has none. Progress is saved with its
// namespace as commit metadata: offsets saved for another namespace (the
// topic was re-created) are ignored and reported as foreign. Offsets saved
// without metadata (by older versions) are taken as they are.
func (c *Consumer) savedProgress(ctx context.Context, adm *kadm.Client, ns string) (saved map[int32]int64, foreign bool, err error) {
	resp, err := adm.FetchOffsets(ctx, c.group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[int32]int64{}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("kafka: fetch progress of %s: %w", c.group, err)
	}
	saved = make(map[int32]int64)
	for p, o := range resp[c.cfg.Topic] {
		switch {
		case o.Err != nil || o.At < 0:
		case o.Metadata != "" && o.Metadata != ns:
			foreign = true
		default:
			saved[p] = o.At
		}
	}
	return saved, foreign, nil
}

// listBounds lists the log start and end offsets of every partition.
func listBounds(ctx context.Context, adm *kadm.Client, topic string) (map[int32]bounds, error) {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: list end offsets: %w", err)
	}
	out := make(map[int32]bounds, len(starts[topic]))
	for p, s := range starts[topic] {
		if e, ok := ends[topic][p]; ok {
			out[p] = bounds{start: s.Offset, end: e.Offset}
		}
	}
	return out, nil
}

// adoptNamespace makes ns the namespace of the connection about to start;
// resetView installs the connection's partitions. A changed namespace (the
// topic was re-created, docs/PROTOCOL.md §3.7) runs Config.BeforeNamespaceChange first,
// while the old one is still visible and nothing is published, then
// publishes ns and runs Config.AfterNamespaceChange.
func (c *Consumer) adoptNamespace(ns string, resetView func()) {
	old := c.Namespace()
	if old == "" || old == ns {
		resetView()
		c.namespace.Store(&ns)
		c.setTopicProblem("")
		return
	}
	if c.cfg.BeforeNamespaceChange != nil {
		c.cfg.BeforeNamespaceChange(old, ns)
	}
	resetView()
	c.seq = newSequenceTracker(c.cfg.SequenceTrackerSize, c.seq.c)
	c.namespace.Store(&ns)
	if c.cfg.AfterNamespaceChange != nil {
		c.cfg.AfterNamespaceChange(old, ns)
	}
	c.setTopicProblem("")
	c.log.Warn("kafka: adopted the re-created topic from its log start; connected clients must resume in the new namespace",
		"topic", c.cfg.Topic, "old_namespace", old, "namespace", ns)
}
