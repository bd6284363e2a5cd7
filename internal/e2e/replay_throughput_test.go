package e2e

import (
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// TestReplayThroughputReport measures one client resuming over 10,000
// records (4 partitions × 2,500) served from each tier in turn — memory
// (REPLAY_BUFFER_MEMORY_SIZE 3000), Redis (after a restart emptied memory)
// and Kafka deep reads (after the Redis keys were deleted) — and logs
// records/s from dialing to replay_complete. It asserts only exactness and
// which tier served.
func TestReplayThroughputReport(t *testing.T) {
	k, topic := kafkaEnv(t, 4)
	r := testenv.Redis(t)
	g := startGateway(t, redisEnv(k, topic, r.URL, map[string]string{
		"REPLAY_BUFFER_MEMORY_SIZE": "3000", "REPLAY_MAX_TOTAL": "20000"}))
	ns := namespaceOf(t, g)
	cleanupRedisKeys(t, r.Client, ns)
	l := newProduced()
	l.produce(t, k, topic, 2500, 0, 1, 2, 3)
	waitHeads(t, g, l.last(), arrive)

	measure := func(tier string, want int) {
		t.Helper()
		hits := map[string]float64{}
		for _, tr := range []string{"memory", "redis", "kafka"} {
			hits[tr] = tierHits(t, g, tr)
		}
		s := newExact(l, cursorAll(4, -1))
		start := time.Now()
		c := dialCursor(g, cursorAll(4, -1))
		rc, n := readReplayComplete(t, c, s, arrive)
		took := time.Since(start)
		c.CloseNow()
		if n != want || rc.TotalReplayed != want || rc.Capped || !s.reached(l.last()) {
			t.Fatalf("%s: %d records, replay_complete %+v; want all %d", tier, n, rc, want)
		}
		pages := map[string]float64{}
		for _, tr := range []string{"memory", "redis", "kafka"} {
			pages[tr] = tierHits(t, g, tr) - hits[tr]
		}
		if pages[tier] == 0 {
			t.Fatalf("%s: the tier served nothing (pages %v)", tier, pages)
		}
		for _, other := range map[string][]string{"memory": {"redis", "kafka"}, "redis": {"kafka"}, "kafka": {"redis"}}[tier] {
			if pages[other] != 0 {
				t.Fatalf("%s: tier %s served pages too: %v", tier, other, pages)
			}
		}
		t.Logf("replay from %-6s: %5d records in %8v = %7.0f records/s (pages %v)",
			tier, n, took.Round(time.Millisecond), float64(n)/took.Seconds(), pages)
	}
	measure("memory", 10000)

	waitRedis(t, r.Client, ns, l.last(), arrive)
	g.restart() // same INSTANCE_ID: continues after its saved progress, memory empty
	l.produce(t, k, topic, 1, 0, 1, 2, 3)
	waitHeads(t, g, l.last(), arrive)
	measure("redis", 10004)

	waitRedis(t, r.Client, ns, l.last(), arrive)
	deleteRedisKeys(t, r.Client, ns)
	measure("kafka", 10004)
}
