package e2e

// Join at the last full state (docs/PROTOCOL.md §3.8) checked with the
// state hashes DashStream carries: a client that joins runs mid-way and
// applies what it receives, from the first full-state record on, holds
// each run's state — its hash equals the state_hash of every StateDiff the
// run publishes next and GRAPH_END's final_state_hash. The demo gateway
// (embedded broker, `dashstream demo`'s workload) is joined in v2 and v1;
// the join's choice of runs (ended runs, runs silent for longer than
// WEBSOCKET_JOIN_WINDOW_SECS) is checked on real Kafka with the same
// workload's records produced at chosen times.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/devbroker"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

var joinDecoder = dashstream.NewDecoder(dashstream.DecoderConfig{})

// fullStateOf returns the whole state a record carries, if any: a
// GRAPH_START's initial_state_json, a StateDiff's full_state, a
// Checkpoint's state.
func fullStateOf(m *pb.DashStreamMessage) ([]byte, bool) {
	switch {
	case m.GetEvent().GetEventType() == pb.EventType_EVENT_TYPE_GRAPH_START:
		return []byte(m.GetEvent().GetAttributes()["initial_state_json"].GetStringValue()), true
	case len(m.GetStateDiff().GetFullState()) > 0:
		return m.GetStateDiff().GetFullState(), true
	case m.GetCheckpoint() != nil:
		return m.GetCheckpoint().GetState(), true
	}
	return nil, false
}

func graphEvent(m *pb.DashStreamMessage) pb.EventType { return m.GetEvent().GetEventType() }

// stateHash is the SHA-256 of state's canonical JSON, as a StateDiff's
// state_hash.
func stateHash(state any) ([]byte, error) {
	c, err := devbroker.CanonicalJSON(state)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(c)
	return sum[:], nil
}

// runState is one thread as a joining client rebuilds it.
type runState struct {
	state    any
	firstPos string // partition/offset of the thread's first record received
	first    string // its message type
	hashes   int    // StateDiff state_hash and final_state_hash values checked
	ended    bool
}

// stateClient applies what a client receives, per thread, and records
// every disagreement with the hashes the records carry.
type stateClient struct {
	name string
	runs map[string]*runState
	errs []string
}

func newStateClient(name string) *stateClient {
	return &stateClient{name: name, runs: map[string]*runState{}}
}

func (c *stateClient) fail(format string, args ...any) {
	if len(c.errs) < 20 {
		c.errs = append(c.errs, c.name+": "+fmt.Sprintf(format, args...))
	}
}

// apply takes one received record.
func (c *stateClient) apply(r wsclient.Record) {
	d, err := joinDecoder.Decode(r.Value)
	if err != nil {
		c.fail("%d/%d: decode: %v", r.Partition, r.Offset, err)
		return
	}
	m, thread := d.Message, d.Header().GetThreadId()
	at := fmt.Sprintf("%s %d/%d (%s)", thread, r.Partition, r.Offset, d.MessageType())
	rs := c.runs[thread]
	full, isFull := fullStateOf(m)
	if rs == nil {
		rs = &runState{firstPos: fmt.Sprintf("%d/%d", r.Partition, r.Offset), first: d.MessageType()}
		c.runs[thread] = rs
		if !isFull {
			c.fail("%s: the thread's first record carries no full state", at)
		}
	}
	if isFull && m.GetStateDiff() == nil { // a StateDiff's full_state: ApplyDiff below
		var st any
		if err := json.Unmarshal(full, &st); err != nil {
			c.fail("%s: full state: %v", at, err)
			return
		}
		rs.state = st
		if cp := m.GetCheckpoint(); cp != nil {
			c.checkHash(rs, at, "checksum", cp.GetChecksum(), false)
		}
	}
	if sd := m.GetStateDiff(); sd != nil {
		if rs.state == nil && len(sd.GetFullState()) == 0 {
			c.fail("%s: a diff without a state to apply it to", at)
			return
		}
		st, err := devbroker.ApplyDiff(rs.state, sd)
		if err != nil {
			c.fail("%s: apply: %v", at, err)
			rs.state = nil
			return
		}
		rs.state = st
		c.checkHash(rs, at, "state_hash", sd.GetStateHash(), true)
	}
	if graphEvent(m) == pb.EventType_EVENT_TYPE_GRAPH_END {
		rs.ended = true
		want, err := hex.DecodeString(m.GetEvent().GetAttributes()["final_state_hash"].GetStringValue())
		if err != nil || len(want) == 0 {
			return // no final_state_hash: nothing to check
		}
		c.checkHash(rs, at, "final_state_hash", want, true)
	}
}

