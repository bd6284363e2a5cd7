package e2e

// A gap needs proof (docs/PROTOCOL.md §3.4): against real Kafka, a resume
// whose records only Kafka holds ends with REPLAY_UNAVAILABLE and 1013 while
// the broker is down — never cursor_stale or a gap — and gets every record
// once it is back; a cursor below a log start that has just moved gets
// cursor_stale first, then the exact gap, then the records.

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// TestFaultKafkaDownNoGap: the gateway's memory tier holds the newest 50
// of 300 records; the private broker is killed. A client resuming from
// offset 10 gets error REPLAY_UNAVAILABLE and close 1013, no cursor_stale,
// no gap, no record; a client whose cursor memory covers is served as
// usual. Once the broker is back the first client resumes from the same
// cursor and gets every record exactly once, then live ones.
func TestFaultKafkaDownNoGap(t *testing.T) {
	srv := testenv.StartKafka(t)
	k := srv.KafkaEnv
	topic := k.Topic(t, 1)
	g := startGateway(t, redisEnv(k, topic, "", map[string]string{"REPLAY_BUFFER_MEMORY_SIZE": "50"}))
	l := newProduced()
	l.produce(t, k, topic, 300, 0)
	waitHeads(t, g, l.last(), arrive)

	srv.Kill(t)
	const cursor = 10
	start := time.Now()
	ctrls, err := readToClose(dialCursor(g, map[int32]int64{0: cursor}), 60*time.Second)
	took := time.Since(start)
	var ce *wsclient.CloseError
	if !errors.As(err, &ce) || ce.Code != 1013 {
		t.Fatalf("resume while Kafka is down ended with %v after %v, want close 1013 (controls %v)", err, took, typesOf(ctrls))
	}
	if len(ctrls) != 1 || ctrls[0].Type != "error" || errorCode(t, ctrls[0]) != "REPLAY_UNAVAILABLE" {
		t.Fatalf("controls %v, want only error REPLAY_UNAVAILABLE (no cursor_stale, no gap)", typesOf(ctrls))
	}
	t.Logf("resume from %d with Kafka down: REPLAY_UNAVAILABLE and 1013 after %v", cursor, took.Round(time.Millisecond))

	// Memory covers this cursor: no Kafka needed.
	mem := newExact(l, map[int32]int64{0: 270})
	if rc, n := readReplayComplete(t, dialCursor(g, map[int32]int64{0: 270}), mem, arrive); n != 29 || rc.Capped {
		t.Fatalf("resume from 270 with Kafka down: %d records, replay_complete %+v; want 271..299", n, rc)
	}

	srv.Start(t)
	l.produce(t, k, topic, 5, 0) // the gateway consumes again: Kafka is reachable
	waitHeads(t, g, l.last(), arrive)
	s := newExact(l, map[int32]int64{0: cursor})
	c := dialCursor(g, map[int32]int64{0: cursor})
	rc, n := readReplayComplete(t, c, s, arrive) // fails on any gap, cursor_stale or error
	if want := 305 - cursor - 1; n != want || rc.TotalReplayed != want || rc.LastOffsetsByPartition[0] != 304 {
		t.Fatalf("resume from %d after the restart: %d records, replay_complete %+v; want %d up to 304", cursor, n, rc, want)
	}
	l.produce(t, k, topic, 10, 0)
	readExactTo(t, c, s, l.last(), arrive)
}

// TestFaultLogStartMovedStale: right after DeleteRecords moves the log
// start to 200 (while the gateway still caches the old log start from a
// resume a moment before), a resume from 150 gets cursor_stale{requested
// 150, oldest 200}, then gap 151..199, then 200..399 exactly, then
// replay_complete, then live records.
func TestFaultLogStartMovedStale(t *testing.T) {
	k, topic := kafkaEnv(t, 1)
	g := startGateway(t, redisEnv(k, topic, "", map[string]string{"REPLAY_BUFFER_MEMORY_SIZE": "50"}))
	l := newProduced()
	l.produce(t, k, topic, 400, 0)
	waitHeads(t, g, l.last(), arrive)

	// A resume Kafka serves: the gateway now caches log start 0.
	warm := newExact(l, map[int32]int64{0: 100})
	if _, n := readReplayComplete(t, dialCursor(g, map[int32]int64{0: 100}), warm, arrive); n != 299 {
		t.Fatalf("warm-up resume from 100: %d records, want 299", n)
	}
	const logStart, cursor = 200, 150
	k.DeleteRecords(t, topic, 0, logStart)
	s := newExact(l, map[int32]int64{0: cursor})
	c := dialCursor(g, map[int32]int64{0: cursor})
	rc := readStaleReplay(t, c, s, cursor, logStart, "warning") // 49 records
	if s.n != 200 || rc.TotalReplayed != 200 || rc.LastOffsetsByPartition[0] != 399 {
		t.Fatalf("after the gap: %d records, replay_complete %+v; want 200..399", s.n, rc)
	}
	l.produce(t, k, topic, 10, 0)
	readExactTo(t, c, s, l.last(), arrive)
}

// readToClose reads until the connection ends and returns the control
// frames it got, failing on any record, and the error that ended it.
func readToClose(c *wsclient.Conn, timeout time.Duration) ([]wsclient.Control, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var ctrls []wsclient.Control
	for {
		m, err := c.Next(ctx)
		if err != nil {
			return ctrls, err
		}
		if m.Kind == wsclient.KindRecord {
			return ctrls, fmt.Errorf("record p%d@%d delivered", m.Record.Partition, m.Record.Offset)
		}
		ctrls = append(ctrls, m.Control)
	}
}

func errorCode(t *testing.T, c wsclient.Control) string {
	t.Helper()
	var e struct {
		Code string `json:"code"`
	}
	if err := c.Decode(&e); err != nil {
		t.Fatalf("error frame %s: %v", c.Raw, err)
	}
	return e.Code
}

func typesOf(ctrls []wsclient.Control) []string {
	out := make([]string, len(ctrls))
	for i, c := range ctrls {
		out[i] = string(c.Raw)
	}
	return out
}
