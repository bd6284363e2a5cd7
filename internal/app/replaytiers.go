package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dashflow/dashstream-gateway/internal/config"
	"github.com/dashflow/dashstream-gateway/internal/kafka"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// redisTier is upstream's Redis part. Its client is built by New; its
// store is created once the resume namespace is known (Kafka answered),
// replaced by a store of the new namespace when the topic is re-created,
// runs its background writer, and is drained at shutdown. Until the first store exists, Redis is PINGed
// directly so that /health reports Redis itself, not the wait for Kafka.
type redisTier struct {
	client redis.UniversalClient
	done   chan struct{} // closed when runRedis returned (every writer stopped)
	pinged atomic.Bool   // the last direct PING answered (before a store exists)

	mu    sync.Mutex      // guards the fields below
	ctx   context.Context // runRedis's: the stores' writers run under it
	store *replay.Redis
	ns    string
	stop  context.CancelFunc // stops store's writer
	runs  sync.WaitGroup     // the writers of every store
}

func (rt *redisTier) get() *replay.Redis {
	if rt == nil {
		return nil
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.store
}

// healthy reports Redis's state: its store's circuit breaker, or before
// there is a store, the last direct PING.
func (rt *redisTier) healthy() bool {
	if s := rt.get(); s != nil {
		return s.Healthy()
	}
	return rt.pinged.Load()
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

// redisPingEvery is how often Redis is PINGed while no store exists yet.
const redisPingEvery = time.Second

// runRedis waits for the namespace (PINGing Redis meanwhile), then adds the
// Redis tier and runs its writer (and the writers of the stores of later
// namespaces) until ctx is done. Redis being down never stops the gateway.
func (a *App) runRedis(ctx context.Context, c *kafka.Consumer) error {
	rt := a.up.redis
	defer close(rt.done)
	rt.mu.Lock()
	rt.ctx = ctx
	rt.mu.Unlock()
	defer rt.runs.Wait()
	ns, ok := a.awaitNamespace(ctx, c)
	if !ok {
		return nil
	}
	if err := a.useRedisNamespace(ns, true); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// useRedisNamespace makes a store of namespace ns the Redis tier and stops
// the writer of the previous one (what it still had queued belongs to the
// old namespace and goes to the old keys). initial applies ns only when no
// store exists yet (a namespace change may have come first).
func (a *App) useRedisNamespace(ns string, initial bool) error {
	rt := a.up.redis
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.ctx == nil || rt.ctx.Err() != nil || rt.ns == ns || (initial && rt.store != nil) {
		return nil
	}
	r := a.cfg.Redis
	store, err := replay.NewRedis(rt.client, replay.RedisConfig{Namespace: ns, TTL: r.MessageTTL,
		MaxPerPartition: r.MaxSequences, MaxConcurrentWrites: r.MaxConcurrentWrites, MaxPayload: a.cfg.Server.MaxPayloadBytes},
		a.m, a.log.With("component", "redis"))
	if err != nil {
		return fmt.Errorf("app: redis: %w", err)
	}
	ctx, stop := context.WithCancel(rt.ctx)
	rt.runs.Go(func() {
		if err := store.Run(ctx); err != nil {
			a.log.Error("redis writer stopped", "namespace", ns, "err", err)
		}
	})
	if rt.stop != nil {
		rt.stop()
	}
	rt.store, rt.ns, rt.stop = store, ns, stop
	a.up.useRedisStore(store)
	a.log.Info("redis replay tier enabled", "namespace", ns)
	return nil
}

// awaitNamespace waits until the consumer knows the namespace; meanwhile
// it PINGs Redis every redisPingEvery for /health.
func (a *App) awaitNamespace(ctx context.Context, c *kafka.Consumer) (string, bool) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var next time.Time
	for c.Namespace() == "" {
		if now := time.Now(); now.After(next) {
			next = now.Add(redisPingEvery)
			pctx, cancel := context.WithTimeout(ctx, redisPingEvery)
			a.up.redis.pinged.Store(a.up.redis.client.Ping(pctx).Err() == nil)
			cancel()
		}
		select {
		case <-ctx.Done():
			return "", false
		case <-t.C:
		}
	}
	return c.Namespace(), true
}

// newDeepReader builds the Kafka tier: offsets older than memory and Redis
// hold but still retained by the topic (upstream.attach adds it).
func (a *App) newDeepReader(brokers []string) (*kafka.DeepReader, error) {
	kc := a.kafkaConfig(brokers)
	d, err := kafka.NewDeepReader(kafka.DeepReadConfig{Brokers: brokers, Topic: kc.Topic, Security: kc.Security,
		MaxConcurrent: a.cfg.Replay.MaxConcurrent, MaxPayload: kc.MaxPayload, MaxSchemaVersion: kc.MaxSchemaVersion,
		ExtraOpts: kc.ExtraOpts, TracerProvider: kc.TracerProvider}, a.log.With("component", "deep-read"))
	if err != nil {
		return nil, fmt.Errorf("app: deep reads: %w", err)
	}
	return d, nil
}

// closeRedis releases the Redis client (its pool, reaper and reconnect
// goroutines) once the writer stopped and the sessions ended.
func (a *App) closeRedis() {
	if a.up.redis != nil {
		if err := a.up.redis.client.Close(); err != nil {
			a.log.Warn("closing the redis client", "err", err)
		}
	}
}

// drainRedis waits for queued Redis writes at shutdown, bounded by ctx.
func (a *App) drainRedis(ctx context.Context) error {
	if s := a.up.redis.get(); s != nil {
		if err := s.Flush(ctx); err != nil {
			return fmt.Errorf("app: drain redis writes: %w", err)
		}
	}
	return nil
}
