package e2e

import (
	"testing"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// TestReplayCappedContinuesAsCatchup: a resume of 12,000 records (4
// partitions × 3,000, served from memory, Redis and Kafka as they hold
// them) with the default REPLAY_MAX_TOTAL of 10,000 ends its replay part
// with replay_complete{capped:true, totalReplayed:10000} whose
// lastOffsetsByPartition are exactly the last offsets sent; the remaining
// 2,000 follow as catch-up without a new resume — 12,000 records in all,
// no duplicate, no hole. A second client resuming from that
// replay_complete's offsets gets exactly the remaining 2,000.
func TestReplayCappedContinuesAsCatchup(t *testing.T) {
	k, topic := kafkaEnv(t, 4)
	r := testenv.Redis(t)
	g := startGateway(t, redisEnv(k, topic, r.URL, nil))
	cleanupRedisKeys(t, r.Client, namespaceOf(t, g))
	l := newProduced()
	l.produce(t, k, topic, 3000, 0, 1, 2, 3)
	last := l.last()
	waitHeads(t, g, last, arrive)

	s := newExact(l, cursorAll(4, -1))
	c := dialCursor(g, cursorAll(4, -1))
	rc, n := readReplayComplete(t, c, s, arrive)
	if !rc.Capped || rc.TotalReplayed != 10000 || n != 10000 || rc.Mode != "cursor" {
		t.Fatalf("replay part: %d records, replay_complete capped=%v totalReplayed=%d mode=%s; want 10000, capped",
			n, rc.Capped, rc.TotalReplayed, rc.Mode)
	}
	atCap := s.cursor()
	for p := range int32(4) {
		got, listed := rc.LastOffsetsByPartition[p]
		if want := atCap[p]; (listed || want >= 0) && int64(got) != want {
			t.Errorf("replay_complete lastOffsetsByPartition[%d] = %d (listed %v), last offset sent %d", p, got, listed, want)
		}
	}
	t.Logf("capped at %v", atCap)

	readExactTo(t, c, s, last, arrive) // the remainder, no new resume
	if s.n != 12000 {
		t.Fatalf("got %d records, want exactly 12000", s.n)
	}

	s2 := newExact(l, atCap)
	c2 := dialCursor(g, atCap)
	rc2, n2 := readReplayComplete(t, c2, s2, arrive)
	if rc2.Capped || rc2.TotalReplayed != 2000 || n2 != 2000 || !s2.reached(last) {
		t.Fatalf("second client: %d records, replay_complete %+v; want exactly the remaining 2000", n2, rc2)
	}
	h := getHealth(t, g)
	t.Logf("tier pages: memory %v, redis %v, kafka %v; redis misses %d",
		tierHits(t, g, "memory"), tierHits(t, g, "redis"), tierHits(t, g, "kafka"), h.ReplayBuffer.RedisMisses)
}

// TestReplayCappedRemainderNotSlowClient: the remainder of a capped replay is
// owed to the client (docs/PROTOCOL.md §3.4: it "still follows as catch-up … never a
// hole, never a stall"; the dashboard does not resume again on capped), so a
// client reading at full speed must not be cut off as a slow client when
// that remainder exceeds SLOW_CLIENT_DISCONNECT_THRESHOLD (1000) and lies
// beyond the memory tier. One partition of 12,000 records, memory holding
// the newest 1,000: the replay caps at 9,999 and the 2,000 that follow come
// from Redis — all of them, with no disconnect frame.
func TestReplayCappedRemainderNotSlowClient(t *testing.T) {
	k, topic := kafkaEnv(t, 1)
	r := testenv.Redis(t)
	g := startGateway(t, redisEnv(k, topic, r.URL, nil))
	cleanupRedisKeys(t, r.Client, namespaceOf(t, g))
	l := newProduced()
	l.produce(t, k, topic, 12000, 0)
	last := l.last()
	waitHeads(t, g, last, arrive)

	s := newExact(l, cursorAll(1, -1))
	c := dialCursor(g, cursorAll(1, -1))
	rc, n := readReplayComplete(t, c, s, arrive)
	if !rc.Capped || n != 10000 || rc.LastOffsetsByPartition[0] != 9999 {
		t.Fatalf("replay part: %d records, replay_complete %+v; want 0..9999, capped", n, rc)
	}
	readExactTo(t, c, s, last, arrive) // fails on a disconnect frame
	if s.n != 12000 {
		t.Fatalf("got %d records, want 12000", s.n)
	}
	// Still connected and live afterwards.
	l.produce(t, k, topic, 5, 0)
	readExactTo(t, c, s, l.last(), arrive)
}
