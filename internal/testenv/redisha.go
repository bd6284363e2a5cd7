package testenv

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisCluster is a private three-master Redis Cluster owned by one test,
// started by `scripts/redis-ha.sh cluster start` on free ports.
type RedisCluster struct {
	// Addrs are the masters' host:port, the REDIS_CLUSTER_ADDRS value.
	Addrs []string
	// Client is a cluster client for Addrs, closed when the test ends.
	Client *redis.ClusterClient
	svc    *service
}

// StartRedisCluster starts a three-master Redis Cluster (slots spread by
// redis-cli --cluster create, no replicas) and stops it when t ends. Without
// redis-server the test is skipped (or fails under DASHSTREAM_INTEGRATION=1),
// as with -short and no DASHSTREAM_INTEGRATION.
func StartRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	s := newHAService(t, "cluster")
	dir := t.TempDir() // before the stop below: cleanups run last-in first-out
	t.Cleanup(func() { s.stop(t) })
	ports := startWithFreePorts(t, s, 6, func(ports []int) []string {
		env := haEnv(s, dir, "REDIS_CLUSTER_PORTS", ports[:3])
		return append(env, "REDIS_CLUSTER_BUS_PORTS="+strings.Join(itoas(ports[3:]), " "))
	})
	ports = ports[:3]
	c := &RedisCluster{Addrs: loopback(ports), svc: s}
	c.Client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Client.Close() })
	ctx, cancel := opContext(0)
	defer cancel()
	checkErr(t, c.Client.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		return m.Ping(ctx).Err()
	}), "redis cluster at %v unreachable", c.Addrs)
	return c
}

// Kill ends every node with SIGKILL.
func (c *RedisCluster) Kill(t testing.TB) { t.Helper(); c.svc.kill(t) }

// MasterOf returns the node ID of the master that serves key's hash slot.
func (c *RedisCluster) MasterOf(t testing.TB, key string) string {
	t.Helper()
	ctx, cancel := opContext(0)
	defer cancel()
	slot, err := c.Client.ClusterKeySlot(ctx, key).Result()
	checkErr(t, err, "cluster keyslot %q", key)
	shards, err := c.Client.ClusterShards(ctx).Result()
	checkErr(t, err, "cluster shards")
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if r.Start <= slot && slot <= r.End && len(sh.Nodes) > 0 {
				return sh.Nodes[0].ID
			}
		}
	}
	t.Fatalf("testenv: slot %d of %q has no master", slot, key)
	return ""
}

// RedisSentinel is a private Redis master, its replica and one Sentinel
// (quorum 1) owned by one test, started by
// `scripts/redis-ha.sh sentinel start` on free ports.
type RedisSentinel struct {
	// SentinelAddrs is the sentinel's host:port, the REDIS_SENTINEL_ADDRS value.
	SentinelAddrs []string
	// MasterName is the monitored master's name (REDIS_SENTINEL_MASTER).
	MasterName string
	// MasterAddr and ReplicaAddr are the nodes as started.
	MasterAddr, ReplicaAddr string
	// Client follows the master through failovers, closed when the test ends.
	Client *redis.Client
	svc    *service
}

// StartRedisSentinel starts the Sentinel setup and stops it when t ends;
// skipped like StartRedisCluster. The sentinel deems a silent master down
// after downAfter (zero means 1 s) and then promotes the replica.
func StartRedisSentinel(t testing.TB, downAfter time.Duration) *RedisSentinel {
	t.Helper()
	s := newHAService(t, "sentinel")
	dir := t.TempDir() // before the stop below: cleanups run last-in first-out
	t.Cleanup(func() { s.stop(t) })
	ports := startWithFreePorts(t, s, 3, func(ports []int) []string {
		env := haEnv(s, dir, "REDIS_SENTINEL_PORTS", ports)
		return append(env, "REDIS_SENTINEL_DOWN_MS="+strconv.FormatInt(max(downAfter, time.Second).Milliseconds(), 10))
	})
	addrs := loopback(ports)
	r := &RedisSentinel{SentinelAddrs: addrs[2:], MasterName: "dashstream", MasterAddr: addrs[0], ReplicaAddr: addrs[1], svc: s}
	r.Client = redis.NewFailoverClient(&redis.FailoverOptions{MasterName: r.MasterName,
		SentinelAddrs: r.SentinelAddrs, ContextTimeoutEnabled: true})
	t.Cleanup(func() { r.Client.Close() })
	ctx, cancel := opContext(0)
	defer cancel()
	checkErr(t, r.Client.Ping(ctx).Err(), "redis master %s via sentinel unreachable", r.MasterName)
	return r
}

// KillMaster SIGKILLs the current master (the one the sentinel names) and
// returns its address. The sentinel promotes the replica about a second
// later.
func (r *RedisSentinel) KillMaster(t testing.TB) string {
	t.Helper()
	out, err := r.svc.run("kill", time.Minute)
	checkErr(t, err, "kill redis master")
	for line := range strings.Lines(out) {
		if addr, ok := strings.CutPrefix(strings.TrimSpace(line), "KILLED_MASTER="); ok {
			return addr
		}
	}
	t.Fatalf("testenv: redis-ha.sh sentinel kill printed no KILLED_MASTER: %q", out)
	return ""
}

// MasterNow asks the sentinel which address is the master now.
func (r *RedisSentinel) MasterNow(ctx context.Context) (string, error) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: r.SentinelAddrs[0]})
	defer sc.Close()
	a, err := sc.GetMasterAddrByName(ctx, r.MasterName).Result()
	if err != nil {
		return "", err
	}
	return strings.Join(a, ":"), nil
}

func newHAService(t testing.TB, mode string) *service {
	t.Helper()
	s := newService(t, "redis-ha", ServerConfig{}, 30*time.Second)
	s.mode = []string{mode}
	return s
}

func haEnv(s *service, dir, portsVar string, ports []int) []string {
	return []string{
		portsVar + "=" + strings.Join(itoas(ports), " "),
		"REDIS_HA_STATE_DIR=" + dir,
		"REDIS_START_TIMEOUT=" + secs(s.startTimeout),
		"REDIS_STOP_TIMEOUT=" + secs(s.stopTimeout),
		"REDIS_WATCH_PID=" + strconv.Itoa(os.Getpid()),
	}
}

func loopback(ports []int) []string {
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = "127.0.0.1:" + strconv.Itoa(p)
	}
	return out
}

func itoas(ns []int) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = strconv.Itoa(n)
	}
	return out
}
