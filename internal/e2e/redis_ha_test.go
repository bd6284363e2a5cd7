package e2e

// Redis Cluster and Sentinel, end to end: the gateway's Redis tier on a real
// three-master cluster and on a real Sentinel setup whose master is killed
// mid-stream (scripts/redis-ha.sh through internal/testenv), real Kafka.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// tierSnapshot is a snapshot of the replay hits per tier (/metrics).
type tierSnapshot struct{ memory, redis, kafka float64 }

func snapshotTiers(t testing.TB, g *gateway) tierSnapshot {
	t.Helper()
	return tierSnapshot{metric(t, g, "replay_buffer_memory_hits_total"), metric(t, g, "replay_buffer_redis_hits_total"),
		tierHits(t, g, "kafka")}
}

func (a tierSnapshot) since(b tierSnapshot) tierSnapshot {
	return tierSnapshot{a.memory - b.memory, a.redis - b.redis, a.kafka - b.kafka}
}

// TestReplayFromRedisClusterAfterRestart: with REDIS_CLUSTER_ADDRS the
// partitions' logs land on the cluster's masters; after a restart (empty
// memory) a client resuming from an old cursor is served from the cluster,
// exactly, then live.
func TestReplayFromRedisClusterAfterRestart(t *testing.T) {
	k, topic := kafkaEnv(t, 4)
	rc := testenv.StartRedisCluster(t)
	env := gatewayEnv(k, topic)
	env["REDIS_CLUSTER_ADDRS"] = strings.Join(rc.Addrs, ",")
	env["KAFKA_AUTO_OFFSET_RESET"], env["REPLAY_BUFFER_MEMORY_SIZE"] = "latest", "50"
	g := startGateway(t, env)
	ns := namespaceOf(t, g)
	l := newProduced()
	l.produce(t, k, topic, 150, 0, 1, 2, 3)
	waitHeads(t, g, l.last(), arrive)
	waitRedis(t, rc.Client, ns, l.last(), arrive)
	masters := map[string]bool{}
	for p := range int32(4) {
		masters[rc.MasterOf(t, redisLogKey(ns, p))] = true
	}

	g.restart()
	if h := getHealth(t, g); h.ReplayBuffer.MemoryBufferSize != 0 {
		t.Fatalf("restarted gateway re-read history: %d records in memory", h.ReplayBuffer.MemoryBufferSize)
	}
	l.produce(t, k, topic, 5, 0, 1, 2, 3)
	waitHeads(t, g, l.last(), arrive)
	before := snapshotTiers(t, g)

	cursor := map[int32]int64{0: 10, 1: -1, 2: 100, 3: 149}
	s := newExact(l, cursor)
	c := dialCursor(g, cursor)
	rc0, n := readReplayComplete(t, c, s, arrive)
	want := (154 - 10) + 155 + (154 - 100) + (154 - 149)
	if n != want || rc0.TotalReplayed != want {
		t.Fatalf("replay: %d records before replay_complete %+v, want %d", n, rc0, want)
	}
	d := snapshotTiers(t, g).since(before)
	if d.redis == 0 || d.kafka != 0 {
		t.Errorf("tiers after a restart: redis hits %v (want > 0), kafka deep reads %v (want 0: the cluster holds it all)", d.redis, d.kafka)
	}
	l.produce(t, k, topic, 10, 0, 1, 2, 3)
	readExactTo(t, c, s, l.last(), arrive)
	t.Logf("cluster: 4 partitions' logs on %d of %d masters; resume after restart: %d records exactly once, hits memory %v redis %v kafka %v",
		len(masters), len(rc.Addrs), s.n, d.memory, d.redis, d.kafka)
}