func (c *stateClient) checkHash(rs *runState, at, what string, want []byte, count bool) {
	if rs.state == nil {
		c.fail("%s: %s without a state", at, what)
		return
	}
	got, err := stateHash(rs.state)
	if err != nil {
		c.fail("%s: hash: %v", at, err)
		return
	}
	if !bytes.Equal(got, want) {
		c.fail("%s: hash of the rebuilt state %x, %s %x", at, got[:8], what, want[:min(8, len(want))])
		return
	}
	if count {
		rs.hashes++
	}
}

// joinedClient is one joining connection and what it received.
type joinedClient struct {
	name   string
	conn   *wsclient.Conn
	s      *stream
	sc     *stateClient
	joined map[string][]wsclient.Record // per thread, the records before replay_complete
	done   bool                         // replay_complete seen
	rc     wsclient.ReplayComplete
}

func newJoinedClient(name string, conn *wsclient.Conn) *joinedClient {
	return &joinedClient{name: name, conn: conn, s: &stream{}, sc: newStateClient(name), joined: map[string][]wsclient.Record{}}
}

// take applies every message of the stream not applied yet (from index i).
func (j *joinedClient) take(t testing.TB, i int) {
	for _, m := range j.s.msgs[i:] {
		switch {
		case m.Kind == wsclient.KindControl && m.Control.Type == "replay_complete":
			if j.done {
				t.Errorf("%s: a second replay_complete: %s", j.name, m.Control.Raw)
			}
			j.done, j.rc = true, decodeControl[wsclient.ReplayComplete](t, m.Control)
		case m.Kind == wsclient.KindControl:
			t.Errorf("%s: unexpected control frame %s", j.name, m.Control.Raw)
		default:
			if !j.done {
				d, err := joinDecoder.Decode(m.Record.Value)
				if err == nil {
					th := d.Header().GetThreadId()
					j.joined[th] = append(j.joined[th], m.Record)
				}
			}
			j.sc.apply(m.Record)
		}
	}
}

// readJoin reads until replay_complete, applying as it goes.
func (j *joinedClient) readJoin(t testing.TB, timeout time.Duration) {
	t.Helper()
	n := len(j.s.msgs)
	readMore(t, j.conn, j.s, timeout, j.name+": join", func(s *stream) bool { return s.hasControl("replay_complete") })
	j.take(t, n)
	if !j.done {
		t.Fatalf("%s: no replay_complete", j.name)
	}
}

// readWhile reads on, applying, until done holds.
func (j *joinedClient) readWhile(t testing.TB, timeout time.Duration, what string, done func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !done() {
		m, err := j.conn.Next(ctx)
		if err != nil {
			t.Fatalf("%s: %s: %v; state errors: %v", j.name, what, err, j.sc.errs)
		}
		j.s.add(m)
		j.take(t, len(j.s.msgs)-1)
	}
}

func (j *joinedClient) check(t testing.TB) {
	t.Helper()
	for _, e := range j.sc.errs {
		t.Error(e)
	}
}

// joinedThreads lists the threads a client received records of before
// replay_complete.
func (j *joinedClient) joinedThreads() []string {
	return slices.Sorted(maps.Keys(j.joined))
}

// topicLog is every record of a topic, read in the background.
type topicLog struct {
	mu   sync.Mutex
	recs map[int32][]*kgo.Record
}

func (l *topicLog) snapshot() map[int32][]*kgo.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[int32][]*kgo.Record, len(l.recs))
	for p, rs := range l.recs {
		out[p] = slices.Clone(rs)
	}
	return out
}

