package app

// Helpers of the replay end-to-end tests (issue 4, "Durable, exact replay").
// Every name starts with "rp" so that they never collide with the helpers of
// other test files of this package.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// rpKey identifies a Kafka record.
type rpKey struct {
	p int32
	o int64
}

// rpLog is everything produced to a test's topic: the value of every record
// and, per partition, the next offset (everything below it is in the log).
// Safe for concurrent use (the background producer writes while clients
// check what they receive).
type rpLog struct {
	mu      sync.RWMutex
	vals    map[rpKey][]byte
	next    map[int32]int64
	seq     map[int32]uint64
	changed chan struct{} // closed (and replaced) by every add
}

func rpNewLog() *rpLog {
	return &rpLog{vals: map[rpKey][]byte{}, next: map[int32]int64{}, seq: map[int32]uint64{},
		changed: make(chan struct{})}
}

// nextSeq reserves the next n sequences of partition p's thread.
func (l *rpLog) nextSeq(p int32, n int) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.seq[p]
	l.seq[p] = s + uint64(n)
	return s
}

func (l *rpLog) add(p int32, offs []int64, vals [][]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, o := range offs {
		l.vals[rpKey{p, o}] = vals[i]
		l.next[p] = max(l.next[p], o+1)
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// value returns the produced value of p@o. A background produce may be
// acknowledged to the gateway's consumer before to the producer: a record
// not known yet is waited for (bounded).
func (l *rpLog) value(p int32, o int64) ([]byte, bool) {
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		l.mu.RLock()
		v, ok := l.vals[rpKey{p, o}]
		changed := l.changed
		l.mu.RUnlock()
		if ok {
			return v, true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return nil, false
		}
	}
}

// ends returns, per partition, the next offset to be produced.
func (l *rpLog) ends() map[int32]int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make(map[int32]int64, len(l.next))
	for p, o := range l.next {
		out[p] = o
	}
	return out
}

// total is the number of records produced.
func (l *rpLog) total() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.vals)
}

// rpEvent encodes a valid DashStream Event of thread at seq, stamped now.
func rpEvent(thread string, seq uint64) ([]byte, error) {
	msg := &dashstreampb.DashStreamMessage{Message: &dashstreampb.DashStreamMessage_Event{Event: &dashstreampb.Event{
		Header: &dashstreampb.Header{ThreadId: thread, Sequence: seq, TimestampUs: time.Now().UnixMicro(),
			Type: dashstreampb.MessageType_MESSAGE_TYPE_EVENT, TenantId: "test"},
		EventType: dashstreampb.EventType_EVENT_TYPE_NODE_START, NodeId: "n"}}}
	return dashstream.Encode(msg, dashstream.FramingPlain)
}

// rpValues encodes n events of partition p's thread, continuing its sequence.
func (l *rpLog) values(p int32, n int) ([][]byte, error) {
	s0 := l.nextSeq(p, n)
	vals := make([][]byte, n)
	for i := range vals {
		v, err := rpEvent("t"+strconv.Itoa(int(p)), s0+uint64(i)+1)
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	return vals, nil
}

// produce writes n events to each partition of ps synchronously (from the
// test goroutine) and records them.
func (l *rpLog) produce(t testing.TB, k *testenv.KafkaEnv, topic string, n int, ps ...int32) {
	t.Helper()
	for _, p := range ps {
		for done := 0; done < n; {
			chunk := min(n-done, 2000)
			vals, err := l.values(p, chunk)
			if err != nil {
				t.Fatal(err)
			}
			l.add(p, k.Produce(t, topic, p, vals...), vals)
			done += chunk
		}
	}
}

// rpProducer produces to every partition in the background until stopped.
type rpProducer struct {
	stop chan struct{}
	done chan struct{}
	err  error
	n    int
}

// rpStartProducer produces perTick events to each partition every interval.
// It is stopped at cleanup at the latest; Stop returns its first error.
func rpStartProducer(t testing.TB, k *testenv.KafkaEnv, topic string, l *rpLog, partitions int32, perTick int, interval time.Duration) *rpProducer {
	t.Helper()
	cl := k.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	pr := &rpProducer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(pr.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-pr.stop:
				return
			case <-tick.C:
			}
			if err := pr.once(cl, topic, l, partitions, perTick); err != nil {
				pr.err = err
				return
			}
		}
	}()
	t.Cleanup(func() { pr.Stop() })
	return pr
}

