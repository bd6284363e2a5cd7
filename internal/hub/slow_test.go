package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// sockBuf is the socket buffer size of slow-client tests: with it a client
// that stops reading blocks the server after ~100 KiB instead of megabytes.
const sockBuf = 32 << 10

// A client that stops reading for a while (shorter than the send deadline)
// and then reads again loses nothing and gets nothing twice.
func TestSlowClientPauseLosesNothing(t *testing.T) {
	th := newTestHubBuffers(t, Config{QueueBytes: 1 << 10, SendTimeout: 3 * time.Second, SlowThreshold: 1 << 40},
		replay.MemoryConfig{PerPartition: 10000}, sockBuf)
	c := th.dialSmall(t, sockBuf)
	c.send(map[string]any{"type": "resume", "from": "latest"})
	c.readUntil(isType("replay_complete"))
	for round := range 10 {
		for p := range int32(4) {
			th.publishSized(p, int64(round*50), 50, 600) // 1.2 MB in all
		}
	}
	time.Sleep(300 * time.Millisecond) // the pause under test
	recs, ctrl := c.readRecords(2000)
	if len(ctrl) != 0 {
		t.Fatalf("controls %v", ctrl)
	}
	checkExact2(t, recs, map[int32][]int64{0: seq(0, 499), 1: seq(0, 499), 2: seq(0, 499), 3: seq(0, 499)})
	if n := testutil.ToFloat64(th.m.SlowClientDisconnects); n != 0 {
		t.Fatalf("%v slow disconnects", n)
	}
}

// A client that never reads is cut off within about the send deadline; the
// other client keeps getting everything promptly and Publish never blocks.
func TestStuckClientDoesNotHoldOthers(t *testing.T) {
	const sendTimeout = time.Second
	th := newTestHubBuffers(t, Config{SendTimeout: sendTimeout, QueueBytes: 1 << 20},
		replay.MemoryConfig{PerPartition: 1 << 20, MaxBytes: 256 << 20}, sockBuf)
	stuck := th.dialSmall(t, sockBuf)
	stuck.send(map[string]any{"type": "resume", "from": "latest"})
	stuck.readUntil(isType("replay_complete"))
	good := th.dial(t)
	good.send(map[string]any{"type": "resume", "from": "latest"})
	good.readUntil(isType("replay_complete"))

	// The good client reads in the background and notes when each record
	// arrived.
	type arrival struct {
		d  received
		at time.Time
	}
	arrivals := make(chan arrival, 1<<16)
	readErr := make(chan error, 1)
	go func() {
		defer close(arrivals)
		for {
			f, err := good.read(10 * time.Second)
			if err != nil {
				readErr <- err
				return
			}
			if f.json["type"] != "cursor" {
				readErr <- errors.New("unexpected control frame")
				return
			}
			b, err := good.read(10 * time.Second)
			if err != nil || b.binary == nil {
				readErr <- errors.New("cursor without binary")
				return
			}
			arrivals <- arrival{received{int32(f.json["partition"].(float64)), parseOffset(t, f.json["offset"]), string(b.binary)}, time.Now()}
		}
	}()

	publishedAt := map[int64]time.Time{}
	var maxPublish time.Duration
	start := time.Now()
	next := int64(0)
	for th.Clients() == 2 {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the stuck client was never cut off")
		}
		t0 := time.Now()
		th.publishSized(0, next, 5, 1000)
		maxPublish = max(maxPublish, time.Since(t0))
		for o := next; o < next+5; o++ {
			publishedAt[o] = t0
		}
		next += 5
		time.Sleep(time.Millisecond) // a steady producer, not a flood
	}
	cutoff := time.Since(start)
	t.Logf("stuck client cut off after %v, %d records; slowest Publish %v", cutoff, next, maxPublish)
	if maxPublish >= sendTimeout/4 { // blocking on the stuck client would take the send deadline
		t.Fatalf("Publish took %v", maxPublish)
	}
	var got []received
	var worst time.Duration
	for len(got) < int(next) {
		select {
		case a, ok := <-arrivals:
			if !ok {
				t.Fatalf("good client: %v after %d records", <-readErr, len(got))
			}
			got = append(got, a.d)
			worst = max(worst, a.at.Sub(publishedAt[a.d.offset]))
		case <-time.After(10 * time.Second):
			t.Fatalf("good client stalled after %d of %d", len(got), next)
		}
	}
	checkExact2(t, got, map[int32][]int64{0: seq(0, next-1)})
	t.Logf("worst delivery latency to the good client: %v", worst)
	if worst >= sendTimeout {
		t.Fatalf("good client waited %v: it was held by the stuck one", worst)
	}
	good.conn.CloseNow()
	<-arrivals // the reader goroutine ends
	// What the stuck client finally reads is a clean prefix: every complete
	// record is the right one, in order, and a disconnect frame, if any,
	// comes with close 1008.
	recs, ctrl, code := drainStream(t, stuck)
	checkValues(t, recs)
	for i, d := range recs {
		if d.offset != int64(i) {
			t.Fatalf("stuck client: record %d is offset %d", i, d.offset)
		}
	}
	if len(ctrl) > 0 && (ctrl[0]["type"] != "disconnect" || code != websocket.StatusPolicyViolation) {
		t.Fatalf("stuck client: controls %v, close %d", ctrl, code)
	}
}

