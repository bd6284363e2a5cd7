package e2e

// Durable, exact replay: a resume is served by whichever tier
// holds the records — memory, Redis, Kafka — exactly (no duplicate, no
// hole, values byte for byte), and only what no tier holds is a gap.
// Real Kafka and real Redis (internal/testenv).

import (
	"maps"
	"testing"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// TestReplayFromMemory: a resume whose records are all in the memory tier
// is served from memory (replay_buffer_memory_hits_total and /health
// memory_hits grow, Redis and Kafka tiers are not asked), exactly, and live
// delivery follows without duplicate or hole.
func TestReplayFromMemory(t *testing.T) {
	k, topic := kafkaEnv(t, 2)
	r := testenv.Redis(t)
	g := startGateway(t, redisEnv(k, topic, r.URL, nil))
	cleanupRedisKeys(t, r.Client, namespaceOf(t, g))
	l := newProduced()
	l.produce(t, k, topic, 100, 0, 1)
	waitHeads(t, g, l.last(), arrive)

	h0 := getHealth(t, g)
	mem0 := metric(t, g, "replay_buffer_memory_hits_total")
	redis0, kafka0 := tierHits(t, g, "redis"), tierHits(t, g, "kafka")

	cursor := map[int32]int64{0: 49, 1: 0}
	s := newExact(l, cursor)
	c := dialCursor(g, cursor)
	rc, n := readReplayComplete(t, c, s, arrive)
	if n != 50+99 || rc.TotalReplayed != n || rc.Capped || rc.Mode != "cursor" {
		t.Fatalf("replay: %d records before replay_complete %+v, want 149, capped false, mode cursor", n, rc)
	}
	for p := range int32(2) {
		if rc.LastOffsetsByPartition[p] != 99 {
			t.Errorf("replay_complete lastOffsetsByPartition[%d] = %d, want 99", p, rc.LastOffsetsByPartition[p])
		}
	}
	h1 := getHealth(t, g)
	mem1 := metric(t, g, "replay_buffer_memory_hits_total")
	if h1.ReplayBuffer.MemoryHits <= h0.ReplayBuffer.MemoryHits || mem1 <= mem0 {
		t.Errorf("memory hits did not grow: /health %d → %d, metric %v → %v",
			h0.ReplayBuffer.MemoryHits, h1.ReplayBuffer.MemoryHits, mem0, mem1)
	}
	if h1.ReplayBuffer.RedisHits != h0.ReplayBuffer.RedisHits || tierHits(t, g, "redis") != redis0 ||
		tierHits(t, g, "kafka") != kafka0 {
		t.Errorf("a lower tier served a replay memory holds: redis hits %d → %d, kafka tier %v → %v",
			h0.ReplayBuffer.RedisHits, h1.ReplayBuffer.RedisHits, kafka0, tierHits(t, g, "kafka"))
	}

	l.produce(t, k, topic, 10, 0, 1)
	readExactTo(t, c, s, l.last(), arrive)
	if s.n != 149+20 {
		t.Fatalf("got %d records in total, want %d", s.n, 149+20)
	}
}

// TestReplayFromRedisAfterRestart: after a restart the memory tier is empty
// and the gateway does not re-read history (same INSTANCE_ID: it continues
// from its saved progress; KAFKA_AUTO_OFFSET_RESET=latest would only matter
// for a new instance, which would warm REPLAY_BUFFER_MEMORY_SIZE records);
// a client resuming from an old cursor gets the records from Redis, exactly,
// and then the records published after the restart.
func TestReplayFromRedisAfterRestart(t *testing.T) {
	k, topic := kafkaEnv(t, 2)
	r := testenv.Redis(t)
	g := startGateway(t, redisEnv(k, topic, r.URL, map[string]string{
		"KAFKA_AUTO_OFFSET_RESET": "latest", "REPLAY_BUFFER_MEMORY_SIZE": "50"}))
	ns := namespaceOf(t, g)
	cleanupRedisKeys(t, r.Client, ns)
	l := newProduced()
	l.produce(t, k, topic, 200, 0, 1)
	waitHeads(t, g, l.last(), arrive)
	waitRedis(t, r.Client, ns, l.last(), arrive)

	g.restart()
	if ns2 := namespaceOf(t, g); ns2 != ns {
		t.Fatalf("namespace changed across a restart: %s → %s", ns, ns2)
	}
	if h := getHealth(t, g); h.ReplayBuffer.MemoryBufferSize != 0 {
		t.Fatalf("restarted gateway re-read history: %d records in memory", h.ReplayBuffer.MemoryBufferSize)
	}
	l.produce(t, k, topic, 5, 0, 1) // heads exist only once records arrive
	waitHeads(t, g, l.last(), arrive)

	cursor := map[int32]int64{0: 20, 1: -1}
	s := newExact(l, cursor)
	c := dialCursor(g, cursor)
	rc, n := readReplayComplete(t, c, s, arrive)
	want := (204 - 20) + 205
	if n != want || rc.TotalReplayed != want || rc.Capped {
		t.Fatalf("replay: %d records before replay_complete %+v, want %d", n, rc, want)
	}
	h := getHealth(t, g)
	if h.ReplayBuffer.RedisHits == 0 || tierHits(t, g, "redis") == 0 {
		t.Errorf("redis served nothing: /health redis_hits %d", h.ReplayBuffer.RedisHits)
	}
	if kh := tierHits(t, g, "kafka"); kh != 0 {
		t.Errorf("kafka deep reads served %v pages that Redis holds", kh)
	}
	t.Logf("after restart: redis_hits %d, memory_hits %d, redis_misses %d",
		h.ReplayBuffer.RedisHits, h.ReplayBuffer.MemoryHits, h.ReplayBuffer.RedisMisses)

	l.produce(t, k, topic, 10, 0, 1)
	readExactTo(t, c, s, l.last(), arrive)
}

// TestReplayFromKafkaAfterRedisFlush: with the Redis keys gone and memory
// holding only the newest 50 records per partition, a resume 490 records
// back is served by Kafka deep reads, then memory — exactly, without a gap.
func TestReplayFromKafkaAfterRedisFlush(t *testing.T) {
	k, topic := kafkaEnv(t, 2)
	r := testenv.Redis(t)
	g := startGateway(t, redisEnv(k, topic, r.URL, map[string]string{"REPLAY_BUFFER_MEMORY_SIZE": "50"}))
	ns := namespaceOf(t, g)
	cleanupRedisKeys(t, r.Client, ns)
	l := newProduced()
	l.produce(t, k, topic, 250, 0, 1)
	waitHeads(t, g, l.last(), arrive)
	waitRedis(t, r.Client, ns, l.last(), arrive)
	if n := deleteRedisKeys(t, r.Client, ns); n == 0 {
		t.Fatal("no Redis keys to delete")
	}
	if keys := redisKeys(t, r.Client, ns); len(keys) != 0 {
		t.Fatalf("keys left after the flush: %v", keys)
	}

	h0 := getHealth(t, g)
	kafka0 := tierHits(t, g, "kafka")
	cursor := map[int32]int64{0: 10, 1: -1}
	s := newExact(l, cursor)
	c := dialCursor(g, cursor)
	rc, n := readReplayComplete(t, c, s, arrive)
	want := 239 + 250
	if n != want || rc.TotalReplayed != want || rc.Capped {
		t.Fatalf("replay: %d records before replay_complete %+v, want %d", n, rc, want)
	}
	h1 := getHealth(t, g)
	if kh := tierHits(t, g, "kafka"); kh <= kafka0 {
		t.Errorf("kafka tier hits did not grow: %v → %v", kafka0, kh)
	}
	if h1.ReplayBuffer.RedisHits != h0.ReplayBuffer.RedisHits {
		t.Errorf("redis served pages after its keys were deleted: %d → %d", h0.ReplayBuffer.RedisHits, h1.ReplayBuffer.RedisHits)
	}
	t.Logf("kafka tier pages %v, memory hits %d", tierHits(t, g, "kafka")-kafka0, h1.ReplayBuffer.MemoryHits-h0.ReplayBuffer.MemoryHits)

	l.produce(t, k, topic, 10, 0, 1)
	readExactTo(t, c, s, l.last(), arrive)
}

// TestReplayStaleAfterRetention: records deleted from Kafka (as retention
// does) that neither memory nor Redis hold are reported exactly —
// cursor_stale, then gap{cursor+1 .. logStart-1, retention} — then the
// replay continues from the log start over all three tiers without another
// hole: Kafka 300..811 (one deep read page of 512), Redis 812..949 (it holds
// the newest 200), memory 950..999 (the newest 50). A cursor inside Kafka's
// retention is not stale and gets the same records.
func TestReplayStaleAfterRetention(t *testing.T) {
	k, topic := kafkaEnv(t, 1)
	r := testenv.Redis(t)
	g := startGateway(t, redisEnv(k, topic, r.URL, map[string]string{
		"REPLAY_BUFFER_MEMORY_SIZE": "50", "REDIS_MAX_SEQUENCES": "200"}))
	ns := namespaceOf(t, g)
	cleanupRedisKeys(t, r.Client, ns)
	l := newProduced()
	l.produce(t, k, topic, 1000, 0)
	waitHeads(t, g, l.last(), arrive)
	waitRedis(t, r.Client, ns, l.last(), arrive)
	if n, _ := redisLen(r.Client, ns, 0); n != 200 {
		t.Fatalf("redis holds %d records of p0, want 200 (REDIS_MAX_SEQUENCES)", n)
	}
	const logStart = 300
	k.DeleteRecords(t, topic, 0, logStart)
	if start, _ := k.Offsets(t, topic, 0); start != logStart {
		t.Fatalf("log start %d after DeleteRecords, want %d", start, logStart)
	}
	tiers0 := map[string]float64{}
	for _, tier := range []string{"memory", "redis", "kafka"} {
		tiers0[tier] = tierHits(t, g, tier)
	}

	const cursor = 99
	s := newExact(l, map[int32]int64{0: cursor})
	c := dialCursor(g, map[int32]int64{0: cursor})
	rc := readStaleReplay(t, c, s, cursor, logStart, "critical")
	if s.n != 700 || rc.TotalReplayed != 700 || rc.LastOffsetsByPartition[0] != 999 {
		t.Fatalf("after the gap: %d records, replay_complete %+v; want 300..999", s.n, rc)
	}
	for _, tier := range []string{"memory", "redis", "kafka"} {
		if h := tierHits(t, g, tier); h <= tiers0[tier] {
			t.Errorf("tier %s served nothing of 300..999 (hits %v → %v)", tier, tiers0[tier], h)
		}
	}

	// A cursor Kafka still covers is not stale.
	s2 := newExact(l, map[int32]int64{0: 310})
	c2 := dialCursor(g, map[int32]int64{0: 310})
	rc2, n2 := readReplayComplete(t, c2, s2, arrive)
	if n2 != 689 || rc2.TotalReplayed != 689 || rc2.LastOffsetsByPartition[0] != 999 {
		t.Fatalf("resume from 310: %d records, replay_complete %+v; want 311..999", n2, rc2)
	}

	l.produce(t, k, topic, 10, 0)
	last := l.last()
	readExactTo(t, c, s, last, arrive)
	readExactTo(t, c2, s2, maps.Clone(last), arrive)
}
