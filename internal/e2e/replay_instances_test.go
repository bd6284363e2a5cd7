package e2e

import (
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// TestReplayInstanceSwitch: two gateways (different INSTANCE_IDs) on the
// same topic and Redis, as behind a load balancer. A client reads from A
// while records keep arriving, drops its connection, and resumes on B with
// its cursor: the records it gets from A and then B are every produced
// record exactly once — those produced while it was switching included.
func TestReplayInstanceSwitch(t *testing.T) {
	k, topic := kafkaEnv(t, 2)
	r := testenv.Redis(t)
	env := redisEnv(k, topic, r.URL, nil)
	a := startGateway(t, env)
	b := startGateway(t, env)
	if a.env["INSTANCE_ID"] == b.env["INSTANCE_ID"] {
		t.Fatal("both gateways got the same INSTANCE_ID")
	}
	ns := namespaceOf(t, a)
	cleanupRedisKeys(t, r.Client, ns)
	if nsB := namespaceOf(t, b); nsB != ns {
		t.Fatalf("instances disagree on the resume namespace: %s vs %s", ns, nsB)
	}
	l := newProduced()
	l.produce(t, k, topic, 50, 0, 1)
	pr := startProducer(t, k, topic, l, 2, 2, 10*time.Millisecond)

	s := newExact(l, cursorAll(2, -1))
	ca := dialCursor(a, cursorAll(2, -1))
	if err := readExact(ca, s, arrive, func(wsclient.Message) (bool, error) { return s.n >= 300, nil }); err != nil {
		t.Fatalf("on A: %v", err)
	}
	ca.CloseNow()
	fromA := s.n
	cursor := s.cursor()
	// Records keep being produced while the client switches.
	testenv.WaitFor(t, arrive, func() bool {
		last := l.last()
		return last[0] >= cursor[0]+50 && last[1] >= cursor[1]+50
	}, "records produced during the switch")

	cb := dialCursor(b, cursor)
	rc, n := readReplayComplete(t, cb, s, arrive)
	if rc.Capped || rc.TotalReplayed != n {
		t.Fatalf("on B: replay_complete %+v after %d records", rc, n)
	}
	if err := readExact(cb, s, arrive, func(wsclient.Message) (bool, error) { return s.n >= fromA+n+100, nil }); err != nil {
		t.Fatalf("live on B: %v", err)
	}
	if err := pr.Stop(); err != nil {
		t.Fatal(err)
	}
	readExactTo(t, cb, s, l.last(), arrive)
	if s.n != l.total() {
		t.Fatalf("client applied %d records, %d were produced", s.n, l.total())
	}
	t.Logf("%d records from A, %d replayed by B (cursor %v), %d in total", fromA, n, cursor, s.n)
}
