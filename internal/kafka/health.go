package kafka

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Reachability check (docs/PROTOCOL.md §9, "Kafka outage"): one metadata request for
// the topic every healthInterval, bounded by healthTimeout, so /readyz
// follows Kafka within about healthInterval+healthTimeout both ways, also
// on a quiet topic (no fetch needs to succeed) and on a black-holed
// connection (the timeout ends the request).
const (
	healthInterval = time.Second
	healthTimeout  = 1500 * time.Millisecond
)

// Topic states reported by TopicProblem.
const (
	topicMissing   = "kafka topic missing (deleted?): waiting for it to be re-created"
	topicRecreated = "kafka topic re-created: adopting the new topic"
)

// healthLoop checks reachability and the topic's identity every
// healthInterval until ctx ends, and starts the partitions added to the
// topic that the same metadata lists (within about healthInterval of their
// creation). A new topic identity (the topic was deleted and re-created,
// docs/PROTOCOL.md §3.7) is handed to recreated, which ends the connection so that Run
// adopts the new topic.
func (c *Consumer) healthLoop(ctx context.Context, s *clusterConn, recreated func(ns string)) {
	t := time.NewTicker(healthInterval)
	defer t.Stop()
	for {
		if ns := c.checkHealth(ctx, s); ns != "" {
			recreated(ns)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkHealth runs one metadata request. It returns the topic's new
// namespace when its identity changed, else "".
func (c *Consumer) checkHealth(ctx context.Context, s *clusterConn) string {
	hctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	md, err := probeMetadata(hctx, s.admCl, c.cfg.Topic)
	if ctx.Err() != nil {
		return "" // stopping, not failing
	}
	if err != nil {
		c.m.KafkaError("metadata")
		if errors.Is(err, context.DeadlineExceeded) && c.readRecently() {
			// Slow, not gone: a broker answered another request within
			// the last recentRead (an overloaded process or broker must
			// not flap its readiness).
			c.logs.warn("health-slow", "kafka: metadata request timed out while brokers answer other requests", "timeout", healthTimeout)
			return ""
		}
		c.setReachable(false)
		c.failing.clear() // a dependency outage is not a stall
		c.logs.warn("health", "kafka: metadata request failed: Kafka unreachable", "err", err)
		return ""
	}
	c.setReachable(true)
	switch {
	case !md.found || errors.Is(md.err, kerr.UnknownTopicOrPartition) || errors.Is(md.err, kerr.UnknownTopicID):
		c.setTopicProblem(topicMissing)
		c.logs.warn("topic-missing", "kafka: topic missing (deleted?); waiting for it", "topic", c.cfg.Topic)
		return ""
	case md.err != nil || md.partitions == 0:
		return "" // transient (leader election...): the next check decides
	}
	ns := namespaceOf(md.cluster, c.cfg.Topic, md.id)
	if cur := c.Namespace(); cur != "" && ns != cur {
		c.setTopicProblem(topicRecreated)
		c.log.Warn("kafka: topic identity changed (deleted and re-created): adopting the new topic",
			"topic", c.cfg.Topic, "namespace", cur, "new_namespace", ns)
		return ns
	}
	c.setTopicProblem("")
	c.startAdded(ctx, s, md.ids)
	return ""
}

// topicState is what one metadata request says about the topic.
type topicState struct {
	cluster    string
	found      bool
	err        error // the topic's error code
	id         kadm.TopicID
	partitions int
	ids        []int32 // the partitions' numbers
}

// probeMetadata asks a broker for the topic's metadata. It is a direct
// request: kadm's Metadata may answer from the client's cache (up to
// MetadataMinAge old), which would hide a dead broker or a re-created
// topic for seconds.
func probeMetadata(ctx context.Context, cl *kgo.Client, topic string) (topicState, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return topicState{}, err
	}
	var st topicState
	if resp.ClusterID != nil {
		st.cluster = *resp.ClusterID
	}
	for _, t := range resp.Topics {
		if t.Topic != nil && *t.Topic == topic {
			st.found, st.err, st.id, st.partitions = true, kerr.ErrorForCode(t.ErrorCode), kadm.TopicID(t.TopicID), len(t.Partitions)
			for _, tp := range t.Partitions {
				st.ids = append(st.ids, tp.Partition)
			}
		}
	}
	return st, nil
}

// recentRead is how recent a response from any broker must be for a timed
// out metadata request to count as slow rather than unreachable.
const recentRead = time.Second

// readHook notes when any client of the consumer last read a response.
type readHook struct{ last *atomic.Int64 }

// OnBrokerE2E implements kgo.HookBrokerE2E.
func (h readHook) OnBrokerE2E(_ kgo.BrokerMetadata, _ int16, e2e kgo.BrokerE2E) {
	if e2e.Err() == nil {
		h.last.Store(time.Now().UnixNano())
	}
}

var _ kgo.HookBrokerE2E = readHook{}

func (c *Consumer) readRecently() bool {
	last := c.lastRead.Load()
	return last != 0 && time.Since(time.Unix(0, last)) < recentRead
}

func (c *Consumer) setReachable(ok bool) {
	if c.reachable.Swap(ok) != ok && ok {
		c.log.Info("kafka: reachable again")
	}
}

func (c *Consumer) setTopicProblem(p string) {
	if p == "" {
		c.topicProblem.Store(nil)
		return
	}
	c.topicProblem.Store(&p)
}

// TopicProblem is why the topic cannot be consumed although Kafka answers
// (deleted, re-created and not adopted yet), "" when there is none. While
// it is set the gateway is not ready (docs/PROTOCOL.md §3.7).
func (c *Consumer) TopicProblem() string {
	if p := c.topicProblem.Load(); p != nil {
		return *p
	}
	return ""
}

// failGap is the longest pause between two failures of one failing run:
// franz-go backs off between fetch attempts (up to 2.5 s) and a reconnect
// waits up to backoffMax plus a dial of up to dialTimeout.
const failGap = backoffMax + dialTimeout

// failClock tracks a run of failures (polls that returned only errors, or
// failed re-connects to a re-created topic): when the run began and when
// the last failure was. Records arriving end the run, and so does a pause
// longer than failGap. Safe for concurrent use.
type failClock struct {
	mu          sync.Mutex
	since, last time.Time
}

func (f *failClock) fail(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.since.IsZero() || now.Sub(f.last) > failGap {
		f.since = now
	}
	f.last = now
}

func (f *failClock) clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.since, f.last = time.Time{}, time.Time{}
}

// longer reports whether, at now, the consumer keeps failing (the last
// failure is at most failGap old) and has been failing for d at least
// (failures at both ends of d: one transient error is no stall).
func (f *failClock) longer(now time.Time, d time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.since.IsZero() && now.Sub(f.last) <= failGap && f.last.Sub(f.since) >= d
}

// logEvery is how often one condition is logged at most (docs/PROTOCOL.md §3.7).
const logEvery = 10 * time.Second

// logLimiter logs each condition (a key) at most once per logEvery; the
// lines it suppressed are counted in the next one. Safe for concurrent use.
type logLimiter struct {
	log    *slog.Logger
	mu     sync.Mutex
	last   map[string]time.Time
	missed map[string]int
}

func (l *logLimiter) allow(key string) (bool, int) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.missed = map[string]time.Time{}, map[string]int{}
	}
	if t, ok := l.last[key]; ok && now.Sub(t) < logEvery {
		l.missed[key]++
		return false, 0
	}
	l.last[key] = now
	n := l.missed[key]
	delete(l.missed, key)
	return true, n
}

// warn logs msg at warning level unless key was logged less than logEvery
// ago.
func (l *logLimiter) warn(key, msg string, args ...any) {
	l.at(slog.LevelWarn, key, msg, args...)
}

func (l *logLimiter) at(level slog.Level, key, msg string, args ...any) {
	l.atContext(context.Background(), level, key, msg, args...)
}

// atContext logs with ctx, which carries the trace of the operation logged.
func (l *logLimiter) atContext(ctx context.Context, level slog.Level, key, msg string, args ...any) {
	ok, missed := l.allow(key)
	if !ok {
		return
	}
	if missed > 0 {
		args = append(args, "suppressed", missed)
	}
	l.log.Log(ctx, level, msg, args...) //nolint:sloglint // the message is the caller's, rate-limited here
}