func bg(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestRedisSentinelFailover: the Redis tier behind Sentinel (master,
// replica, one sentinel) while records flow. The master is SIGKILLed
// mid-stream; /health shows the breaker open (degraded, Redis alert) and
// clear again once Sentinel promoted the replica and writes go to it. A live
// client never notices; clients resuming afterwards from cursors older than
// the memory tier, around the kill and recent get every record exactly once:
// from Redis, or from Kafka where writes were lost in the failover.
func TestRedisSentinelFailover(t *testing.T) {
	const parts = 4 // one write per partition is in flight: more partitions, more failures per second
	k, topic := kafkaEnv(t, parts)
	// Sentinel waits 5 s before it deems the master down. The breaker opens
	// after 5 consecutive failed writes; a failing write takes ~1.7 s (go-redis
	// dial retries), so with 4 partitions it opens ~3.5 s after the kill: a
	// faster failover ends first (writes merely fail, Kafka fills the holes).
	rs := testenv.StartRedisSentinel(t, 5*time.Second)
	env := gatewayEnv(k, topic)
	env["REDIS_SENTINEL_ADDRS"], env["REDIS_SENTINEL_MASTER"] = strings.Join(rs.SentinelAddrs, ","), rs.MasterName
	env["REPLAY_BUFFER_MEMORY_SIZE"] = "60"
	g := startGateway(t, env)
	ns := namespaceOf(t, g)
	l := newProduced()
	pr := startProducer(t, k, topic, l, parts, 1, 20*time.Millisecond) // ~50 records/s per partition
	live := newExact(l, cursorAll(parts, -1))
	rd := startReader(t, dialCursor(g, cursorAll(parts, -1)), live)

	redisAlert := func(h healthDoc) bool { return strings.Contains(strings.ToLower(h.Alert), "redis") }
	testenv.WaitFor(t, arrive, func() bool {
		h := getHealth(t, g)
		return h.ReplayBuffer.RedisEnabled && !redisAlert(h) && redisNewest(rs.Client, ns, 0) >= 0
	}, "redis tier written through sentinel and healthy")
	rd.waitCount(t, 500, arrive)

	old := rs.KillMaster(t)
	atKill := l.last() // produced after the master died: Redis can hold them only after recovery
	w := watchFailover(t, g, rs, ns, old, atKill, redisAlert)
	rd.waitCount(t, rd.n.Load()+300, arrive) // writes flow to the new master for a while
	if err := pr.Stop(); err != nil {
		t.Fatal(err)
	}
	last := l.last()
	if s := rd.finish(t, last, arrive); s.n != l.total() {
		t.Fatalf("live client applied %d records, %d were produced", s.n, l.total())
	}
	waitRedis(t, rs.Client, ns, last, arrive)
	if h := getHealth(t, g); redisAlert(h) || h.Status == "degraded" {
		t.Fatalf("/health after the failover: status %s, alert %q", h.Status, h.Alert)
	}
	holes := redisHoles(t, rs.Client, ns, last)

	before := snapshotTiers(t, g)
	served := 0
	back := func(from map[int32]int64, n int64) map[int32]int64 {
		out := map[int32]int64{}
		for p, o := range from {
			out[p] = max(o-n-int64(p)*7, -1)
		}
		return out
	}
	for _, cursor := range []map[int32]int64{
		cursorAll(parts, -1), // everything: far older than memory
		back(atKill, 150),    // before the kill, older than memory
		back(atKill, 10),     // around the kill
		back(last, 20),       // memory
	} {
		s := newExact(l, cursor)
		c := dialCursor(g, cursor)
		readReplayComplete(t, c, s, arrive)
		readExactTo(t, c, s, last, arrive)
		want := 0
		for p, o := range last {
			want += int(o - cursor[p])
		}
		if s.n != want {
			t.Fatalf("resume from %v: %d records, want %d", cursor, s.n, want)
		}
		served += s.n
		c.CloseNow()
	}
	d := snapshotTiers(t, g).since(before)
	if d.redis == 0 {
		t.Errorf("no resume was served from Redis after the failover")
	}
	h := getHealth(t, g)
	t.Logf("failover: master %s killed; sentinel promoted %s after %v; Redis writes recovered %v after the kill; "+
		"/health degraded after %v (alert %q), cleared after %v; write failures %d, dropped %d at recovery",
		old, w.master, w.promoted.Round(time.Millisecond), w.recovered.Round(time.Millisecond),
		w.degraded.Round(time.Millisecond), w.alert, w.cleared.Round(time.Millisecond), w.failures, w.dropped)
	t.Logf("failover: %d records produced, %d missing from Redis after the failover (write failures %d, dropped %d); "+
		"4 resumes got %d records, lost 0, duplicated 0; replay hits per tier: memory %v, redis %v, kafka deep reads %v",
		l.total(), holes, h.ReplayBuffer.RedisWriteFailures, h.ReplayBuffer.RedisWriteDropped, served, d.memory, d.redis, d.kafka)
}

// failoverSeen is what watchFailover saw, as durations since the kill.
type failoverSeen struct {
	master                                 string // the promoted replica
	promoted, degraded, cleared, recovered time.Duration
	alert                                  string
	failures, dropped                      uint64 // /health's counters when recovered
}

// watchFailover polls every 50 ms until Sentinel names a new master, a
// record produced after the kill is in Redis and /health is clear again. It
// requires /health to have shown the Redis alert in between.
func watchFailover(t testing.TB, g *gateway, rs *testenv.RedisSentinel, ns, old string, atKill map[int32]int64,
	redisAlert func(healthDoc) bool) failoverSeen {
	t.Helper()
	var w failoverSeen
	start := time.Now()
	for {
		el := time.Since(start)
		if el > time.Minute {
			t.Fatalf("failover incomplete after %v: %+v", el, w)
		}
		h := getHealth(t, g)
		if redisAlert(h) && w.degraded == 0 {
			w.degraded, w.alert = el, h.Alert
			if h.Status != "degraded" {
				t.Errorf("/health status %q with a redis alert, want degraded", h.Status)
			}
		}
		if w.promoted == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if m, err := rs.MasterNow(ctx); err == nil && m != old {
				w.master, w.promoted = m, el
			}
			cancel()
		}
		if w.recovered == 0 && redisNewest(rs.Client, ns, 0) > atKill[0] {
			w.recovered = el
		}
		if w.degraded > 0 && !redisAlert(h) && w.cleared == 0 {
			w.cleared = el
		}
		w.failures, w.dropped = h.ReplayBuffer.RedisWriteFailures, h.ReplayBuffer.RedisWriteDropped
		if w.promoted > 0 && w.recovered > 0 && !redisAlert(h) {
			if w.degraded == 0 {
				t.Fatalf("/health never showed the Redis breaker open during the failover: %+v", w)
			}
			return w
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// redisHoles counts the offsets up to last that partition logs lack (writes
// lost in the failover or dropped while the breaker was open).
func redisHoles(t testing.TB, rc redis.Cmdable, ns string, last map[int32]int64) int64 {
	t.Helper()
	var holes int64
	for p, o := range last {
		n, err := rc.XLen(bg(t), redisLogKey(ns, p)).Result()
		if err != nil {
			t.Fatalf("xlen p%d: %v", p, err)
		}
		holes += o + 1 - n
	}
	return holes
}
