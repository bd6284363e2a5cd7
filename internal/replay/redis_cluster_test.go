//go:build linux

package replay_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/replay/replaytest"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// startClusterNode runs a private one-node Redis Cluster (cluster mode on,
// every slot assigned to the node) and returns a cluster client for it. In
// cluster mode Redis refuses any command whose keys span slots (CROSSSLOT),
// which is what this proves the tier never sends.
func startClusterNode(t *testing.T) *redis.ClusterClient {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if testenv.Integration() {
			t.Fatal("redis-server not installed")
		}
		t.Skip("redis-server not installed")
	}
	dir, port := t.TempDir(), strconv.Itoa(testenv.FreePort(t))
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--cluster-enabled", "yes",
		"--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--dir", dir,
		"--save", "", "--appendonly", "no", "--loglevel", "warning")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no orphan if the test binary dies
	if err := cmd.Start(); err != nil {
		t.Fatalf("start cluster node: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	node := newClient(t, "redis://127.0.0.1:"+port)
	testenv.WaitFor(t, 10*time.Second, func() bool { return node.Ping(context.Background()).Err() == nil }, "cluster node up")
	if err := node.Do(bg(t), "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("assign slots: %v", err)
	}
	testenv.WaitFor(t, 10*time.Second, func() bool {
		return strings.Contains(node.ClusterInfo(context.Background()).Val(), "cluster_state:ok")
	}, "cluster state ok")
	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{"127.0.0.1:" + port}, ContextTimeoutEnabled: true, DialTimeout: 250 * time.Millisecond,
	})
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestRedisClusterConformance(t *testing.T) {
	cc := startClusterNode(t)
	n := 0
	replaytest.Run(t, func(t *testing.T) replay.Store {
		n++
		cfg := replay.RedisConfig{Namespace: "cluster-" + strconv.Itoa(n), TTL: conformanceTTL, MaxPerPartition: 64}
		return startRedis(t, cc, cfg, true)
	}, conformanceOptions())
}
