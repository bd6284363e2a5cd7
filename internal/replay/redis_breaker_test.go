package replay_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// breakerConfig opens after 3 failures and probes every 100 ms.
func breakerConfig(ns string) replay.RedisConfig {
	return replay.RedisConfig{
		Namespace: ns, BreakerFailures: 3, ProbeInterval: 100 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond,
	}
}

// timed returns how long fn took.
func timed(fn func()) time.Duration {
	start := time.Now()
	fn()
	return time.Since(start)
}

// wantRead reads p and checks it holds exactly the offsets from..to.
func wantRead(t *testing.T, s *redisStore, p int32, from, to int64) {
	t.Helper()
	got, _, err := s.Read(bg(t), p, from-1, replay.Limit{Records: 1000})
	if err != nil || len(got) != int(to-from+1) || got[0].Offset != from || got[len(got)-1].Offset != to {
		t.Fatalf("read p%d: %d records (%v), want %d..%d", p, len(got), err, from, to)
	}
}

func TestRedisBreakerKillAndRestart(t *testing.T) {
	srv := testenv.StartRedis(t)
	s := startRedis(t, newClient(t, srv.URL), breakerConfig(srv.Prefix), true)
	s.Append(bg(t), chain(0, 0, 9))
	s.flush(t)
	wantRead(t, s, 0, 0, 9)

	srv.Kill(t)
	testenv.WaitFor(t, 10*time.Second, func() bool {
		s.Read(bg(t), 0, -1, replay.Limit{Records: 1}) // failures open the breaker
		return !s.Healthy()
	}, "breaker open after Redis was killed")

	var err error
	if d := timed(func() { _, _, err = s.Read(bg(t), 0, -1, replay.Limit{Records: 10}) }); d > 100*time.Millisecond {
		t.Fatalf("Read with the breaker open took %v", d)
	}
	if !errors.Is(err, replay.ErrUnavailable) {
		t.Fatalf("Read with the breaker open: %v, want ErrUnavailable", err)
	}
	dropped := s.m.Replay().RedisWriteDropped
	if d := timed(func() { s.Append(bg(t), chain(0, 10, 5009)) }); d > 50*time.Millisecond {
		t.Fatalf("Append of 5000 records with Redis down took %v", d)
	}
	if got := s.m.Replay().RedisWriteDropped - dropped; got != 5000 {
		t.Fatalf("%d writes counted as dropped, want 5000", got)
	}

	srv.Start(t) // no persistence: Redis comes back empty
	testenv.WaitFor(t, 10*time.Second, s.Healthy, "breaker closed after Redis came back")
	s.Append(bg(t), chain(0, 6000, 6009))
	s.flush(t)
	wantRead(t, s, 0, 6000, 6009)
}

// TestRedisBreakerStatusKillAndRestart: Breaker reports a real outage:
// healthy, then open (with the failures counted and the time it went down)
// once Redis is killed, then healthy again after a restart, having opened
// once.
func TestRedisBreakerStatusKillAndRestart(t *testing.T) {
	srv := testenv.StartRedis(t)
	cfg := breakerConfig(srv.Prefix)
	s := startRedis(t, newClient(t, srv.URL), cfg, true)
	if b := s.Breaker(); b.State != replay.BreakerHealthy || b.TimesOpened != 0 || !b.DownSince.IsZero() ||
		b.FailureThreshold != cfg.BreakerFailures || b.ProbeInterval != cfg.ProbeInterval {
		t.Fatalf("connected: %+v", b)
	}

	srv.Kill(t)
	killed := time.Now()
	var open replay.BreakerStatus
	testenv.WaitFor(t, 10*time.Second, func() bool {
		s.Read(bg(t), 0, -1, replay.Limit{Records: 1}) // failures open the breaker
		open = s.Breaker()
		return open.State == replay.BreakerOpen
	}, "breaker reports open after Redis was killed")
	if open.ConsecutiveFailures < cfg.BreakerFailures || open.TimesOpened != 1 ||
		open.DownSince.Before(killed) || open.DownSince.After(time.Now()) {
		t.Fatalf("open: %+v (killed at %v)", open, killed)
	}
	testenv.WaitFor(t, 10*time.Second, func() bool {
		return s.Breaker().ConsecutiveFailures > open.ConsecutiveFailures
	}, "failed probes keep counting while open")

	srv.Start(t)
	testenv.WaitFor(t, 10*time.Second, func() bool { return s.Breaker().State == replay.BreakerHealthy }, "breaker healthy after Redis came back")
	if b := s.Breaker(); b.ConsecutiveFailures != 0 || b.TimesOpened != 1 || !b.DownSince.IsZero() {
		t.Fatalf("recovered: %+v", b)
	}
}