// upTo waits until the log holds every partition of heads up to its last
// offset and returns a snapshot.
func (l *topicLog) upTo(t testing.TB, heads map[int32]int64) map[int32][]*kgo.Record {
	t.Helper()
	var snap map[int32][]*kgo.Record
	testenv.WaitFor(t, 30*time.Second, func() bool {
		snap = l.snapshot()
		last := lastOffsets(snap)
		for p, o := range heads {
			if o >= 0 && last[p] < o {
				return false
			}
		}
		return true
	}, fmt.Sprintf("the topic's log reaches %v", heads))
	return snap
}

// readTopic consumes topic from its start into a topicLog until the test
// ends.
func readTopic(t testing.TB, brokers []string, topic string) *topicLog {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	l := &topicLog{recs: map[int32][]*kgo.Record{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			l.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) { l.recs[r.Partition] = append(l.recs[r.Partition], r) })
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	return l
}

// logRun is one thread as the topic's log up to some heads has it.
type logRun struct {
	partition int32
	started   bool  // GRAPH_START seen
	ended     bool  // GRAPH_END or GRAPH_ERROR seen after it
	full      int64 // offset of its latest full-state record; -1: none
	offsets   []int64
	diffs     int // StateDiffs
}

// runsUpTo reads the log's runs up to the heads (last offsets).
func runsUpTo(t testing.TB, log map[int32][]*kgo.Record, heads map[int32]int64) map[string]*logRun {
	t.Helper()
	runs := map[string]*logRun{}
	for p, recs := range log {
		for _, r := range recs {
			if r.Offset > headOf(heads, p) {
				break
			}
			d, err := joinDecoder.Decode(r.Value)
			if err != nil {
				t.Fatalf("log %d/%d: %v", p, r.Offset, err)
			}
			m, th := d.Message, d.Header().GetThreadId()
			lr := runs[th]
			if lr == nil {
				lr = &logRun{partition: p, full: -1}
				runs[th] = lr
			}
			if lr.partition != p {
				t.Fatalf("thread %s on partitions %d and %d", th, lr.partition, p)
			}
			lr.offsets = append(lr.offsets, r.Offset)
			switch graphEvent(m) {
			case pb.EventType_EVENT_TYPE_GRAPH_START:
				lr.started, lr.ended = true, false
			case pb.EventType_EVENT_TYPE_GRAPH_END, pb.EventType_EVENT_TYPE_GRAPH_ERROR:
				lr.ended = true
			}
			if _, ok := fullStateOf(m); ok {
				lr.full = r.Offset
			}
			if m.GetStateDiff() != nil {
				lr.diffs++
			}
		}
	}
	return runs
}

// lateFull lists the threads with a full-state record past the heads.
func lateFull(t testing.TB, log map[int32][]*kgo.Record, heads map[int32]int64) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for p, recs := range log {
		for _, r := range recs {
			if r.Offset <= headOf(heads, p) {
				continue
			}
			d, err := joinDecoder.Decode(r.Value)
			if err != nil {
				t.Fatalf("log %d/%d: %v", p, r.Offset, err)
			}
			if _, ok := fullStateOf(d.Message); ok {
				out[d.Header().GetThreadId()] = true
			}
		}
	}
	return out
}

// headOf is the head of p in heads, -1 when heads has none: a partition
// still empty when the gateway read its heads (not 0, the map's zero
// value, which would count the partition's first record as below them).
func headOf(heads map[int32]int64, p int32) int64 {
	if o, ok := heads[p]; ok {
		return o
	}
	return -1
}

// lastOffsets is the last offset per partition of a log snapshot.
func lastOffsets(log map[int32][]*kgo.Record) map[int32]int64 {
	out := map[int32]int64{}
	for p, rs := range log {
		if len(rs) > 0 {
			out[p] = rs[len(rs)-1].Offset
		}
	}
	return out
}