func (pr *rpProducer) once(cl *kgo.Client, topic string, l *rpLog, partitions int32, perTick int) error {
	var recs []*kgo.Record
	for p := range partitions {
		vals, err := l.values(p, perTick)
		if err != nil {
			return err
		}
		for _, v := range vals {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: v})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, res := range cl.ProduceSync(ctx, recs...) {
		if res.Err != nil {
			return fmt.Errorf("background produce to p%d: %w", res.Record.Partition, res.Err)
		}
		l.add(res.Record.Partition, []int64{res.Record.Offset}, [][]byte{res.Record.Value})
		pr.n++
	}
	return nil
}

// Stop stops the producer (idempotent) and returns its error.
func (pr *rpProducer) Stop() error {
	select {
	case <-pr.stop:
	default:
		close(pr.stop)
	}
	<-pr.done
	return pr.err
}

// rpStream checks what one client applied, possibly over several
// connections: per partition, offsets follow each other with no duplicate
// and no hole, and every value is the produced one, byte for byte.
type rpStream struct {
	log  *rpLog
	last map[int32]int64 // last offset applied
	n    int             // records applied
}

func rpNewStream(l *rpLog, cursor map[int32]int64) *rpStream {
	s := &rpStream{log: l, last: map[int32]int64{}}
	for p, o := range cursor {
		s.last[p] = o
	}
	return s
}

// apply checks and applies one record.
func (s *rpStream) apply(r wsclient.Record) error {
	last, ok := s.last[r.Partition]
	if !ok {
		return fmt.Errorf("p%d@%d: record of a partition without a cursor", r.Partition, r.Offset)
	}
	switch {
	case r.Offset <= last:
		return fmt.Errorf("p%d@%d: duplicate or out of order (last applied %d)", r.Partition, r.Offset, last)
	case r.Offset != last+1:
		return fmt.Errorf("p%d@%d: hole %d..%d (last applied %d)", r.Partition, r.Offset, last+1, r.Offset-1, last)
	}
	want, ok := s.log.value(r.Partition, r.Offset)
	if !ok {
		return fmt.Errorf("p%d@%d: never produced", r.Partition, r.Offset)
	}
	if !bytes.Equal(r.Value, want) {
		return fmt.Errorf("p%d@%d: value differs from the produced one", r.Partition, r.Offset)
	}
	s.last[r.Partition] = r.Offset
	s.n++
	return nil
}

// reached reports whether every partition of ends was applied up to ends-1.
func (s *rpStream) reached(ends map[int32]int64) bool {
	for p, e := range ends {
		if s.last[p] < e-1 {
			return false
		}
	}
	return true
}

// cursor is the client's cursor (a copy).
func (s *rpStream) cursor() map[int32]int64 {
	out := make(map[int32]int64, len(s.last))
	for p, o := range s.last {
		out[p] = o
	}
	return out
}

// rpCursorAll is a cursor of o on partitions 0..n-1.
func rpCursorAll(n int32, o int64) map[int32]int64 {
	out := make(map[int32]int64, n)
	for p := range n {
		out[p] = o
	}
	return out
}

// rpRead reads messages until fn returns true; records are checked against
// s (when s is not nil) before fn sees them. Protocol and exactness errors,
// and the timeout, are returned.
func rpRead(c *wsclient.Conn, s *rpStream, timeout time.Duration, fn func(wsclient.Message) (bool, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		m, err := c.Next(ctx)
		if err != nil {
			if s != nil {
				return fmt.Errorf("after %d records (cursor %v): %w", s.n, s.last, err)
			}
			return err
		}
		if m.Kind == wsclient.KindRecord && s != nil {
			m.Record.Value = bytes.Clone(m.Record.Value)
			if err := s.apply(m.Record); err != nil {
				return fmt.Errorf("%w: %w", errRPExact, err)
			}
		}
		done, err := fn(m)
		if err != nil || done {
			return err
		}
	}
}

// errRPExact marks a duplicate, a hole or a wrong value (as opposed to a
// connection that ended).
var errRPExact = errors.New("not exact")