// drainStream reads what a client still has until the connection ends.
func drainStream(t *testing.T, c *client) ([]received, []map[string]any, websocket.StatusCode) {
	t.Helper()
	var recs []received
	var ctrl []map[string]any
	for {
		f, err := c.read(5 * time.Second)
		if err != nil {
			return recs, ctrl, websocket.CloseStatus(err)
		}
		if f.binary != nil {
			t.Fatal("binary frame without cursor")
		}
		if f.json["type"] != "cursor" {
			ctrl = append(ctrl, f.json)
			continue
		}
		b, err := c.read(5 * time.Second)
		if err != nil {
			return recs, ctrl, websocket.CloseStatus(err)
		}
		recs = append(recs, received{int32(f.json["partition"].(float64)), parseOffset(t, f.json["offset"]), string(b.binary)})
	}
}

// When records a client has not read yet are evicted, it gets a gap with
// the exact range, then the rest, with no hole elsewhere.
func TestEvictionWhileBehind(t *testing.T) {
	th := newTestHubBuffers(t, Config{SendTimeout: 5 * time.Second}, replay.MemoryConfig{PerPartition: 20}, sockBuf)
	th.publishSized(0, 0, 10, 4096)
	c := th.dialSmall(t, sockBuf)
	c.send(map[string]any{"type": "resume", "from": "latest"})
	c.readUntil(isType("replay_complete"))
	for o := int64(10); o < 310; o += 10 {
		th.publishSized(0, o, 10, 4096) // 1.2 MB in all; memory keeps the last 20
	}
	// Walk the stream in order: each record is the next offset, each gap
	// starts at the next offset; together they cover 10..309 once.
	next, gaps, lastGapTo := int64(10), 0, int64(-1)
	for next < 310 {
		f, err := c.read(5 * time.Second)
		if err != nil {
			t.Fatalf("read at %d: %v", next, err)
		}
		switch f.json["type"] {
		case "cursor":
			b, err := c.read(5 * time.Second)
			d := received{0, parseOffset(t, f.json["offset"]), string(b.binary)}
			if err != nil || d.offset != next || !valueOK(d) {
				t.Fatalf("record %d where %d was next (%v)", d.offset, next, err)
			}
			next++
		case "gap":
			from, to := parseOffset(t, f.json["fromOffset"]), parseOffset(t, f.json["toOffset"])
			n := to - from + 1
			if from != next || to < from || num(f.json, "count") != n || f.json["severity"] != wantSeverity(n) ||
				f.json["reason"] != "retention" || num(f.json, "partition") != 0 {
				t.Fatalf("gap %v where %d was next", f.json, next)
			}
			t.Logf("gap %d..%d", from, to)
			gaps++
			next, lastGapTo = to+1, to
		default:
			t.Fatalf("control %v", f.json)
		}
	}
	if gaps == 0 || lastGapTo != 289 {
		t.Fatalf("%d gaps, the last ending at %d; the oldest retained is 290", gaps, lastGapTo)
	}
	th.publishSized(0, 310, 3, 10)
	live, ctrl := c.readRecords(3)
	checkExact2(t, live, map[int32][]int64{0: seq(310, 312)})
	if len(ctrl) != 0 {
		t.Fatalf("controls %v", ctrl)
	}
}

