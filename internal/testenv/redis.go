package testenv

import (
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisEnv is a reachable Redis server, a client for it and a key prefix
// unique to the test. Its methods are safe for concurrent use.
type RedisEnv struct {
	// URL is the server's redis:// URL.
	URL string
	// Client is connected to URL and closed when the test ends.
	Client *redis.Client
	// Prefix is unique to this test ("t-<test name>-<random>"), usable as a
	// key prefix or a namespace: when the test ends every key that contains
	// it anywhere is deleted (SCAN MATCH *Prefix* + UNLINK).
	Prefix string
	// Timeout bounds each helper operation. Zero means DefaultTimeout.
	Timeout time.Duration
}

// Redis returns the shared server named by REDIS_URL. Without it the test is
// skipped, or fails under DASHSTREAM_INTEGRATION=1. An unreachable server
// fails the test.
func Redis(t testing.TB) *RedisEnv {
	t.Helper()
	url := os.Getenv(EnvRedisURL)
	if url == "" {
		unavailable(t, "REDIS_URL not set; run make test")
	}
	r := newRedisEnv(t, url)
	t.Cleanup(func() { r.deletePrefixed(t) }) // runs before the client closes
	return r
}

// newRedisEnv connects to url and checks the server answers.
func newRedisEnv(t testing.TB, url string) *RedisEnv {
	t.Helper()
	opts, err := redis.ParseURL(url)
	checkErr(t, err, "parse REDIS_URL %q", url)
	r := &RedisEnv{URL: url, Client: redis.NewClient(opts), Prefix: uniqueName(t.Name(), 120)}
	t.Cleanup(func() { r.Client.Close() })
	ctx, cancel := opContext(r.Timeout)
	defer cancel()
	checkErr(t, r.Client.Ping(ctx).Err(), "redis at %s unreachable", url)
	return r
}

// Key returns Prefix + ":" + name.
func (r *RedisEnv) Key(name string) string { return r.Prefix + ":" + name }

// deletePrefixed removes the test's keys; failures are logged, not fatal,
// since leftover keys cannot collide with another test's prefix.
func (r *RedisEnv) deletePrefixed(t testing.TB) {
	ctx, cancel := opContext(r.Timeout)
	defer cancel()
	iter := r.Client.Scan(ctx, 0, "*"+r.Prefix+"*", 1000).Iterator()
	var batch []string
	flush := func() {
		if len(batch) > 0 {
			if err := r.Client.Unlink(ctx, batch...).Err(); err != nil {
				t.Logf("testenv: unlink %d keys of %s: %v", len(batch), r.Prefix, err)
			}
			batch = batch[:0]
		}
	}
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 500 {
			flush()
		}
	}
	flush()
	if err := iter.Err(); err != nil {
		t.Logf("testenv: scan keys of %s: %v", r.Prefix, err)
	}
}
