package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dashflow/dashstream-gateway/internal/config"
	"github.com/dashflow/dashstream-gateway/internal/kafka"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// redisTier owns the Redis replay store: it is created once the resume
// namespace is known (Kafka answered), runs its background writer, and is
// drained at shutdown.
type redisTier struct {
	mu     sync.Mutex // guards store
	store  *replay.Redis
	client redis.UniversalClient
	done   chan struct{} // closed when the writer stopped
}

func (rt *redisTier) get() *replay.Redis {
	if rt == nil {
		return nil
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.store
}

// newRedisClient builds a go-redis universal client (single node from
// REDIS_URL, Redis Cluster from REDIS_CLUSTER_ADDRS, Sentinel-managed master
// from REDIS_SENTINEL_ADDRS) whose timeouts follow the contexts of the
// store's calls, with few retries (the circuit breaker does the waiting).
func newRedisClient(cfg config.Redis) (redis.UniversalClient, error) {
	if cfg.URL != "" {
		o, err := redis.ParseURL(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("app: REDIS_URL: %w", err)
		}
		o.ContextTimeoutEnabled, o.MaxRetries, o.DialTimeout = true, 1, 2*time.Second
		return redis.NewClient(o), nil
	}
	opts := &redis.UniversalOptions{IsClusterMode: len(cfg.ClusterAddrs) > 0}
	entries, name := cfg.ClusterAddrs, "REDIS_CLUSTER_ADDRS"
	if !opts.IsClusterMode {
		entries, name = cfg.SentinelAddrs, "REDIS_SENTINEL_ADDRS"
		opts.MasterName, opts.SentinelPassword = cfg.SentinelMaster, cfg.SentinelPassword
	}
	if err := redisNodes(opts, entries); err != nil {
		return nil, fmt.Errorf("app: %s: %w", name, err)
	}
	opts.ContextTimeoutEnabled, opts.MaxRetries, opts.DialTimeout = true, 1, 2*time.Second
	return redis.NewUniversalClient(opts), nil
}

// redisNodes sets the addresses of entries, and the credentials, TLS and
// database that their URLs carry (config validated that they agree).
func redisNodes(opts *redis.UniversalOptions, entries []string) error {
	for _, e := range entries {
		a, err := config.ParseRedisAddr(e)
		if err != nil {
			return err
		}
		opts.Addrs = append(opts.Addrs, a.Addr)
		if a.HasURL {
			opts.Username, opts.Password, opts.DB = a.Username, a.Password, a.DB
			if a.TLS {
				// ServerName stays empty: crypto/tls takes each node's host.
				opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
		}
	}
	return nil
}

// runRedis waits for the namespace, then adds the Redis tier and runs its
// writer until ctx is done. Redis being down never stops the gateway.
func (a *App) runRedis(ctx context.Context, c *kafka.Consumer) error {
	rt := a.redis
	defer close(rt.done)
	ns, ok := awaitNamespace(ctx, c)
	if !ok {
		return nil
	}
	r := a.cfg.Redis
	store, err := replay.NewRedis(rt.client, replay.RedisConfig{Namespace: ns, TTL: r.MessageTTL,
		MaxPerPartition: r.MaxSequences, MaxConcurrentWrites: r.MaxConcurrentWrites},
		a.m, a.log.With("component", "redis"))
	if err != nil {
		return fmt.Errorf("app: redis: %w", err)
	}
	rt.mu.Lock()
	rt.store = store
	rt.mu.Unlock()
	a.tiers.SetRedis(store)
	a.log.Info("redis replay tier enabled", "namespace", ns)
	return store.Run(ctx)
}

func awaitNamespace(ctx context.Context, c *kafka.Consumer) (string, bool) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for c.Namespace() == "" {
		select {
		case <-ctx.Done():
			return "", false
		case <-t.C:
		}
	}
	return c.Namespace(), true
}

// startDeepReads adds the Kafka tier: offsets older than memory and Redis
// hold but still retained by the topic.
func (a *App) startDeepReads(brokers []string) (func(), error) {
	kc := a.kafkaConfig(brokers)
	d, err := kafka.NewDeepReader(kafka.DeepReadConfig{Brokers: brokers, Topic: kc.Topic, Security: kc.Security,
		MaxConcurrent: a.cfg.Replay.MaxConcurrent, MaxPayload: kc.MaxPayload, MaxSchemaVersion: kc.MaxSchemaVersion,
		ExtraOpts: kc.ExtraOpts}, a.log.With("component", "deep-read"))
	if err != nil {
		return nil, fmt.Errorf("app: deep reads: %w", err)
	}
	a.tiers.SetKafka(d)
	a.topo.setDeep(d)
	return d.Close, nil
}

// closeRedis releases the Redis client (its pool, reaper and reconnect
// goroutines) once the writer stopped and the sessions ended.
func (a *App) closeRedis() {
	if a.redis != nil {
		if err := a.redis.client.Close(); err != nil {
			a.log.Warn("closing the redis client", "err", err)
		}
	}
}

// drainRedis waits for queued Redis writes at shutdown, bounded by ctx.
func (a *App) drainRedis(ctx context.Context) error {
	if s := a.redis.get(); s != nil {
		if err := s.Flush(ctx); err != nil {
			return fmt.Errorf("app: drain redis writes: %w", err)
		}
	}
	return nil
}