// assertJoined checks a client's join against the log up to the heads
// replay_complete reported: exactly the active runs admitted (started, not
// ended, a full-state record held), each from its latest full-state record
// to the heads, every one of its records once and in order. A run whose
// newest full state came after the heads (late: published while the join
// ran) may be left out: the gateway then sends it from that full state on,
// live, which the client's state check verifies.
func assertJoined(t testing.TB, j *joinedClient, runs map[string]*logRun, late map[string]bool, admit func(string) bool) {
	t.Helper()
	want := map[string][]int64{}
	for th, lr := range runs {
		if !admit(th) || !lr.started || lr.ended || lr.full < 0 {
			continue
		}
		if _, joined := j.joined[th]; !joined && late[th] {
			t.Logf("%s: %s not joined: its newest full state is past the heads", j.name, th)
			continue
		}
		for _, o := range lr.offsets {
			if o >= lr.full {
				want[th] = append(want[th], o)
			}
		}
	}
	if got, w := j.joinedThreads(), slices.Sorted(maps.Keys(want)); !slices.Equal(got, w) {
		t.Errorf("%s: joined threads %v, want the active ones %v", j.name, got, w)
	}
	for th, offs := range want {
		var got []int64
		for _, r := range j.joined[th] {
			if r.Partition != runs[th].partition {
				t.Errorf("%s: %s joined on partition %d, its records are on %d", j.name, th, r.Partition, runs[th].partition)
			}
			got = append(got, r.Offset)
		}
		if !slices.Equal(got, offs) {
			t.Errorf("%s: %s joined offsets %v, want its latest full state on: %v", j.name, th, got, offs)
		}
	}
}

// TestJoinCheckpointDemoStateHash joins the demo workload mid-way: a v2
// client without a filter, a v2 client whose thread filter names two
// running runs and an ended one, and a v1 client resuming from latest under
// WEBSOCKET_LATEST_JOIN=checkpoint. Each receives, per active run, its
// records from its latest full-state record (first, always a full state)
// up to the heads, and nothing of ended runs; applying them with the
// workload's own patch and canonical code gives states whose hashes equal
// every later StateDiff's state_hash and GRAPH_END's final_state_hash.
func TestJoinCheckpointDemoStateHash(t *testing.T) {
	const topic = "demo-join"
	env := map[string]string{
		"KAFKA_TOPIC":           topic,
		"EMBEDDED_KAFKA_ADDR":   "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
		"WEBSOCKET_LATEST_JOIN": "checkpoint",
	}
	g := startGateway(t, env, demo())
	log := readTopic(t, g.KafkaBrokers(), topic)

	// Mid-way: at least two runs that started and published StateDiffs
	// and have not ended, and a run that ended.
	var running, ended []string
	testenv.WaitFor(t, 90*time.Second, func() bool {
		snap := log.snapshot()
		runs := runsUpTo(t, snap, lastOffsets(snap))
		running, ended = nil, nil
		for th, lr := range runs {
			switch {
			case lr.started && lr.ended:
				ended = append(ended, th)
			case lr.started && lr.diffs >= 2:
				running = append(running, th)
			}
		}
		return len(running) >= 2 && len(ended) >= 1
	}, "demo runs mid-way and one ended")
	slices.Sort(running)
	filtered := []string{running[0], running[1], ended[0]}
	filter, err := json.Marshal(map[string]any{"threads": filtered})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := func(name string, opts wsclient.Options) *joinedClient {
		c, err := wsclient.Dial(ctx, g.ws, opts)
		if err != nil {
			t.Fatalf("%s: dial: %v", name, err)
		}
		t.Cleanup(func() { c.CloseNow() })
		if c.V2() != opts.V2 {
			t.Fatalf("%s: v2 %v, asked %v", name, c.V2(), opts.V2)
		}
		return newJoinedClient(name, c)
	}
	join := wsclient.Resume{From: wsclient.FromLatest, Join: "checkpoint"}
	fr := join
	fr.Filter = filter
	clients := []*joinedClient{
		dial("v2 all", wsclient.Options{V2: true, Resume: &join}),
		dial("v2 threads", wsclient.Options{V2: true, Resume: &fr}),
		dial("v1 latest", wsclient.Options{Resume: &wsclient.Resume{From: wsclient.FromLatest}}),
	}
	admits := []func(string) bool{
		func(string) bool { return true },
		func(th string) bool { return slices.Contains(filtered, th) },
		func(string) bool { return true },
	}
	for i, j := range clients {
		j.readJoin(t, 30*time.Second)
		heads := rcLast(j.rc)
		if j.rc.Mode != "latest" {
			t.Errorf("%s: replay_complete mode %q", j.name, j.rc.Mode)
		}
		snap := log.upTo(t, heads)
		assertJoined(t, j, runsUpTo(t, snap, heads), lateFull(t, snap, heads), admits[i])
		if len(j.joined) < 2 && i != 1 {
			t.Errorf("%s: joined %d runs, want the demo's several concurrent ones", j.name, len(j.joined))
		}
		if got := len(j.joined); i == 1 && got > 2 {
			t.Errorf("%s: joined %d runs of a filter naming two running ones", j.name, got)
		}
		if j.rc.TotalReplayed != j.s.recordsBefore("replay_complete") {
			t.Errorf("%s: totalReplayed %d, %d records joined", j.name, j.rc.TotalReplayed, j.s.recordsBefore("replay_complete"))
		}
	}

	// Live: every joined run's next StateDiffs, up to its GRAPH_END's
	// final_state_hash, agree with the state rebuilt from the join.
	for _, j := range clients {
		ended := func() bool {
			for th := range j.joined {
				if rs := j.sc.runs[th]; rs == nil || !rs.ended {
					return false
				}
			}
			return true
		}
		j.readWhile(t, 120*time.Second, "every joined run to its GRAPH_END", ended)
		for th := range j.joined {
			if rs := j.sc.runs[th]; rs.hashes == 0 {
				t.Errorf("%s: %s ended without a hash to check", j.name, th)
			}
		}
		j.check(t)
		n := 0
		for _, rs := range j.sc.runs {
			n += rs.hashes
		}
		t.Logf("%s: joined %d runs with %d records; %d hashes checked over %d runs", j.name, len(j.joined),
			j.rc.TotalReplayed, n, len(j.sc.runs))
	}
}

