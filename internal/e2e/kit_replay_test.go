package e2e

// The kit's exactness checks (doc.go describes the whole kit): the
// produced log, a background producer, a client's cursor checked against
// the log as records arrive, readers that check as they read, and the
// Redis tier's keys.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

	"github.com/dashflow/dashstream-gateway/internal/testenv"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// arrive bounds how long records take to arrive: generous, the box has 2
// cores shared with Kafka, Redis and the race detector.
const arrive = 30 * time.Second

// recKey identifies a Kafka record.
type recKey struct {
	p int32
	o int64
}

// produced is everything produced to a test's topic: the value of every
// record and, per partition, the last offset (everything up to it is in
// the log).
// Safe for concurrent use (the background producer writes while clients
// check what they receive).
type produced struct {
	mu      sync.RWMutex
	vals    map[recKey][]byte
	next    map[int32]int64
	seq     map[int32]uint64
	changed chan struct{} // closed (and replaced) by every add
}

func newProduced() *produced {
	return &produced{vals: map[recKey][]byte{}, next: map[int32]int64{}, seq: map[int32]uint64{},
		changed: make(chan struct{})}
}

// nextSeq reserves the next n sequences of partition p's thread.
func (l *produced) nextSeq(p int32, n int) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.seq[p]
	l.seq[p] = s + uint64(n)
	return s
}

func (l *produced) add(p int32, offs []int64, vals [][]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, o := range offs {
		l.vals[recKey{p, o}] = vals[i]
		l.next[p] = max(l.next[p], o+1)
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// value returns the produced value of p@o. A background produce may be
// acknowledged to the gateway's consumer before to the producer: a record
// not known yet is waited for (bounded).
func (l *produced) value(p int32, o int64) ([]byte, bool) {
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		l.mu.RLock()
		v, ok := l.vals[recKey{p, o}]
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

// last returns, per partition, the last offset produced.
func (l *produced) last() map[int32]int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make(map[int32]int64, len(l.next))
	for p, o := range l.next {
		out[p] = o - 1
	}
	return out
}

// total is the number of records produced.
func (l *produced) total() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.vals)
}