func wantSeverity(n int64) string {
	switch {
	case n < 10:
		return "info"
	case n < 100:
		return "warning"
	}
	return "critical"
}

// A client that needs more than SlowThreshold records of catch-up within
// SlowWindow is disconnected with the counts.
func TestSlowThresholdDisconnect(t *testing.T) {
	th := newTestHub(t, Config{QueueBytes: 1, SlowThreshold: 100, SlowWindow: 7 * time.Second},
		replay.MemoryConfig{PerPartition: 10000})
	c := th.dial(t)
	c.send(map[string]any{"type": "resume", "from": "latest"})
	c.readUntil(isType("replay_complete"))
	th.publish(0, 0, 2000) // small records: one burst, far beyond the queue bound
	recs, ctrl := c.readUntil(isType("disconnect"))
	checkExact(t, recs, map[int32][]int64{0: seq(0, int64(len(recs))-1)})
	d := ctrl[len(ctrl)-1]
	if d["reason"] != "backpressure" || num(d, "threshold") != 100 || num(d, "window_secs") != 7 || d["message"] == "" {
		t.Fatalf("disconnect %v", d)
	}
	if lag := num(d, "lag_in_window"); lag <= 100 || num(d, "cumulative_lag") < lag || lag > int64(len(recs)) {
		t.Fatalf("disconnect %v after %d records", d, len(recs))
	}
	if code, _ := c.expectClose(5 * time.Second); code != websocket.StatusPolicyViolation {
		t.Fatalf("close %d", code)
	}
}

// A client still catching up after MaxCatchup is disconnected.
func TestMaxCatchupDisconnect(t *testing.T) {
	th := newTestHubBuffers(t, Config{QueueBytes: 1, MaxCatchup: 300 * time.Millisecond, SlowThreshold: 1 << 40,
		WriteBatch: 16 << 10}, replay.MemoryConfig{PerPartition: 10000, MaxBytes: 64 << 20}, sockBuf)
	c := th.dialSmall(t, sockBuf)
	c.send(map[string]any{"type": "resume", "from": "latest"})
	c.readUntil(isType("replay_complete"))
	th.publishSized(0, 0, 3000, 1000)
	start := time.Now()
	var n int64
	for {
		f, err := c.read(5 * time.Second)
		if err != nil {
			t.Fatalf("read: %v after %d records", err, n)
		}
		if f.binary != nil {
			n++
			time.Sleep(200 * time.Microsecond) // a slow reader
			continue
		}
		if f.json["type"] == "cursor" {
			continue
		}
		if f.json["type"] != "disconnect" {
			t.Fatalf("control %v", f.json)
		}
		if f.json["reason"] != "backpressure" || num(f.json, "cumulative_lag") < num(f.json, "lag_in_window") ||
			num(f.json, "cumulative_lag") == 0 || num(f.json, "threshold") != 1<<40 {
			t.Fatalf("disconnect %v", f.json)
		}
		break
	}
	if d := time.Since(start); d < 300*time.Millisecond || n >= 3000 {
		t.Fatalf("disconnected after %v and %d records", d, n)
	}
	if code, _ := c.expectClose(5 * time.Second); code != websocket.StatusPolicyViolation {
		t.Fatalf("close %d", code)
	}
}

// The replay part of a resume is bounded by ReplayTimeout: error
// REPLAY_TIMEOUT then close 1013.
func TestReplayTimeout(t *testing.T) {
	testReplayTimeout(t, Config{ReplayTimeout: 300 * time.Millisecond, WriteBatch: 16 << 10})
}

// A slow client reads the server's pings late, after the server closed,
// and answers them: the close must still reach it whole (the server shuts
// its write side and lingers instead of closing a socket the pongs then
// arrive at, whose reset would drop what the client had not read yet).
func TestCloseSurvivesLatePongs(t *testing.T) {
	for range 3 {
		testReplayTimeout(t, Config{ReplayTimeout: 300 * time.Millisecond, WriteBatch: 16 << 10, PingInterval: 20 * time.Millisecond})
	}
}