// rpReadUntilEnds reads (checking exactness) until s reached ends.
func rpReadUntilEnds(t testing.TB, c *wsclient.Conn, s *rpStream, ends map[int32]int64, timeout time.Duration) []wsclient.Control {
	t.Helper()
	var ctrls []wsclient.Control
	if s.reached(ends) {
		return nil
	}
	err := rpRead(c, s, timeout, func(m wsclient.Message) (bool, error) {
		if m.Kind == wsclient.KindControl {
			ctrls = append(ctrls, m.Control)
			if rpBadControl(m.Control.Type) {
				return false, fmt.Errorf("unexpected %s frame: %s", m.Control.Type, m.Control.Raw)
			}
		}
		return s.reached(ends), nil
	})
	if err != nil {
		t.Fatalf("reading to %v: %v", ends, err)
	}
	return ctrls
}

// rpBadControl: frames that must never reach a client whose data is retained.
func rpBadControl(typ string) bool {
	switch typ {
	case "gap", "cursor_stale", "error", "disconnect", "skipped":
		return true
	}
	return false
}

// rpReplayComplete reads (checking exactness) until replay_complete and
// returns it with the records applied before it.
func rpReplayComplete(t testing.TB, c *wsclient.Conn, s *rpStream, timeout time.Duration) (wsclient.ReplayComplete, int) {
	t.Helper()
	var rc wsclient.ReplayComplete
	n0 := s.n
	err := rpRead(c, s, timeout, func(m wsclient.Message) (bool, error) {
		if m.Kind != wsclient.KindControl {
			return false, nil
		}
		if rpBadControl(m.Control.Type) {
			return false, fmt.Errorf("unexpected %s frame: %s", m.Control.Type, m.Control.Raw)
		}
		if m.Control.Type != "replay_complete" {
			return false, nil
		}
		return true, m.Control.Decode(&rc)
	})
	if err != nil {
		t.Fatalf("waiting for replay_complete: %v", err)
	}
	return rc, s.n - n0
}

// rpDial connects a client resuming from cursor (from:"cursor").
func rpDial(g *gateway, cursor map[int32]int64) *wsclient.Conn {
	g.t.Helper()
	return g.dial(&wsclient.Resume{From: wsclient.FromCursor, Offsets: cursor})
}

// rpWaitHeads waits until g's hub handed every partition up to ends-1.
func rpWaitHeads(t testing.TB, g *gateway, ends map[int32]int64, timeout time.Duration) {
	t.Helper()
	testenv.WaitFor(t, timeout, func() bool {
		h := g.Hub().Heads()
		for p, e := range ends {
			if o, ok := h[p]; !ok || o < e-1 {
				return false
			}
		}
		return true
	}, fmt.Sprintf("gateway heads reach %v", ends))
}

// rpHealth is the part of /health these tests read.
type rpHealth struct {
	Status       string `json:"status"`
	Alert        string `json:"alert"`
	ReplayBuffer struct {
		MemoryBufferSize   int    `json:"memory_buffer_size"`
		RedisEnabled       bool   `json:"redis_enabled"`
		MemoryHits         uint64 `json:"memory_hits"`
		RedisHits          uint64 `json:"redis_hits"`
		RedisMisses        uint64 `json:"redis_misses"`
		RedisWriteDropped  uint64 `json:"redis_write_dropped"`
		RedisWriteFailures uint64 `json:"redis_write_failures"`
	} `json:"replay_buffer"`
}

func rpGetHealth(t testing.TB, g *gateway) rpHealth {
	t.Helper()
	code, body := g.get("/health")
	if code != http.StatusOK {
		t.Fatalf("/health: %d %s", code, body)
	}
	var h rpHealth
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatalf("/health: %v: %s", err, body)
	}
	return h
}

// rpMetric returns the value of one sample of /metrics (series written as
// in the exposition, e.g. `websocket_replay_tier_hits_total{tier="kafka"}`);
// 0 when absent.
func rpMetric(t testing.TB, g *gateway, series string) float64 {
	t.Helper()
	code, body := g.get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("/metrics %s: %v", line, err)
			}
			return v
		}
	}
	return 0
}

func rpTierHits(t testing.TB, g *gateway, tier string) float64 {
	t.Helper()
	return rpMetric(t, g, `websocket_replay_tier_hits_total{tier="`+tier+`"}`)
}