// values encodes n events of partition p's thread, continuing its sequence.
func (l *produced) values(p int32, n int) ([][]byte, error) {
	s0 := l.nextSeq(p, n)
	vals := make([][]byte, n)
	for i := range vals {
		v, err := eventValue("t"+strconv.Itoa(int(p)), s0+uint64(i)+1)
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	return vals, nil
}

// produce writes n events to each partition of ps synchronously (from the
// test goroutine) and records them.
func (l *produced) produce(t testing.TB, k *testenv.KafkaEnv, topic string, n int, ps ...int32) {
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

// producer produces to every partition in the background until stopped.
type producer struct {
	stop chan struct{}
	done chan struct{}
	err  error
	n    int
}

// startProducer produces perTick events to each partition every interval.
// It is stopped at cleanup at the latest; Stop returns its first error.
func startProducer(t testing.TB, k *testenv.KafkaEnv, topic string, l *produced, partitions int32, perTick int, interval time.Duration) *producer {
	t.Helper()
	cl := k.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	pr := &producer{stop: make(chan struct{}), done: make(chan struct{})}
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

func (pr *producer) once(cl *kgo.Client, topic string, l *produced, partitions int32, perTick int) error {
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
func (pr *producer) Stop() error {
	select {
	case <-pr.stop:
	default:
		close(pr.stop)
	}
	<-pr.done
	return pr.err
}

// exact checks what one client applied, possibly over several
// connections: per partition, offsets follow each other with no duplicate
// and no hole, and every value is the produced one, byte for byte.
type exact struct {
	log  *produced
	last map[int32]int64 // last offset applied
	n    int             // records applied
}

func newExact(l *produced, cursor map[int32]int64) *exact {
	s := &exact{log: l, last: map[int32]int64{}}
	for p, o := range cursor {
		s.last[p] = o
	}
	return s
}

// apply checks and applies one record.
func (s *exact) apply(r wsclient.Record) error {
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

// reached reports whether every partition of last was applied up to its
// offset.
func (s *exact) reached(last map[int32]int64) bool {
	for p, o := range last {
		if s.last[p] < o {
			return false
		}
	}
	return true
}

// cursor is the client's cursor (a copy).
func (s *exact) cursor() map[int32]int64 {
	out := make(map[int32]int64, len(s.last))
	for p, o := range s.last {
		out[p] = o
	}
	return out
}

// readExact reads messages until fn returns true; records are checked against
// s (when s is not nil) before fn sees them. Protocol and exactness errors,
// and the timeout, are returned.
func readExact(c *wsclient.Conn, s *exact, timeout time.Duration, fn func(wsclient.Message) (bool, error)) error {
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
				return fmt.Errorf("%w: %w", errNotExact, err)
			}
		}
		done, err := fn(m)
		if err != nil || done {
			return err
		}
	}
}

// errNotExact marks a duplicate, a hole or a wrong value (as opposed to a
// connection that ended).
var errNotExact = errors.New("not exact")

// readExactTo reads (checking exactness) until s reached last.
func readExactTo(t testing.TB, c *wsclient.Conn, s *exact, last map[int32]int64, timeout time.Duration) []wsclient.Control {
	t.Helper()
	var ctrls []wsclient.Control
	if s.reached(last) {
		return nil
	}
	err := readExact(c, s, timeout, func(m wsclient.Message) (bool, error) {
		if m.Kind == wsclient.KindControl {
			ctrls = append(ctrls, m.Control)
			if badControl(m.Control.Type) {
				return false, fmt.Errorf("unexpected %s frame: %s", m.Control.Type, m.Control.Raw)
			}
		}
		return s.reached(last), nil
	})
	if err != nil {
		t.Fatalf("reading to %v: %v", last, err)
	}
	return ctrls
}

// badControl: frames that must never reach a client whose data is retained.
func badControl(typ string) bool {
	switch typ {
	case "gap", "cursor_stale", "error", "disconnect", "skipped":
		return true
	}
	return false
}

// readReplayComplete reads (checking exactness) until replay_complete and
// returns it with the records applied before it.
func readReplayComplete(t testing.TB, c *wsclient.Conn, s *exact, timeout time.Duration) (wsclient.ReplayComplete, int) {
	t.Helper()
	var rc wsclient.ReplayComplete
	n0 := s.n
	err := readExact(c, s, timeout, func(m wsclient.Message) (bool, error) {
		if m.Kind != wsclient.KindControl {
			return false, nil
		}
		if badControl(m.Control.Type) {
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

// redisLogKey is the Redis stream of partition p (replay/redis.go's layout).
func redisLogKey(ns string, p int32) string {
	return "dashstream-replay:{" + ns + ":p" + strconv.Itoa(int(p)) + "}:log"
}

// redisKeys lists the Redis keys of namespace ns.
func redisKeys(t testing.TB, rc *redis.Client, ns string) []string {
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

// deleteRedisKeys deletes the Redis keys of namespace ns (what FLUSHDB does
// to this test, without touching other tests' keys) and returns how many.
func deleteRedisKeys(t testing.TB, rc *redis.Client, ns string) int {
	t.Helper()
	keys := redisKeys(t, rc, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for k := range slices.Chunk(keys, 500) {
		if err := rc.Unlink(ctx, k...).Err(); err != nil {
			t.Fatalf("unlink keys of %s: %v", ns, err)
		}
	}
	return len(keys)
}

// cleanupRedisKeys deletes the namespace's keys when the test ends (a topic's
// namespace never contains the RedisEnv prefix, so testenv cannot).
func cleanupRedisKeys(t testing.TB, rc *redis.Client, ns string) {
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

// redisLen is the number of entries of partition p's stream and its
// newest offset (-1 when empty or unreachable).
func redisLen(rc redis.Cmdable, ns string, p int32) (int64, int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := rc.XLen(ctx, redisLogKey(ns, p)).Result()
	if err != nil {
		return 0, -1
	}
	top, err := rc.XRevRangeN(ctx, redisLogKey(ns, p), "+", "-", 1).Result()
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

// redisNewest is the newest offset of partition p's stream (-1 when empty
// or unreachable); rc may be a single-node, cluster or failover client.
func redisNewest(rc redis.Cmdable, ns string, p int32) int64 {
	_, o := redisLen(rc, ns, p)
	return o
}

// waitRedis waits until Redis holds every partition of last up to its
// offset.
func waitRedis(t testing.TB, rc redis.Cmdable, ns string, last map[int32]int64, timeout time.Duration) {
	t.Helper()
	testenv.WaitFor(t, timeout, func() bool {
		for p, o := range last {
			if _, newest := redisLen(rc, ns, p); newest < o {
				return false
			}
		}
		return true
	}, fmt.Sprintf("redis holds %v", last))
}

// quantiles returns p50, p99 and max of ds (zeros when empty).
func quantiles(ds []time.Duration) (p50, p99, mx time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(f float64) time.Duration { return s[min(len(s)-1, int(f*float64(len(s))))] }
	return q(0.50), q(0.99), s[len(s)-1]
}

// reader reads one client in the background, checking exactness, until
// the stream reached the last offsets given to finish (or the connection
// ends).
type reader struct {
	c      *wsclient.Conn
	n      atomic.Int64                    // records applied
	target atomic.Pointer[map[int32]int64] // stop once reached
	done   chan struct{}
	err    error // set before done closes
	mu     sync.Mutex
	ctrls  []wsclient.Control
	stream *exact // owned by the reader goroutine until done
}

func startReader(t testing.TB, c *wsclient.Conn, s *exact) *reader {
	rd := &reader{c: c, done: make(chan struct{}), stream: s}
	go func() {
		defer close(rd.done)
		rd.err = readExact(c, s, 5*time.Minute, func(m wsclient.Message) (bool, error) {
			rd.n.Store(int64(s.n))
			if m.Kind == wsclient.KindControl {
				rd.mu.Lock()
				rd.ctrls = append(rd.ctrls, m.Control)
				rd.mu.Unlock()
				if badControl(m.Control.Type) {
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
func (rd *reader) waitCount(t testing.TB, n int64, timeout time.Duration) {
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

// finish waits until the stream reached last and returns it.
func (rd *reader) finish(t testing.TB, last map[int32]int64, timeout time.Duration) *exact {
	t.Helper()
	rd.target.Store(&last)
	// A stream that already reached ends waits for its next message: nudge
	// it with a ping (answered by a pong).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = rd.c.Send(ctx, map[string]string{"type": "ping"})
	cancel()
	select {
	case <-rd.done:
	case <-time.After(timeout):
		t.Fatalf("client did not reach %v within %v (%d records)", last, timeout, rd.n.Load())
	}
	if rd.err != nil {
		t.Fatalf("client: %v", rd.err)
	}
	return rd.stream
}

// readStaleReplay reads the resume of a cursor on p0 that Kafka's log
// start passed: cursor_stale{requested cursor, oldest logStart}, then the
// gap cursor+1..logStart-1 (reason retention, the given severity), then
// records, then replay_complete, in exactly that order. It moves s past
// the gap and returns the replay_complete.
func readStaleReplay(t *testing.T, c *wsclient.Conn, s *exact, cursor, logStart int64, severity string) wsclient.ReplayComplete {
	t.Helper()
	var order []string
	var rc wsclient.ReplayComplete
	err := readExact(c, s, arrive, func(m wsclient.Message) (bool, error) {
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