func testReplayTimeout(t *testing.T, cfg Config) {
	t.Helper()
	th := newTestHubBuffers(t, cfg, replay.MemoryConfig{PerPartition: 10000}, sockBuf)
	th.publishSized(0, 0, 3000, 1000)
	c := th.dialSmall(t, sockBuf)
	c.send(map[string]any{"type": "resume", "from": "earliest"})
	var ctrl []map[string]any
	for {
		f, err := c.read(5 * time.Second)
		if err != nil {
			if code := websocket.CloseStatus(err); code != 1013 {
				t.Fatalf("close %d (%v), controls %v", code, err, ctrl)
			}
			break
		}
		if f.binary != nil {
			time.Sleep(200 * time.Microsecond)
		} else if f.json["type"] != "cursor" {
			ctrl = append(ctrl, f.json)
		}
	}
	if len(ctrl) != 1 || ctrl[0]["type"] != "error" || ctrl[0]["code"] != "REPLAY_TIMEOUT" {
		t.Fatalf("controls %v", ctrl)
	}
}

// A write that misses the send deadline stops in the middle of a frame. What
// the client reads afterwards must still be a valid stream: the rest of that
// frame, then disconnect and close — never the disconnect frame spliced into
// a half-written record.
func TestSendTimeoutKeepsFramesWhole(t *testing.T) {
	for i := range 3 {
		th := newTestHubBuffers(t, Config{SendTimeout: 200 * time.Millisecond, QueueBytes: 1 << 30},
			replay.MemoryConfig{PerPartition: 100000, MaxBytes: 256 << 20}, sockBuf)
		c := th.dialRaw(t, sockBuf)
		c.resumeLatest()
		th.publishSized(0, 0, 5000, 150+i*37) // small frames: a cut lands inside one
		waitFor(t, 5*time.Second, "a send timeout", func() bool { return testutil.ToFloat64(th.m.SendTimeout) > 0 })
		var next int64
		var sawDisconnect bool
		for {
			h, p, err := c.readFrame(5 * time.Second)
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				t.Logf("stream ended after %d records without a close frame", next)
				break
			}
			if err != nil {
				t.Fatalf("after %d records: %v", next, err)
			}
			if h.OpCode == ws.OpClose {
				code, _ := ws.ParseCloseFrameData(p)
				if code != ws.StatusPolicyViolation || !sawDisconnect {
					t.Fatalf("close %d, disconnect seen %v", code, sawDisconnect)
				}
				break
			}
			if h.OpCode != ws.OpText || sawDisconnect {
				t.Fatalf("frame op %d after %d records (disconnect seen %v): %.60q", h.OpCode, next, sawDisconnect, p)
			}
			var m map[string]any
			if err := json.Unmarshal(p, &m); err != nil {
				t.Fatalf("after %d records: text frame is not JSON: %.80q", next, p)
			}
			if m["type"] == "disconnect" {
				sawDisconnect = true
				continue
			}
			if m["type"] != "cursor" || parseOffset(t, m["offset"]) != next {
				t.Fatalf("after %d records: %v", next, m)
			}
			h, p, err = c.readFrame(5 * time.Second)
			if err != nil {
				t.Logf("stream ended inside record %d: %v", next, err)
				break
			}
			if h.OpCode != ws.OpBinary || !bytes.Equal(p, paddedValue(0, next, 150+i*37)) {
				t.Fatalf("record %d: op %d, value %.60q", next, h.OpCode, p)
			}
			next++
		}
		if !sawDisconnect {
			t.Logf("iteration %d: no disconnect frame (the socket never drained)", i)
		}
	}
}

func TestLagWindow(t *testing.T) {
	var l lagState
	t0 := time.Unix(1_000_000, 0)
	w := 10 * time.Second
	l.add(t0, 5, w)
	l.add(t0.Add(300*time.Millisecond), 2, w)
	l.add(t0.Add(time.Second), 7, w)
	l.add(t0.Add(2*time.Second), 0, w)
	for _, tc := range []struct {
		at   time.Duration
		want int64
	}{{0, 14}, {5 * time.Second, 14}, {9 * time.Second, 14}, {10 * time.Second, 7}, {11 * time.Second, 0}} {
		if got := l.inWindow(t0.Add(tc.at), w); got != tc.want {
			t.Errorf("in window at +%v: %d, want %d", tc.at, got, tc.want)
		}
	}
	if l.cumulative != 14 {
		t.Errorf("cumulative %d", l.cumulative)
	}
	cfg := Config{SlowThreshold: 3, SlowWindow: w}
	l.add(t0.Add(20*time.Second), 3, w)
	if l.overThreshold(cfg, t0.Add(20*time.Second)) {
		t.Error("3 records is not over a threshold of 3")
	}
	l.add(t0.Add(21*time.Second), 1, w)
	if !l.overThreshold(cfg, t0.Add(21*time.Second)) {
		t.Error("4 records is over a threshold of 3")
	}
}