// workloadRun feeds one run of a one-thread workload.
type workloadRun struct {
	w      *devbroker.Workload
	thread string
	ended  bool
	diffs  int
}

func newWorkloadRun(t testing.TB, seed int64) *workloadRun {
	t.Helper()
	return &workloadRun{w: devbroker.NewWorkload(devbroker.WorkloadConfig{Threads: 1, Seed: seed})}
}

// next returns the run's next records until stop holds after one (or the
// run ended), stamped now.
func (wr *workloadRun) next(t testing.TB, stop func(*pb.DashStreamMessage) bool) [][]byte {
	t.Helper()
	var out [][]byte
	for !wr.ended {
		key, v, err := wr.w.Next()
		if err != nil {
			t.Fatal(err)
		}
		if wr.thread == "" {
			wr.thread = key
		} else if key != wr.thread {
			t.Fatalf("workload moved on to %s before %s ended", key, wr.thread)
		}
		d, err := joinDecoder.Decode(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
		m := d.Message
		if m.GetStateDiff() != nil {
			wr.diffs++
		}
		wr.ended = graphEvent(m) == pb.EventType_EVENT_TYPE_GRAPH_END
		if stop(m) {
			break
		}
	}
	return out
}

// produceRun produces values to partition p of topic, keyed by thread, and
// returns the last offset.
func produceRun(t testing.TB, k *testenv.KafkaEnv, topic string, p int32, thread string, values [][]byte) int64 {
	t.Helper()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Partition: p, Key: []byte(thread), Value: v}
	}
	offs := k.ProduceRecords(t, recs...)
	return offs[len(offs)-1]
}

