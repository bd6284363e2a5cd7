package replay_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/replay/replaytest"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

const conformanceTTL = 10 * time.Minute

// conformanceOptions runs the shared suite against stores built by
// startRedis; expiry is forced after checking every key's PTTL.
func conformanceOptions() replaytest.Options {
	return replaytest.Options{
		PerPartition: 64,
		Flush:        func(t *testing.T, s replay.Store) { s.(*redisStore).flush(t) },
		Peer: func(t *testing.T, s replay.Store) replay.Store {
			rs := s.(*redisStore)
			return startRedis(t, rs.client, rs.cfg, true)
		},
		TTL: conformanceTTL,
		Expire: func(t *testing.T, s replay.Store) {
			rs := s.(*redisStore)
			checkTTLs(t, rs, conformanceTTL)
			for _, k := range rs.keys(t) {
				rs.client.PExpire(bg(t), k, time.Millisecond)
			}
			time.Sleep(10 * time.Millisecond)
		},
	}
}

func TestRedisConformance(t *testing.T) {
	env := testenv.Redis(t)
	replaytest.Run(t, func(t *testing.T) replay.Store {
		cfg := replay.RedisConfig{Namespace: testenv.Redis(t).Prefix, TTL: conformanceTTL, MaxPerPartition: 64}
		return startRedis(t, env.Client, cfg, true)
	}, conformanceOptions())
}

// checkTTLs checks that every key of the store has a TTL in (0, max].
func checkTTLs(t *testing.T, s *redisStore, limit time.Duration) {
	t.Helper()
	keys := s.keys(t)
	if len(keys) == 0 {
		t.Fatal("no keys written")
	}
	for _, k := range keys {
		ttl, err := s.client.PTTL(bg(t), k).Result()
		if err != nil || ttl <= 0 || ttl > limit {
			t.Fatalf("key %s: PTTL %v (%v), want in (0, %v]", k, ttl, err, limit)
		}
	}
}

func rec(p int32, o int64, threads ...replay.ThreadSeq) *replay.Record {
	return &replay.Record{Partition: p, Offset: o, Prev: o - 1, Value: []byte("value"), Threads: threads}
}

func chain(p int32, from, to int64) []*replay.Record {
	var out []*replay.Record
	for o := from; o <= to; o++ {
		out = append(out, rec(p, o))
	}
	return out
}

func TestRedisTTLRefreshedAndExpires(t *testing.T) {
	env := testenv.Redis(t)
	const ttl = 1500 * time.Millisecond
	s := startRedis(t, env.Client, replay.RedisConfig{Namespace: env.Prefix, TTL: ttl}, true)
	th := replay.ThreadSeq{Thread: "T", Sequence: 1}
	s.Append(bg(t), []*replay.Record{rec(0, 0, th)})
	s.flush(t)
	checkTTLs(t, s, ttl)
	time.Sleep(ttl / 2)
	th.Sequence = 2
	s.Append(bg(t), []*replay.Record{rec(0, 1, th)})
	s.flush(t)
	checkTTLs(t, s, ttl)
	for _, k := range s.keys(t) {
		if left := s.client.PTTL(bg(t), k).Val(); left < ttl*3/4 {
			t.Fatalf("key %s: TTL %v left right after a write, want about %v", k, left, ttl)
		}
	}
	time.Sleep(ttl*3/4 + 50*time.Millisecond) // past the first write's expiry
	if got, _, _ := s.Read(bg(t), 0, -1, replay.Limit{Records: 10}); len(got) != 2 {
		t.Fatalf("after the first write's TTL: %d records, want 2 (TTL refreshed)", len(got))
	}
	testenv.WaitFor(t, 3*ttl, func() bool { return len(s.keys(t)) == 0 }, "every key expired")
	if refs, _ := s.ThreadRefs(bg(t), "T", 0, 10); len(refs) != 0 {
		t.Fatalf("refs after expiry: %v", refs)
	}
}

// The trim runs in the same script as the write: no observer ever sees
// more than MaxPerPartition entries, even with concurrent instances.
func TestRedisTrimAtomic(t *testing.T) {
	env := testenv.Redis(t)
	const limit = 50
	cfg := replay.RedisConfig{Namespace: env.Prefix, MaxPerPartition: limit}
	var stores []*redisStore
	for range 4 {
		stores = append(stores, startRedis(t, env.Client, cfg, true))
	}
	key := "dashstream-replay:{" + env.Prefix + ":p0}:log"
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := env.Client.XLen(context.Background(), key).Val(); n > limit {
				t.Errorf("XLEN %d > %d", n, limit)
				return
			}
		}
	})
	var wg sync.WaitGroup
	for _, s := range stores {
		wg.Go(func() {
			for from := int64(0); from < 3000; {
				to := from + rand.Int64N(120)
				s.Append(bg(t), chain(0, from, to))
				from = to + 1
			}
			s.flush(t)
		})
	}
	wg.Wait()
	close(stop)
	watch.Wait()
	o, n, ok, err := stores[0].Bounds(bg(t), 0)
	if err != nil || !ok || n-o+1 != limit {
		t.Fatalf("bounds %d..%d ok=%v err=%v, want %d records", o, n, ok, err, limit)
	}
}

