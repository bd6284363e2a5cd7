package replay_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/replay/replaytest"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// TestRedisClusterConformance runs the shared suite against a real
// three-master Redis Cluster (scripts/redis-ha.sh). A cluster refuses any
// command or script whose keys span slots (CROSSSLOT) and redirects keys of
// another master's slots (MOVED), so this proves every call of the tier keeps
// to one hash slot and that partitions and threads spread over the masters.
func TestRedisClusterConformance(t *testing.T) {
	rc := testenv.StartRedisCluster(t)
	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: rc.Addrs, ContextTimeoutEnabled: true, DialTimeout: 250 * time.Millisecond,
	})
	t.Cleanup(func() { cc.Close() })
	n := 0
	replaytest.Run(t, func(t *testing.T) replay.Store {
		n++
		cfg := replay.RedisConfig{Namespace: "cluster-" + strconv.Itoa(n), TTL: conformanceTTL, MaxPerPartition: 64}
		return startRedis(t, cc, cfg, true)
	}, conformanceOptions())
	spread := map[string]bool{}
	for _, k := range []string{"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"} {
		spread[rc.MasterOf(t, "dashstream-replay:{cluster-1:"+k+"}:log")] = true
	}
	if len(spread) < 2 {
		t.Errorf("8 partitions' logs all on one master: the hash tags do not spread them")
	}
}