// TestJoinCheckpointSkipsEndedAndSilentRuns: on real Kafka, with the demo
// workload's runs produced at chosen times and a short
// WEBSOCKET_JOIN_WINDOW_SECS, a join replays a run that is running and
// recent, never one that ended (GRAPH_END) and not one silent for longer
// than the window (joined while it was recent: the window is what excludes
// it), in v2 with and without a thread filter naming all of them, and in
// v1; the joined run's state then matches its next state_hash.
func TestJoinCheckpointSkipsEndedAndSilentRuns(t *testing.T) {
	const window = 4 * time.Second
	k, topic := kafkaEnv(t, 2)
	env := gatewayEnv(k, topic)
	env["WEBSOCKET_JOIN_WINDOW_SECS"] = strconv.Itoa(int(window.Seconds()))
	env["WEBSOCKET_LATEST_JOIN"] = "checkpoint"
	g := startGateway(t, env)
	log := readTopic(t, k.Brokers, topic)

	afterDiffs := func(wr *workloadRun, n int) func(*pb.DashStreamMessage) bool {
		return func(*pb.DashStreamMessage) bool { return wr.diffs >= n }
	}
	silent, recent, done := newWorkloadRun(t, 11), newWorkloadRun(t, 12), newWorkloadRun(t, 13)
	vs := silent.next(t, afterDiffs(silent, 2))
	heads := map[int32]int64{0: produceRun(t, k, topic, 0, silent.thread, vs)}
	if silent.ended {
		t.Fatal("the silent run ended already: choose another seed")
	}
	waitHeads(t, g, heads, 30*time.Second)

	joinOnce := func(name string, opts wsclient.Options) *joinedClient {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := wsclient.Dial(ctx, g.ws, opts)
		if err != nil {
			t.Fatalf("%s: dial: %v", name, err)
		}
		t.Cleanup(func() { c.CloseNow() })
		j := newJoinedClient(name, c)
		j.readJoin(t, 30*time.Second)
		return j
	}
	join := &wsclient.Resume{From: wsclient.FromLatest, Join: "checkpoint"}
	// While recent, the run is joined: the window below is what excludes it.
	if j := joinOnce("v2 before the window", wsclient.Options{V2: true, Resume: join}); !slices.Equal(j.joinedThreads(), []string{silent.thread}) {
		t.Fatalf("joined %v while %s was recent", j.joinedThreads(), silent.thread)
	} else {
		j.check(t)
	}

	time.Sleep(window + time.Second)
	vs = done.next(t, func(*pb.DashStreamMessage) bool { return false })
	heads[0] = produceRun(t, k, topic, 0, done.thread, vs)
	if !done.ended {
		t.Fatal("the ended run did not end")
	}
	vs = recent.next(t, afterDiffs(recent, 2))
	heads[1] = produceRun(t, k, topic, 1, recent.thread, vs)
	if recent.ended {
		t.Fatal("the recent run ended already: choose another seed")
	}
	waitHeads(t, g, heads, 30*time.Second)

	all, err := json.Marshal(map[string]any{"threads": []string{silent.thread, recent.thread, done.thread}})
	if err != nil {
		t.Fatal(err)
	}
	clients := []*joinedClient{
		joinOnce("v2 all", wsclient.Options{V2: true, Resume: join}),
		joinOnce("v2 threads", wsclient.Options{V2: true, Resume: &wsclient.Resume{From: wsclient.FromLatest, Join: "checkpoint", Filter: all}}),
		joinOnce("v1 latest", wsclient.Options{Resume: &wsclient.Resume{From: wsclient.FromLatest}}),
	}
	for _, j := range clients {
		if got := j.joinedThreads(); !slices.Equal(got, []string{recent.thread}) {
			t.Errorf("%s: joined %v, want only the recent running run %s (silent %s, ended %s)",
				j.name, got, recent.thread, silent.thread, done.thread)
		}
		runs := runsUpTo(t, log.upTo(t, rcLast(j.rc)), rcLast(j.rc))
		if lr := runs[recent.thread]; lr == nil || lr.offsets[len(lr.offsets)-1] != heads[1] {
			t.Errorf("%s: heads %v short of %s's last record %d", j.name, rcLast(j.rc), recent.thread, heads[1])
		}
		assertJoined(t, j, runs, nil, func(th string) bool { return th != silent.thread })
	}

	// The recent run goes on: its next StateDiff matches each client's state.
	vs = recent.next(t, afterDiffs(recent, recent.diffs+1))
	produceRun(t, k, topic, 1, recent.thread, vs)
	for _, j := range clients {
		before := j.sc.runs[recent.thread].hashes
		j.readWhile(t, 30*time.Second, "the recent run's next state_hash", func() bool {
			return j.sc.runs[recent.thread].hashes > before
		})
		j.check(t)
	}
}
