package e2e

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// TestReplayRestartAfterSIGKILL: `dashstream serve` as a child process is
// killed with SIGKILL in the middle of a stream and started again (same
// INSTANCE_ID). The restarted instance re-reads from its last saved
// progress (at-least-once consumption, saved every 0.2 s); a client that
// resumes with its cursor still gets every record exactly once: nothing
// lost in the crash, nothing duplicated by the re-read.
func TestReplayRestartAfterSIGKILL(t *testing.T) {
	k, topic := kafkaEnv(t, 2)
	r := testenv.Redis(t)
	bin := buildBinary(t, t.TempDir())
	instance := "sigkill-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	gw := newChild(t, bin, map[string]string{
		"KAFKA_BROKERS": strings.Join(k.Brokers, ","), "KAFKA_TOPIC": topic, "REDIS_URL": r.URL,
		"INSTANCE_ID": instance, "KAFKA_PROGRESS_INTERVAL_SECS": "0.2", "KAFKA_AUTO_OFFSET_RESET": "earliest",
		"LOG_LEVEL": "warn", "EXPECTED_SCHEMAS_PATH": filepath.Join(t.TempDir(), "schemas.json"),
	})
	l := newProduced()
	pr := startProducer(t, k, topic, l, 2, 2, 10*time.Millisecond)
	gw.start()

	dial := func(cursor map[int32]int64) *wsclient.Conn {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := wsclient.Dial(ctx, gw.ws(), wsclient.Options{
			Resume: &wsclient.Resume{From: wsclient.FromCursor, Offsets: cursor}})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
	s := newExact(l, cursorAll(2, -1))
	c1 := dial(cursorAll(2, -1))
	if err := readExact(c1, s, arrive, func(wsclient.Message) (bool, error) { return s.n >= 400, nil }); err != nil {
		t.Fatal(err)
	}
	gw.kill()
	// Whatever reached the client before the crash is applied too.
	err := readExact(c1, s, arrive, func(wsclient.Message) (bool, error) { return false, nil })
	if errors.Is(err, errNotExact) {
		t.Fatal(err)
	}
	cursor, atKill := s.cursor(), s.n
	saved := savedProgress(t, k, "websocket-server-v4."+instance, topic)
	t.Logf("killed: client applied %d records, cursor %v; saved progress (next offsets) %v; last produced %v",
		atKill, cursor, saved, l.last())

	gw.start()
	c2 := dial(cursor)
	rc, n := readReplayComplete(t, c2, s, arrive)
	if rc.TotalReplayed != n {
		t.Fatalf("replay_complete %+v after %d records", rc, n)
	}
	if err := readExact(c2, s, arrive, func(wsclient.Message) (bool, error) { return s.n >= atKill+n+200, nil }); err != nil {
		t.Fatal(err)
	}
	if err := pr.Stop(); err != nil {
		t.Fatal(err)
	}
	readExactTo(t, c2, s, l.last(), arrive)
	if s.n != l.total() {
		t.Fatalf("client applied %d records, %d were produced", s.n, l.total())
	}
	t.Logf("after restart: %d replayed, %d in total, all exactly once", n, s.n)
}

// savedProgress reads an instance's saved next offsets.
func savedProgress(t testing.TB, k *testenv.KafkaEnv, group, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := k.Admin.FetchOffsets(ctx, group)
	if err != nil {
		t.Logf("fetch offsets of %s: %v", group, err)
		return nil
	}
	out := map[int32]int64{}
	for p, o := range resp[topic] {
		out[p] = o.At
	}
	return out
}
