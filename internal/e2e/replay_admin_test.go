package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// TestReplayAdminClear: POST /api/admin/replay/clear is refused (403) while
// ADMIN_TOKEN is unset, whatever the request carries. With ADMIN_TOKEN set,
// a missing token is 401, a wrong one 403, and the right bearer token
// clears the store: the namespace's Redis keys are gone. Clearing the
// replay window loses nothing Kafka still holds: a client resuming from an
// old cursor afterwards still gets every record (deep reads), with no gap,
// and new records are written to Redis again.
func TestReplayAdminClear(t *testing.T) {
	const path = "/api/admin/replay/clear"
	k, topic := kafkaEnv(t, 2)
	r := testenv.Redis(t)

	open := startGateway(t, redisEnv(k, topic, r.URL, nil))
	ns := namespaceOf(t, open)
	cleanupRedisKeys(t, r.Client, ns)
	l := newProduced()
	l.produce(t, k, topic, 100, 0, 1)
	waitHeads(t, open, l.last(), arrive)
	waitRedis(t, r.Client, ns, l.last(), arrive)
	for _, token := range []string{"", "anything"} {
		if code, body := post(t, open, path, token); code != http.StatusForbidden {
			t.Fatalf("without ADMIN_TOKEN, POST %s (token %q): %d %s, want 403", path, token, code, body)
		}
	}
	keys := redisKeys(t, r.Client, ns)
	if len(keys) == 0 {
		t.Fatal("refused clear removed the Redis keys")
	}
	if err := open.stop(); err != nil { // its writes are drained: no late write re-creates keys
		t.Fatal(err)
	}

	const token = "admin-secret-4e1f"
	g := startGateway(t, redisEnv(k, topic, r.URL, map[string]string{"ADMIN_TOKEN": token}))
	waitHeads(t, g, l.last(), arrive)
	for _, c := range []struct {
		token string
		want  []int
	}{{"", []int{http.StatusUnauthorized}}, {"wrong-token", []int{http.StatusUnauthorized, http.StatusForbidden}}} {
		code, body := post(t, g, path, c.token)
		if code != c.want[0] && (len(c.want) == 1 || code != c.want[1]) {
			t.Fatalf("POST %s with token %q: %d %s, want %v", path, c.token, code, body, c.want)
		}
	}
	if got := redisKeys(t, r.Client, ns); len(got) != len(keys) {
		t.Fatalf("rejected requests changed the Redis keys: %v → %v", keys, got)
	}
	testenv.WaitFor(t, arrive, func() bool { return !strings.Contains(getHealth(t, g).Alert, "redis") },
		"redis tier connected")
	if code, body := post(t, g, path, token); code != http.StatusOK {
		t.Fatalf("POST %s with the admin token: %d %s, want 200", path, code, body)
	}
	if got := redisKeys(t, r.Client, ns); len(got) != 0 {
		t.Fatalf("keys left after the admin clear: %v", got)
	}

	// Nothing Kafka holds is lost: an old cursor still gets every record.
	s := newExact(l, map[int32]int64{0: 9, 1: -1})
	c := dialCursor(g, map[int32]int64{0: 9, 1: -1})
	rc, n := readReplayComplete(t, c, s, arrive)
	if n != 90+100 || rc.TotalReplayed != n {
		t.Fatalf("resume after clear: %d records, replay_complete %+v; want 190", n, rc)
	}
	l.produce(t, k, topic, 5, 0, 1)
	readExactTo(t, c, s, l.last(), arrive)
	waitRedis(t, r.Client, ns, l.last(), arrive) // writes go on after the clear
}
