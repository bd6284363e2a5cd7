package hub

import (
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gobwas/ws"

	"github.com/dashflow/dashstream-gateway/internal/metrics"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// parked counts sessions whose writer goroutine is parked.
func (th *testHub) parked() int {
	n := 0
	th.each(func(s *session) {
		if s.state.Load() == writerParked {
			n++
		}
	})
	return n
}

func (th *testHub) waitParked(t *testing.T, n int) {
	t.Helper()
	waitFor(t, 5*time.Second, "idle writers to park", func() bool { return th.parked() == n })
}

// A parked session loses nothing: records published later, its control
// frames, a new resume and its disconnect all start a writer again.
func TestParkedSessionWakes(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, Config{PingInterval: time.Hour}, replay.MemoryConfig{})
	c := th.dial(t)
	c.send(map[string]any{"type": "resume", "from": "latest"})
	c.readUntil(isType("replay_complete"))
	th.waitParked(t, 1)

	th.publish(0, 0, 5)
	got, _ := c.readRecords(5)
	checkExact(t, got, map[int32][]int64{0: seq(0, 4)})

	th.waitParked(t, 1)
	c.send(map[string]any{"type": "ping"})
	c.readUntil(isType("pong"))

	th.waitParked(t, 1)
	c.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": "1"}})
	got, _ = c.readUntil(isType("replay_complete"))
	checkExact(t, got, map[int32][]int64{0: seq(2, 4)})

	th.waitParked(t, 1)
	c.conn.Close(websocket.StatusNormalClosure, "bye")
	waitFor(t, 5*time.Second, "the session to end", func() bool { return th.Clients() == 0 })
}

// The pinger wakes parked sessions: a peer that never answers pings is
// still closed for its missed pongs.
func TestParkedSessionPongTimeout(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, Config{PingInterval: 4 * idleSweep, SendTimeout: 100 * time.Millisecond}, replay.MemoryConfig{})
	c := th.dialRaw(t, 0)
	c.resumeLatest()
	th.waitParked(t, 1)
	c.expectPongTimeout()
}

// Shutdown reaches parked sessions: each gets 1001.
func TestShutdownWakesParkedSessions(t *testing.T) {
	th := newTestHub(t, Config{}, replay.MemoryConfig{})
	clients := []*rawClient{th.dialRaw(t, 0), th.dialRaw(t, 0), th.dialRaw(t, 0)}
	for _, c := range clients {
		c.resumeLatest()
	}
	th.waitParked(t, len(clients))
	if err := th.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		if code, _ := c.readClose(5 * time.Second); code != ws.StatusGoingAway {
			t.Fatalf("client %d: close %d", i, code)
		}
	}
	if n := th.Clients(); n != 0 {
		t.Fatalf("%d sessions after shutdown", n)
	}
}

// TestParkingRacesLoseNothing publishes in bursts separated by pauses around
// the sweep interval, so writers park and are kicked while records arrive:
// every client still gets every record once, in order.
func TestParkingRacesLoseNothing(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, Config{}, replay.MemoryConfig{PerPartition: 10000})
	const clients, bursts = 8, 24
	type burst struct {
		p    int32
		from int64
		n    int
	}
	var plan []burst
	want := map[int32][]int64{}
	next := map[int32]int64{}
	total := 0
	for range bursts {
		b := burst{p: int32(rand.IntN(2)), n: 1 + rand.IntN(5)}
		b.from = next[b.p]
		plan = append(plan, b)
		want[b.p] = append(want[b.p], seq(b.from, b.from+int64(b.n)-1)...)
		next[b.p] += int64(b.n)
		total += b.n
	}
	got := make([][]received, clients)
	var reads sync.WaitGroup
	for i := range clients {
		c := th.dial(t)
		c.send(map[string]any{"type": "resume", "from": "latest"})
		c.readUntil(isType("replay_complete"))
		reads.Add(1)
		go func() {
			defer reads.Done()
			for len(got[i]) < total {
				f, err := c.read(10 * time.Second)
				if err != nil || f.json["type"] != "cursor" {
					return
				}
				b, err := c.read(5 * time.Second)
				if err != nil || b.binary == nil {
					return
				}
				got[i] = append(got[i], received{partition: int32(f.json["partition"].(float64)),
					offset: parseOffset(t, f.json["offset"]), value: string(b.binary)})
			}
		}()
	}
	sawParked := false
	for _, b := range plan {
		th.publish(b.p, b.from, b.n)
		time.Sleep(time.Duration(rand.IntN(int(2 * idleSweep)))) // 0-2 sweep intervals
		sawParked = sawParked || th.parked() > 0
	}
	reads.Wait()
	for i := range got {
		checkExact(t, got[i], want)
	}
	if !sawParked {
		t.Fatal("no writer parked during the run: the race was not exercised")
	}
}

