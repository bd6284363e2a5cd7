package kafka

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Reachability check (docs/PROTOCOL.md, health): one metadata request for
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
// healthInterval until ctx ends. A new topic identity (the topic was
// deleted and re-created, SPEC §3.7) is handed to recreated, which ends
// the session so that Run adopts the new topic.
func (c *Consumer) healthLoop(ctx context.Context, s *session, recreated func(ns string)) {
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
func (c *Consumer) checkHealth(ctx context.Context, s *session) string {
	hctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	md, err := s.adm.Metadata(hctx, c.cfg.Topic)
	if ctx.Err() != nil {
		return "" // stopping, not failing
	}
	if err != nil {
		c.m.KafkaError("metadata")
		c.setReachable(false)
		c.failing.clear() // a dependency outage is not a stall
		c.logs.warn("health", "kafka: metadata request failed: Kafka unreachable", "err", err)
		return ""
	}
	c.setReachable(true)
	td, ok := md.Topics[c.cfg.Topic]
	switch {
	case !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) || errors.Is(td.Err, kerr.UnknownTopicID):
		c.setTopicProblem(topicMissing)
		c.logs.warn("topic-missing", "kafka: topic missing (deleted?); waiting for it", "topic", c.cfg.Topic)
		return ""
	case td.Err != nil || len(td.Partitions) == 0:
		return "" // transient (leader election...): the next check decides
	}
	ns := namespaceOf(md.Cluster, c.cfg.Topic, td.ID)
	if cur := c.Namespace(); cur != "" && ns != cur {
		c.setTopicProblem(topicRecreated)
		c.log.Warn("kafka: topic identity changed (deleted and re-created): adopting the new topic",
			"topic", c.cfg.Topic, "namespace", cur, "new_namespace", ns)
		return ns
	}
	c.setTopicProblem("")
	return ""
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
// it is set the gateway is not ready (SPEC §3.7).
func (c *Consumer) TopicProblem() string {
	if p := c.topicProblem.Load(); p != nil {
		return *p
	}
	return ""
}

// failClock is when the consumer started failing (every poll an error, or
// re-connecting after a topic change) while Kafka answers; zero while it
// is not failing. Safe for concurrent use.
type failClock struct {
	mu    sync.Mutex
	since time.Time
}

func (f *failClock) fail(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.since.IsZero() {
		f.since = now
	}
}

func (f *failClock) clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.since = time.Time{}
}

// longer reports whether it has been failing for longer than d at now.
func (f *failClock) longer(now time.Time, d time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.since.IsZero() && now.Sub(f.since) > d
}

// logEvery is how often one condition is logged at most (SPEC §3.7).
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
	ok, missed := l.allow(key)
	if !ok {
		return
	}
	if missed > 0 {
		args = append(args, "suppressed", missed)
	}
	l.log.Log(context.Background(), level, msg, args...)
}