// TestReplaySlotsBoundConcurrentReplays: with one replay slot, a second
// client's resume waits until the first replay finishes; a resume that
// cannot get a slot within the replay timeout gets REPLAY_TIMEOUT and 1013,
// and slots held by clients that leave are released.
func TestReplaySlotsBoundConcurrentReplays(t *testing.T) {
	th := newTestHub(t, Config{ReplaySlots: 1, ReplayTimeout: 300 * time.Millisecond}, replay.MemoryConfig{})
	th.publish(0, 0, 5)
	holder := th.Hub
	// Take the only slot by hand, as a replay in progress would.
	holder.replaySlots <- struct{}{}
	c := th.dial(t)
	c.send(map[string]any{"type": "resume", "from": "earliest"})
	_, ctrl := c.readUntil(isType("error"))
	if ctrl[len(ctrl)-1]["code"] != "REPLAY_TIMEOUT" {
		t.Fatalf("controls = %v, want REPLAY_TIMEOUT", ctrl)
	}
	<-holder.replaySlots // the replay "finishes"
	c2 := th.dial(t)
	c2.send(map[string]any{"type": "resume", "from": "earliest"})
	recs, _ := c2.readUntil(isType("replay_complete"))
	checkExact(t, recs, map[int32][]int64{0: seq(0, 4)})
	if n := len(holder.replaySlots); n != 0 {
		t.Fatalf("%d replay slots still held after replay_complete", n)
	}
}

// A burst from the consumer that evicts records from memory before a
// client could read them (the consumer catching up after a Kafka outage)
// does not make a client that reads at full speed a slow one: the evicted
// part of its backlog counts by its size, far below the queue bound, so it
// gets every record, from the lower tier, with no disconnect.
func TestBurstEvictionIsNotSlowness(t *testing.T) {
	th := newTestHub(t, Config{QueueBytes: 1 << 20, SlowThreshold: 50, SlowWindow: time.Minute, WriteBatch: 4 << 10},
		replay.MemoryConfig{PerPartition: 100})
	log := replay.NewMemory(replay.MemoryConfig{PerPartition: 1 << 20, MaxBytes: 1 << 30})
	th.tiers.SetKafka(logKafka{log})
	recs := make([]*replay.Record, 2001)
	for i := range recs {
		o := int64(i)
		recs[i] = &replay.Record{Partition: 0, Offset: o, Prev: o - 1, Value: []byte("v-0-" + itoa64(o))}
	}
	log.Append(t.Context(), recs)
	th.Publish(recs[:1])
	c := th.dial(t)
	c.send(map[string]any{"type": "resume", "from": "latest"}) // at offset 0
	c.readUntil(isType("replay_complete"))
	th.Publish(recs[1:]) // one poll's worth: memory keeps the last 100
	got, ctrl := c.readRecords(2000)
	checkExact2(t, got, map[int32][]int64{0: seq(1, 2000)})
	if len(ctrl) != 0 {
		t.Fatalf("controls %v", ctrl)
	}
	if n := testutil.ToFloat64(th.m.SlowClientDisconnects); n != 0 {
		t.Fatalf("%v slow disconnects", n)
	}
}

// logKafka is a fake Kafka that retains every record appended to its log
// (hub tests have no broker; the chaos suite covers the real one).
type logKafka struct{ log *replay.Memory }

func (k logKafka) LogStart(context.Context, int32, time.Duration) (int64, error) { return 0, nil }

func (k logKafka) ReadAfter(ctx context.Context, p int32, after int64, n int) ([]*replay.Record, int64, error) {
	recs, _, err := k.log.Read(ctx, p, after, replay.Limit{Records: n})
	return recs, 0, err
}