// A Redis that lost its script cache (restart, SCRIPT FLUSH) gets the
// scripts again and the write goes through.
func TestRedisScriptCacheFlushed(t *testing.T) {
	env := testenv.Redis(t)
	s := startRedis(t, env.Client, replay.RedisConfig{Namespace: env.Prefix}, true)
	s.Append(bg(t), chain(0, 0, 4))
	s.flush(t)
	if err := env.Client.ScriptFlush(bg(t)).Err(); err != nil {
		t.Fatal(err)
	}
	s.Append(bg(t), chain(0, 5, 9))
	s.flush(t)
	got, _, err := s.Read(bg(t), 0, -1, replay.Limit{Records: 100})
	if err != nil || len(got) != 10 {
		t.Fatalf("read %d records (%v), want 10", len(got), err)
	}
	if f := s.m.Replay().RedisWriteFailures; f != 0 {
		t.Fatalf("%d write failures", f)
	}
}

// Run writes what is still queued when its context ends; Append after Run
// has returned drops and counts.
func TestRedisRunDrainsOnStop(t *testing.T) {
	env := testenv.Redis(t)
	r, err := replay.NewRedis(env.Client, replay.RedisConfig{Namespace: env.Prefix}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	testenv.WaitFor(t, 10*time.Second, r.Healthy, "breaker closed")
	r.Append(bg(t), chain(0, 0, 2999))
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := env.Client.XLen(bg(t), "dashstream-replay:{"+env.Prefix+":p0}:log").Val(); n != 3000 {
		t.Fatalf("%d records written before Run returned, want 3000", n)
	}
	r.Append(bg(t), chain(0, 3000, 3000)) // dropped, never blocks
}

func TestRedisConfigInvalid(t *testing.T) {
	env := testenv.Redis(t)
	for _, ns := range []string{"", "a{b", "a}b", "a:b", "a*b", strings.Repeat("n", 129)} {
		if _, err := replay.NewRedis(env.Client, replay.RedisConfig{Namespace: ns}, nil, nil); err == nil {
			t.Errorf("namespace %q accepted", ns)
		}
	}
	if _, err := replay.NewRedis(env.Client, replay.RedisConfig{Namespace: "ok", TTL: -1}, nil, nil); err == nil {
		t.Error("negative TTL accepted")
	}
	if _, err := replay.NewRedis(nil, replay.RedisConfig{Namespace: "ok"}, nil, nil); err == nil {
		t.Error("nil client accepted")
	}
}

func TestRedisReadErrorsWrapped(t *testing.T) {
	env := testenv.Redis(t)
	r, err := replay.NewRedis(env.Client, replay.RedisConfig{Namespace: env.Prefix}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Not running: the breaker never left its starting state.
	if _, _, err := r.Read(bg(t), 0, -1, replay.Limit{Records: 1}); !errors.Is(err, replay.ErrUnavailable) {
		t.Fatalf("Read before Run: %v, want ErrUnavailable", err)
	}
	if _, err := r.ThreadRefs(bg(t), "x", 0, 1); !errors.Is(err, replay.ErrUnavailable) {
		t.Fatalf("ThreadRefs before Run: %v, want ErrUnavailable", err)
	}
}

// TestRedisTenantRoundTrip: the tenant survives the Redis tier, an empty
// one is not stored, and entries written before the field existed read as
// no tenant.
func TestRedisTenantRoundTrip(t *testing.T) {
	env := testenv.Redis(t)
	s := startRedis(t, env.Client, replay.RedisConfig{Namespace: env.Prefix}, true)
	key := "dashstream-replay:{" + env.Prefix + ":p0}:log"
	old := map[string]any{"prev": "-1", "value": "old", "ts": "7", "threads": ""}
	if err := env.Client.XAdd(bg(t), &redis.XAddArgs{Stream: key, ID: "0-1", Values: old}).Err(); err != nil {
		t.Fatal(err)
	}
	a, b := rec(0, 1), rec(0, 2)
	a.Tenant = "acme"
	s.Append(bg(t), []*replay.Record{a, b})
	s.flush(t)
	got, _, err := s.Read(bg(t), 0, -1, replay.Limit{Records: 10})
	if err != nil || len(got) != 3 {
		t.Fatalf("read %d records (%v), want 3", len(got), err)
	}
	for i, want := range []string{"", "acme", ""} {
		if got[i].Tenant != want {
			t.Errorf("offset %d: tenant %q, want %q", got[i].Offset, got[i].Tenant, want)
		}
	}
	if string(got[0].Value) != "old" || got[0].TimestampUs != 7 {
		t.Fatalf("old entry: %+v", got[0])
	}
	entries := env.Client.XRange(bg(t), key, "2-1", "2-1").Val()
	if len(entries) != 1 {
		t.Fatalf("entry of offset 2: %v", entries)
	}
	if _, ok := entries[0].Values["tenant"]; ok {
		t.Fatal("an empty tenant was stored")
	}
}
