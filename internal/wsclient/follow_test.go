package wsclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/hub"
	"github.com/dashflow/dashstream-gateway/internal/hub/hubtest"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

var errEnough = errors.New("enough records")

// TestFollowerResumesAcrossCuts streams records while the network between
// client and hub is cut several times: the follower reconnects, resumes
// from its cursor and ends with every record exactly once, in order.
func TestFollowerResumesAcrossCuts(t *testing.T) {
	const perPartition = 400
	th := newTestHub(t, hub.Config{}, replay.MemoryConfig{})
	px := hubtest.NewProxy(t, th.Addr())
	th.publish(0, 0, 50) // history before the follower starts
	th.publish(1, 0, 50)

	var mu sync.Mutex
	got := map[int32][]int64{}
	var total, disconnects int
	f := &Follower{
		URL: px.URL(), From: FromEarliest,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		OnRecord: func(r Record, v Verdict) error {
			mu.Lock()
			defer mu.Unlock()
			if v != Applied || string(r.Value) != value(r.Partition, r.Offset) {
				t.Errorf("p%d@%d verdict %d value %q", r.Partition, r.Offset, v, r.Value)
			}
			got[r.Partition] = append(got[r.Partition], r.Offset)
			if total++; total == 2*perPartition {
				return errEnough
			}
			return nil
		},
		OnDisconnect: func(error, time.Duration) { mu.Lock(); disconnects++; mu.Unlock() },
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(context.Background()) }()

	for o := int64(50); o < perPartition; o += 10 {
		th.publish(0, o, 10)
		th.publish(1, o, 10)
		time.Sleep(5 * time.Millisecond)
		if o%100 == 0 {
			px.Cut()
		}
	}
	select {
	case err := <-done:
		if !errors.Is(err, errEnough) {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("follower stalled at %d records", total)
	}
	mu.Lock()
	defer mu.Unlock()
	for p := int32(0); p < 2; p++ {
		checkOffsets(t, p, got[p], 0, perPartition-1)
	}
	if disconnects < 3 || f.Cursor.Duplicates != 0 || f.Cursor.Missing != 0 {
		t.Fatalf("disconnects=%d duplicates=%d missing=%d", disconnects, f.Cursor.Duplicates, f.Cursor.Missing)
	}
}

func checkOffsets(t *testing.T, p int32, got []int64, from, to int64) {
	t.Helper()
	if int64(len(got)) != to-from+1 {
		t.Fatalf("partition %d: %d records, want %d", p, len(got), to-from+1)
	}
	for i, o := range got {
		if o != from+int64(i) {
			t.Fatalf("partition %d record %d: offset %d, want %d", p, i, o, from+int64(i))
		}
	}
}

// TestFollowerLatestThenCursor: a follower started at "latest" on a quiet
// partition keeps what it was given at the resume, so a reconnect does not
// replay history from before it started.
func TestFollowerLatestThenCursor(t *testing.T) {
	th := newTestHub(t, hub.Config{}, replay.MemoryConfig{})
	px := hubtest.NewProxy(t, th.Addr())
	th.publish(0, 0, 20)
	ready := make(chan struct{})
	var got []int64
	f := &Follower{
		URL: px.URL(), From: FromLatest, MinBackoff: 10 * time.Millisecond,
		OnControl: func(c Control) error {
			if c.Type == "replay_complete" && ready != nil {
				close(ready)
				ready = nil
			}
			return nil
		},
		OnRecord: func(r Record, _ Verdict) error {
			if got = append(got, r.Offset); len(got) == 5 {
				return errEnough
			}
			return nil
		},
	}
	done := make(chan error, 1)
	wait := ready
	go func() { done <- f.Run(context.Background()) }()
	<-wait
	px.Cut()
	th.publish(0, 20, 5)
	if err := <-done; !errors.Is(err, errEnough) {
		t.Fatalf("Run = %v", err)
	}
	checkOffsets(t, 0, got, 20, 24)
}

func TestFollowerStopsOnPermanentRefusal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	defer srv.Close()
	f := &Follower{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), OnRecord: func(Record, Verdict) error { return nil }}
	var he *HandshakeError
	if err := f.Run(context.Background()); !errors.As(err, &he) || he.Status != 401 {
		t.Fatalf("Run = %v", err)
	}
}

func TestFollowerEndsWithContext(t *testing.T) {
	th := newTestHub(t, hub.Config{}, replay.MemoryConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	f := &Follower{URL: th.url(), OnRecord: func(Record, Verdict) error { return nil }}
	if err := f.Run(ctx); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// TestFollowerOnConnect: OnConnect marks each successful dial, before the
// connection's first message; failed dials only reach OnDisconnect.
func TestFollowerOnConnect(t *testing.T) {
	ln := httptest.NewServer(http.NotFoundHandler())
	closed := "ws://" + strings.TrimPrefix(ln.URL, "http://") + "/ws"
	ln.Close() // nothing listens there any more
	var connects, failures int
	f := &Follower{URL: closed, MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		OnConnect:    func() { connects++ },
		OnDisconnect: func(error, time.Duration) { failures++ },
		OnRecord:     func(Record, Verdict) error { return nil }}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := f.Run(ctx); err != nil || connects != 0 || failures == 0 {
		t.Fatalf("closed port: Run = %v, %d connects, %d failures", err, connects, failures)
	}

	th := newTestHub(t, hub.Config{}, replay.MemoryConfig{})
	th.publish(0, 0, 3)
	connects = 0
	f = &Follower{URL: th.url(), From: FromEarliest,
		OnConnect: func() { connects++ },
		OnControl: func(Control) error {
			if connects != 1 {
				t.Errorf("control frame with %d connects", connects)
			}
			return nil
		},
		OnRecord: func(r Record, _ Verdict) error {
			if r.Offset == 2 {
				return errEnough
			}
			return nil
		}}
	if err := f.Run(context.Background()); !errors.Is(err, errEnough) || connects != 1 {
		t.Fatalf("live hub: Run = %v, %d connects", err, connects)
	}
}