// Writes failing while the breaker is still closed are counted as failures,
// and Append never blocks meanwhile.
func TestRedisWriteFailuresCounted(t *testing.T) {
	srv := testenv.StartRedis(t)
	cfg := breakerConfig(srv.Prefix)
	cfg.BreakerFailures = 1000 // stays closed: every batch is tried and fails
	s := startRedis(t, newClient(t, srv.URL), cfg, true)
	srv.Kill(t)
	var worst time.Duration
	for o := int64(0); o < 100; o++ {
		worst = max(worst, timed(func() { s.Append(bg(t), chain(0, o, o)) }))
	}
	s.flush(t)
	if worst > 100*time.Millisecond { // a blocked Append would wait for WriteTimeout (500 ms)
		t.Fatalf("Append took up to %v with Redis down", worst)
	}
	c := s.m.Replay()
	if c.RedisWriteFailures+c.RedisWriteDropped != 100 || c.RedisWriteFailures == 0 {
		t.Fatalf("failures %d + dropped %d, want 100 with some failures", c.RedisWriteFailures, c.RedisWriteDropped)
	}
}

func TestRedisUnreachableAtStart(t *testing.T) {
	srv := testenv.StartRedis(t)
	srv.Stop(t)
	s := startRedis(t, newClient(t, srv.URL), breakerConfig(srv.Prefix), false)
	if s.Healthy() {
		t.Fatal("healthy with Redis down")
	}
	if _, _, err := s.Read(bg(t), 0, -1, replay.Limit{Records: 1}); !errors.Is(err, replay.ErrUnavailable) {
		t.Fatalf("Read with Redis down: %v, want ErrUnavailable", err)
	}
	s.Append(bg(t), chain(0, 0, 9))
	s.flush(t) // queued while probing, dropped once the probe fails
	srv.Start(t)
	testenv.WaitFor(t, 10*time.Second, s.Healthy, "connected in the background")
	s.Append(bg(t), chain(0, 10, 19))
	s.flush(t)
	wantRead(t, s, 0, 10, 19)
}

// blockPipelines holds every pipeline, once armed, until released (or
// until its context ends).
type blockPipelines struct {
	armed   atomic.Bool
	release chan struct{}
	once    sync.Once
}

func (h *blockPipelines) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *blockPipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *blockPipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.armed.Load() {
			select {
			case <-h.release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return next(ctx, cmds)
	}
}

func (h *blockPipelines) open() { h.once.Do(func() { close(h.release) }) }

func TestRedisQueueFullDrops(t *testing.T) {
	env := testenv.Redis(t)
	hook := &blockPipelines{release: make(chan struct{})}
	t.Cleanup(hook.open)
	c := newClient(t, env.URL)
	c.AddHook(hook)
	cfg := replay.RedisConfig{Namespace: env.Prefix, QueueRecords: 10, WriteTimeout: 10 * time.Second}
	s := startRedis(t, c, cfg, true)
	hook.armed.Store(true)
	if d := timed(func() {
		for o := int64(0); o < 10000; o++ {
			s.Append(bg(t), chain(0, o, o))
		}
	}); d > time.Second {
		t.Fatalf("10 000 Appends into a full queue took %v", d)
	}
	if got := s.m.Replay().RedisWriteDropped; got != 9990 {
		t.Fatalf("%d dropped, want 9990", got)
	}
	hook.open()
	s.flush(t)
	wantRead(t, s, 0, 0, 9)
}
