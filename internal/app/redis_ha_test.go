package app

// Redis Cluster and Sentinel, end to end: the gateway's Redis tier on a real
// three-master cluster and on a real Sentinel setup whose master is killed
// mid-stream (scripts/redis-ha.sh through internal/testenv), real Kafka.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// haNewest is the newest offset of partition p's stream (-1 when empty or
// unreachable); rc may be a cluster or a failover client.
func haNewest(rc redis.Cmdable, ns string, p int32) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	top, err := rc.XRevRangeN(ctx, rpLogKey(ns, p), "+", "-", 1).Result()
	if err != nil || len(top) == 0 {
		return -1
	}
	var o int64
	if _, err := fmt.Sscanf(top[0].ID, "%d-", &o); err != nil {
		return -1
	}
	return o
}

// haWaitRedis waits until Redis holds every partition up to ends-1.
func haWaitRedis(t testing.TB, rc redis.Cmdable, ns string, ends map[int32]int64) {
	t.Helper()
	testenv.WaitFor(t, rpArrive, func() bool {
		for p, e := range ends {
			if haNewest(rc, ns, p) < e-1 {
				return false
			}
		}
		return true
	}, fmt.Sprintf("redis holds %v", ends))
}

// haTiers is a snapshot of the replay hits per tier (/metrics).
type haTiers struct{ memory, redis, kafka float64 }

func haTierSnapshot(t testing.TB, g *gateway) haTiers {
	t.Helper()
	return haTiers{rpMetric(t, g, "replay_buffer_memory_hits_total"), rpMetric(t, g, "replay_buffer_redis_hits_total"),
		rpTierHits(t, g, "kafka")}
}

func (a haTiers) since(b haTiers) haTiers {
	return haTiers{a.memory - b.memory, a.redis - b.redis, a.kafka - b.kafka}
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
	ns := rpNamespace(t, g)
	l := rpNewLog()
	l.produce(t, k, topic, 150, 0, 1, 2, 3)
	rpWaitHeads(t, g, l.ends(), rpArrive)
	haWaitRedis(t, rc.Client, ns, l.ends())
	masters := map[string]bool{}
	for p := range int32(4) {
		slot, err := rc.Client.ClusterKeySlot(bg(t), rpLogKey(ns, p)).Result()
		if err != nil {
			t.Fatal(err)
		}
		masters[haMasterOf(t, rc.Client, slot)] = true
	}

	g.restart()
	if h := rpGetHealth(t, g); h.ReplayBuffer.MemoryBufferSize != 0 {
		t.Fatalf("restarted gateway re-read history: %d records in memory", h.ReplayBuffer.MemoryBufferSize)
	}
	l.produce(t, k, topic, 5, 0, 1, 2, 3)
	rpWaitHeads(t, g, l.ends(), rpArrive)
	before := haTierSnapshot(t, g)

	cursor := map[int32]int64{0: 10, 1: -1, 2: 100, 3: 149}
	s := rpNewStream(l, cursor)
	c := rpDial(g, cursor)
	rc0, n := rpReplayComplete(t, c, s, rpArrive)
	want := (154 - 10) + 155 + (154 - 100) + (154 - 149)
	if n != want || rc0.TotalReplayed != want {
		t.Fatalf("replay: %d records before replay_complete %+v, want %d", n, rc0, want)
	}
	d := haTierSnapshot(t, g).since(before)
	if d.redis == 0 || d.kafka != 0 {
		t.Errorf("tiers after a restart: redis hits %v (want > 0), kafka deep reads %v (want 0: the cluster holds it all)", d.redis, d.kafka)
	}
	l.produce(t, k, topic, 10, 0, 1, 2, 3)
	rpReadUntilEnds(t, c, s, l.ends(), rpArrive)
	t.Logf("cluster: 4 partitions' logs on %d of %d masters; resume after restart: %d records exactly once, hits memory %v redis %v kafka %v",
		len(masters), len(rc.Addrs), s.n, d.memory, d.redis, d.kafka)
}

func haMasterOf(t testing.TB, cc *redis.ClusterClient, slot int64) string {
	t.Helper()
	slots, err := cc.ClusterSlots(bg(t)).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) {
			return s.Nodes[0].Addr
		}
	}
	t.Fatalf("slot %d has no master", slot)
	return ""
}

func bg(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
