package app

import (
	"context"
	"errors"
	"sync"

	"github.com/dashflow/dashstream-gateway/internal/kafka"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// upstream is what the gateway learns from Kafka once Run reaches it, and
// the one place that holds it: the brokers, the consumer, the deep reader,
// the resume namespace the consumer found, and the Redis store of that
// namespace. The hub, the HTTP status and the admin calls are built in New,
// before any of it exists (the embedded broker and tracing start in Run, and
// the consumer needs the hub as its sink), so they ask upstream instead of
// being handed these parts.
//
// Its lifecycle runs one way (docs/ARCHITECTURE.md, "Construction order"):
//
//  1. empty (New): no partitions, namespace "", Consumer nil; the tiers
//     read memory only; Redis (when configured) has a client but no store;
//  2. attached (startPipeline, once, before the consumer runs): brokers,
//     consumer and deep reader set; the deep reader added to the tiers;
//  3. named (the consumer found the topic): Namespace is the consumer's;
//     runRedis adds the Redis store of that namespace to the tiers;
//  4. renamed, any number of times (the topic was re-created): the deep
//     reader forgets the old log and the Redis store of the new namespace
//     replaces the old one (dropNamespace).
//
// Its accessors are safe for concurrent use in every state.
type upstream struct {
	tiers *replay.Tiers // the deep reader and the Redis store are added to it here, nowhere else
	redis *redisTier    // nil without Redis; set by New, its store follows the namespace

	mu       sync.RWMutex // guards the fields below (written once, by attach)
	brokers  []string
	consumer *kafka.Consumer
	deep     *kafka.DeepReader
}

// attach records the parts built once the brokers are known (state 2) and
// adds the deep reader to the tiers. It is called once, before the
// consumer runs.
func (u *upstream) attach(brokers []string, c *kafka.Consumer, d *kafka.DeepReader) {
	u.mu.Lock()
	u.brokers, u.consumer, u.deep = brokers, c, d
	u.mu.Unlock()
	u.tiers.SetKafka(d)
}

// useRedisStore makes s the Redis tier (states 3 and 4).
func (u *upstream) useRedisStore(s *replay.Redis) { u.tiers.SetRedis(s) }

// Consumer is the Kafka consumer; nil before attach.
func (u *upstream) Consumer() *kafka.Consumer {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return u.consumer
}

// Brokers are the brokers in use; nil before attach.
func (u *upstream) Brokers() []string {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return u.brokers
}

func (u *upstream) deepReader() *kafka.DeepReader {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return u.deep
}

// Namespace is the resume namespace ("" until the consumer found the
// topic); the hub's cursors of another namespace are stale.
func (u *upstream) Namespace() string {
	if c := u.Consumer(); c != nil {
		return c.Namespace()
	}
	return ""
}

// Partitions lists the topic's partitions (hub.Topology); none before the
// consumer found them.
func (u *upstream) Partitions() []int32 {
	if c := u.Consumer(); c != nil {
		return c.Partitions()
	}
	return nil
}

// HighWatermark is the consumer's cached high watermark of p
// (hub.Topology).
func (u *upstream) HighWatermark(p int32) (int64, bool) {
	if c := u.Consumer(); c != nil {
		return c.HighWatermark(p)
	}
	return 0, false
}

// LatestHighWatermark asks Kafka itself (hub: a cursor beyond the cached
// watermark may only mean this instance is behind).
func (u *upstream) LatestHighWatermark(ctx context.Context, p int32) (int64, error) {
	d := u.deepReader()
	if d == nil {
		return 0, errors.New("app: no Kafka deep reader yet")
	}
	return d.EndOffset(ctx, p)
}
