package replay_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/dashflow/dashstream-gateway/internal/metrics"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// TestMain fails the package's tests on leaked goroutines (the Redis
// writer, prober and client pools must all stop).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newClient connects to url with short timeouts that honour contexts, as
// the gateway's own client should.
func newClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries = -1
	opts.DialTimeout = 250 * time.Millisecond
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// redisStore is a *replay.Redis under test with what made it.
type redisStore struct {
	*replay.Redis
	client redis.UniversalClient
	cfg    replay.RedisConfig
	m      *metrics.Metrics
}

// startRedis builds a store, runs it until the test ends (then waits for
// Run to return) and, when wait is set, waits until its breaker closes.
func startRedis(t testing.TB, c redis.UniversalClient, cfg replay.RedisConfig, wait bool) *redisStore {
	t.Helper()
	m := metrics.New(nil)
	r, err := replay.NewRedis(c, cfg, m, nil)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	if wait {
		testenv.WaitFor(t, 10*time.Second, r.Healthy, "redis breaker closed")
	}
	return &redisStore{Redis: r, client: c, cfg: cfg, m: m}
}

func (s *redisStore) flush(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// keys lists every key of the store's namespace, on every master of a
// cluster (SCAN sees one node's keys only).
func (s *redisStore) keys(t testing.TB) []string {
	t.Helper()
	var mu sync.Mutex
	var out []string
	scan := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, "dashstream-replay:{"+s.cfg.Namespace+":*", 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			out = append(out, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(bg(t), func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(bg(t), s.client)
	}
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	return out
}

func bg(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