// rpNamespace is g's resume namespace (/version), which names its Redis keys.
func rpNamespace(t testing.TB, g *gateway) string {
	t.Helper()
	var ns string
	testenv.WaitFor(t, 10*time.Second, func() bool {
		_, body := g.get("/version")
		var v struct {
			NS string `json:"resume_namespace"`
		}
		if json.Unmarshal(body, &v) == nil {
			ns = v.NS
		}
		return ns != ""
	}, "resume_namespace in /version")
	return ns
}

// rpLogKey is the Redis stream of partition p (replay/redis.go's layout).
func rpLogKey(ns string, p int32) string {
	return "dashstream-replay:{" + ns + ":p" + strconv.Itoa(int(p)) + "}:log"
}

// rpKeys lists the Redis keys of namespace ns.
func rpKeys(t testing.TB, rc *redis.Client, ns string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var keys []string
	iter := rc.Scan(ctx, 0, "dashstream-replay:{"+ns+":*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("scan keys of %s: %v", ns, err)
	}
	sort.Strings(keys)
	return keys
}

// rpDeleteKeys deletes the Redis keys of namespace ns (what FLUSHDB does
// to this test, without touching other tests' keys) and returns how many.
func rpDeleteKeys(t testing.TB, rc *redis.Client, ns string) int {
	t.Helper()
	keys := rpKeys(t, rc, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for k := range slices.Chunk(keys, 500) {
		if err := rc.Unlink(ctx, k...).Err(); err != nil {
			t.Fatalf("unlink keys of %s: %v", ns, err)
		}
	}
	return len(keys)
}

// rpCleanupKeys deletes the namespace's keys when the test ends (a topic's
// namespace never contains the RedisEnv prefix, so testenv cannot).
func rpCleanupKeys(t testing.TB, rc *redis.Client, ns string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := rc.Scan(ctx, 0, "dashstream-replay:{"+ns+":*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			_ = rc.Unlink(ctx, keys...).Err()
		}
	})
}

// rpRedisLen is the number of entries of partition p's stream and its
// newest offset (-1 when empty or unreachable).
func rpRedisLen(rc *redis.Client, ns string, p int32) (int64, int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := rc.XLen(ctx, rpLogKey(ns, p)).Result()
	if err != nil {
		return 0, -1
	}
	top, err := rc.XRevRangeN(ctx, rpLogKey(ns, p), "+", "-", 1).Result()
	if err != nil || len(top) == 0 {
		return n, -1
	}
	id, _, _ := strings.Cut(top[0].ID, "-")
	o, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return n, -1
	}
	return n, o
}

// rpWaitRedis waits until Redis holds every partition of ends up to ends-1.
func rpWaitRedis(t testing.TB, rc *redis.Client, ns string, ends map[int32]int64, timeout time.Duration) {
	t.Helper()
	testenv.WaitFor(t, timeout, func() bool {
		for p, e := range ends {
			if _, newest := rpRedisLen(rc, ns, p); newest < e-1 {
				return false
			}
		}
		return true
	}, fmt.Sprintf("redis holds %v", ends))
}