// A wake-up or event that arrives while the writer decides to park (its
// kick finds the writer still running and starts nothing) must keep the
// writer running, or it would be lost until the next one.
func TestParkKeepsWhatRacedIt(t *testing.T) {
	mem := replay.NewMemory(replay.MemoryConfig{})
	h := New(Config{}, replay.NewTiers(mem, nil), &fakeTopo{hwm: map[int32]int64{}}, metrics.New(nil), slog.New(slog.DiscardHandler))
	defer h.Shutdown(t.Context())
	s := newSession(h, discardConn{}, "", false)
	for name, arrive := range map[string]func(){
		"wake":  s.wake,
		"event": func() { s.events <- event{text: []byte(`{"type":"ping"}`)}; s.kick() },
		"ping":  func() { s.pingDue.Store(true); s.kick() },
	} {
		arrive()
		if s.park() {
			t.Fatalf("%s: the writer parked with it pending", name)
		}
		if s.state.Load() != writerRunning {
			t.Fatalf("%s: state %d, want running", name, s.state.Load())
		}
		select { // consume it, as the writer would
		case <-s.wakeCh:
		case <-s.events:
		default:
			s.pingDue.Store(false)
		}
		if !s.park() {
			t.Fatalf("%s: the writer did not park with nothing pending", name)
		}
		s.state.Store(writerRunning) // this test plays the writer
	}
}

// countingConn counts the bytes written to it.
type countingConn struct {
	discardConn
	n *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

// A sweep and a wake-up that arrive together while the writer waits: the
// records are written before the writer parks.
func TestWakeIsPumpedBeforeParking(t *testing.T) {
	mem := replay.NewMemory(replay.MemoryConfig{})
	h := New(Config{}, replay.NewTiers(mem, nil), &fakeTopo{hwm: map[int32]int64{}}, metrics.New(nil), slog.New(slog.DiscardHandler))
	var written atomic.Int64
	s := newSession(h, countingConn{n: &written}, "", false)
	s.d.pos = map[int32]int64{0: -1}
	if err := h.add(s); err != nil {
		t.Fatal(err)
	}
	s.end = func() { h.remove(s) }
	done := make(chan struct{})
	go func() { defer close(done); s.serve(t.Context()) }()
	time.Sleep(50 * time.Millisecond) // the writer is waiting: nothing to write
	s.sweep.Store(true)
	h.Publish([]*replay.Record{{Partition: 0, Offset: 0, Prev: -1, Value: []byte("v")}})
	waitFor(t, 5*time.Second, "the record to be written", func() bool { return written.Load() > 0 })
	close(s.readDone) // as if the client left: the session ends
	<-done
	h.Shutdown(t.Context())
}

// A parked session does not keep the write and page storage a big replay
// grew.
func TestParkedSessionDropsBuffers(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, Config{PingInterval: time.Hour}, replay.MemoryConfig{PerPartition: 5000})
	th.publishSized(0, 0, 2000, 1000)
	c := th.dial(t)
	c.send(map[string]any{"type": "resume", "from": "earliest"})
	got, _ := c.readUntil(isType("replay_complete"))
	if len(got) != 2000 {
		t.Fatalf("replayed %d records", len(got))
	}
	th.waitParked(t, 1)
	th.each(func(s *session) { // parked: no writer owns the fields
		if s.backing != nil || s.wbufs != nil || s.wview != nil || s.d.recs != nil {
			t.Errorf("parked with storage: backing %d, wbufs %d, recs %d", cap(s.backing), cap(s.wbufs), cap(s.d.recs))
		}
	})
	th.publish(0, 2000, 3) // and it still delivers
	live, _ := c.readRecords(3)
	checkExact(t, live, map[int32][]int64{0: seq(2000, 2002)})
}

// The pinger pings a slice of the sessions at a time, each session once
// per interval, instead of all of them at once.
func TestPingsSpreadOverTheInterval(t *testing.T) {
	if got := pingSlices(20 * time.Second); got != maxPingSlices {
		t.Errorf("20 s: %d slices", got)
	}
	if got := pingSlices(50 * time.Millisecond); got != 1 {
		t.Errorf("50 ms: %d slices", got)
	}
	const slices = 4
	mem := replay.NewMemory(replay.MemoryConfig{})
	h := New(Config{PingInterval: slices * idleSweep}, replay.NewTiers(mem, nil), &fakeTopo{hwm: map[int32]int64{}},
		metrics.New(nil), slog.New(slog.DiscardHandler))
	var ss []*session
	defer func() {
		for _, s := range ss {
			h.remove(s)
		}
		h.Shutdown(t.Context())
	}()
	for range 4 * slices {
		s := newSession(h, discardConn{}, "", false) // no writer runs: a due ping stays due
		if err := h.add(s); err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	due := func() (n int) {
		for _, s := range ss {
			if s.pingDue.Load() {
				n++
			}
		}
		return n
	}
	waitFor(t, 5*time.Second, "a first slice pinged", func() bool { return due() > 0 })
	if n := due(); n != len(ss)/slices {
		t.Errorf("%d sessions pinged by the first tick, want %d", n, len(ss)/slices)
	}
	waitFor(t, 5*time.Second, "every session pinged", func() bool { return due() == len(ss) })
}
