package hub

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// TestCloseAllAndResetHeads: CloseAll closes every session — one live, one
// parked after a sweep, one still waiting for its first resume — with the
// code and reason given, and returns once their writers are done.
// ResetHeads forgets every head.
func TestCloseAllAndResetHeads(t *testing.T) {
	th := newTestHub(t, Config{ResumeWait: time.Hour}, replay.MemoryConfig{})
	th.publish(0, 0, 5)
	live := th.dial(t)
	live.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": "1"}})
	live.readUntil(isType("replay_complete"))
	parked := th.dial(t)
	parked.send(map[string]any{"type": "resume", "from": "latest"})
	parked.readUntil(isType("replay_complete"))
	waiting := th.dial(t) // sends no resume (ResumeWait is an hour)
	deadline := time.Now().Add(5 * time.Second)
	for th.Clients() != 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(3 * idleSweep) // idle sessions park their writers

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n := th.CloseAll(ctx, 1012, "topic re-created"); n != 3 {
		t.Fatalf("CloseAll closed %d sessions, want 3", n)
	}
	for name, c := range map[string]*client{"live": live, "parked": parked, "waiting": waiting} {
		rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
		var err error
		for err == nil {
			_, _, err = c.conn.Read(rctx)
		}
		rcancel()
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 1012 || ce.Reason != "topic re-created" {
			t.Fatalf("%s client: %v, want close 1012 \"topic re-created\"", name, err)
		}
	}

	if len(th.Heads()) == 0 {
		t.Fatal("no heads before the reset")
	}
	th.ResetHeads()
	if h := th.Heads(); len(h) != 0 {
		t.Fatalf("heads after reset: %v", h)
	}
}