// rpPost sends POST path with an optional bearer token.
func rpPost(t testing.TB, g *gateway, path, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// rpRedisEnv is a gateway env on the shared Redis plus extra settings.
func rpRedisEnv(k *testenv.KafkaEnv, topic, redisURL string, extra map[string]string) map[string]string {
	env := gatewayEnv(k, topic)
	if redisURL != "" {
		env["REDIS_URL"] = redisURL
	}
	for key, v := range extra {
		env[key] = v
	}
	return env
}

// rpQuantiles returns p50, p99 and max of ds (zeros when empty).
func rpQuantiles(ds []time.Duration) (p50, p99, mx time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(f float64) time.Duration { return s[min(len(s)-1, int(f*float64(len(s))))] }
	return q(0.50), q(0.99), s[len(s)-1]
}

// rpReader reads one client in the background, checking exactness, until
// the stream reached the ends given to finish (or the connection ends).
type rpReader struct {
	c      *wsclient.Conn
	n      atomic.Int64                    // records applied
	target atomic.Pointer[map[int32]int64] // stop once reached
	done   chan struct{}
	err    error // set before done closes
	mu     sync.Mutex
	ctrls  []wsclient.Control
	stream *rpStream // owned by the reader goroutine until done
}

func rpStartReader(t testing.TB, c *wsclient.Conn, s *rpStream) *rpReader {
	rd := &rpReader{c: c, done: make(chan struct{}), stream: s}
	go func() {
		defer close(rd.done)
		rd.err = rpRead(c, s, 5*time.Minute, func(m wsclient.Message) (bool, error) {
			rd.n.Store(int64(s.n))
			if m.Kind == wsclient.KindControl {
				rd.mu.Lock()
				rd.ctrls = append(rd.ctrls, m.Control)
				rd.mu.Unlock()
				if rpBadControl(m.Control.Type) {
					return false, fmt.Errorf("unexpected %s frame: %s", m.Control.Type, m.Control.Raw)
				}
			}
			if e := rd.target.Load(); e != nil && s.reached(*e) {
				return true, nil
			}
			return false, nil
		})
	}()
	t.Cleanup(func() { c.CloseNow(); <-rd.done })
	return rd
}

// waitCount waits until at least n records were applied.
func (rd *rpReader) waitCount(t testing.TB, n int64, timeout time.Duration) {
	t.Helper()
	testenv.WaitFor(t, timeout, func() bool {
		select {
		case <-rd.done:
			t.Fatalf("reader stopped after %d records: %v", rd.n.Load(), rd.err)
		default:
		}
		return rd.n.Load() >= n
	}, fmt.Sprintf("client applied %d records", n))
}

// finish waits until the stream reached ends and returns it.
func (rd *rpReader) finish(t testing.TB, ends map[int32]int64, timeout time.Duration) *rpStream {
	t.Helper()
	rd.target.Store(&ends)
	// A stream that already reached ends waits for its next message: nudge
	// it with a ping (answered by a pong).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = rd.c.Send(ctx, map[string]string{"type": "ping"})
	cancel()
	select {
	case <-rd.done:
	case <-time.After(timeout):
		t.Fatalf("client did not reach %v within %v (%d records)", ends, timeout, rd.n.Load())
	}
	if rd.err != nil {
		t.Fatalf("client: %v", rd.err)
	}
	return rd.stream
}

// rpReadStaleReplay reads the resume of a cursor on p0 that Kafka's log
// start passed: cursor_stale{requested cursor, oldest logStart}, then the
// gap cursor+1..logStart-1 (reason retention, the given severity), then
// records, then replay_complete, in exactly that order. It moves s past
// the gap and returns the replay_complete.
func rpReadStaleReplay(t *testing.T, c *wsclient.Conn, s *rpStream, cursor, logStart int64, severity string) wsclient.ReplayComplete {
	t.Helper()
	var order []string
	var rc wsclient.ReplayComplete
	err := rpRead(c, s, rpArrive, func(m wsclient.Message) (bool, error) {
		if m.Kind == wsclient.KindRecord {
			if len(order) == 0 || order[len(order)-1] != "records" {
				order = append(order, "records")
			}
			return false, nil
		}
		order = append(order, m.Control.Type)
		switch m.Control.Type {
		case "cursor_stale":
			var cs wsclient.CursorStale
			if err := m.Control.Decode(&cs); err != nil {
				return false, err
			}
			if cs.Partition != 0 || int64(cs.Requested) != cursor || int64(cs.Oldest) != logStart {
				return false, fmt.Errorf("cursor_stale %+v, want partition 0, requested %d, oldest %d", cs, cursor, logStart)
			}
		case "gap":
			var gp wsclient.Gap
			if err := m.Control.Decode(&gp); err != nil {
				return false, err
			}
			if gp.Partition != 0 || int64(gp.FromOffset) != cursor+1 || int64(gp.ToOffset) != logStart-1 ||
				gp.Reason != "retention" || gp.Count != logStart-cursor-1 || gp.Severity != severity {
				return false, fmt.Errorf("gap %+v, want p0 %d..%d (%d records) %s retention", gp, cursor+1, logStart-1, logStart-cursor-1, severity)
			}
			s.last[0] = int64(gp.ToOffset) // announced: the client moves past it
		case "replay_complete":
			return true, m.Control.Decode(&rc)
		default:
			return false, fmt.Errorf("unexpected %s frame: %s", m.Control.Type, m.Control.Raw)
		}
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "[cursor_stale gap records replay_complete]"; fmt.Sprint(order) != want {
		t.Fatalf("frame order %v, want %s", order, want)
	}
	return rc
}
