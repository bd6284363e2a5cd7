package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// TestReplayRedisOutageDuringTraffic: Redis (a private instance) is killed
// while records flow and a client reads live. Live streaming goes on (the
// client keeps receiving, exactly), /health turns degraded with a Redis
// alert, /readyz stays 200. When Redis is back the circuit breaker closes:
// the alert clears and writes resume (the namespace's keys appear again in
// the restarted, empty Redis and follow the new records).
func TestReplayRedisOutageDuringTraffic(t *testing.T) {
	k, topic := kafkaEnv(t, 2)
	srv := testenv.StartRedis(t)
	g := startGateway(t, redisEnv(k, topic, srv.URL, nil))
	ns := namespaceOf(t, g)
	l := newProduced()
	pr := startProducer(t, k, topic, l, 2, 2, 20*time.Millisecond)
	s := newExact(l, cursorAll(2, -1))
	rd := startReader(t, dialCursor(g, cursorAll(2, -1)), s)

	redisAlert := func(h healthDoc) bool { return strings.Contains(strings.ToLower(h.Alert), "redis") }
	testenv.WaitFor(t, arrive, func() bool {
		h := getHealth(t, g)
		return len(redisKeys(t, srv.Client, ns)) > 0 && h.ReplayBuffer.RedisEnabled && !redisAlert(h)
	}, "redis tier written and healthy")
	rd.waitCount(t, 100, arrive)

	srv.Kill(t)
	killed := time.Now()
	var down healthDoc
	testenv.WaitFor(t, arrive, func() bool {
		down = getHealth(t, g)
		return down.Status == "degraded" && redisAlert(down)
	}, "/health degraded with a redis alert")
	detect := time.Since(killed)
	if code, body := g.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz %d while only Redis is down: %s", code, body)
	}
	n := rd.n.Load()
	rd.waitCount(t, n+200, arrive) // live streaming goes on without Redis
	if code, _ := g.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz %d while only Redis is down", code)
	}

	srv.Start(t)
	restarted := time.Now()
	testenv.WaitFor(t, arrive, func() bool { return !redisAlert(getHealth(t, g)) }, "redis alert cleared")
	recovered := time.Since(restarted)
	since := l.last()
	testenv.WaitFor(t, arrive, func() bool {
		for p, o := range since {
			if _, newest := redisLen(srv.Client, ns, p); newest <= o {
				return false
			}
		}
		return true
	}, "writes to the restarted Redis follow the new records")

	if err := pr.Stop(); err != nil {
		t.Fatal(err)
	}
	s = rd.finish(t, l.last(), arrive)
	if s.n != l.total() {
		t.Fatalf("client applied %d records, %d were produced", s.n, l.total())
	}
	up := getHealth(t, g)
	t.Logf("outage detected in %v (alert %q); recovered %v after restart; %d records exactly once; write failures %d, dropped %d; status now %s",
		detect.Round(time.Millisecond), down.Alert, recovered.Round(time.Millisecond), s.n,
		up.ReplayBuffer.RedisWriteFailures, up.ReplayBuffer.RedisWriteDropped, up.Status)
}
