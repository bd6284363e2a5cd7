package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// window is the measured interval in µs since the epoch, set once before
// the first record is produced and read by every client.
type window struct {
	from, to atomic.Int64
	// burstFrom and burstTo bound the join burst (0: none).
	burstFrom, burstTo atomic.Int64
}

func (w *window) contains(ts int64) bool { return ts >= w.from.Load() && ts < w.to.Load() }

// producer sends records at a fixed rate over partitions 0..P-1 and keeps
// what Kafka acknowledged: the last offset per partition.
type producer struct {
	cl    *kgo.Client
	parts []int32
	start []int64 // per partition index: the first offset this run produces
	last  []atomic.Int64
	seq   []uint64 // per partition (one thread each) or per thread
	// threads > 0 spreads records over that many threads; perThread counts
	// the acknowledged records of each.
	threads   int
	perThread []atomic.Int64
	// perKind counts the acknowledged records of each message type (the
	// envelope's body field number, 1..9).
	perKind [10]atomic.Int64
	// fullEvery > 0 makes each thread a run: a GRAPH_START first, then a
	// Checkpoint every fullEvery records (the join and types benchmarks).
	fullEvery int
	build     *recordBuilder
	rate      int
	max       int64
	win       *window

	acked, ackedInWindow, errs atomic.Int64
	firstErr                   atomic.Pointer[error]
}

func newProducer(ctx context.Context, t Target, cfg Config, win *window) (*producer, error) {
	build, err := newRecordBuilder(cfg.Size)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(t.Brokers...), kgo.DefaultProduceTopic(t.Topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(time.Millisecond),
		kgo.ProducerBatchMaxBytes(16<<20))
	if err != nil {
		return nil, fmt.Errorf("bench: kafka client: %w", err)
	}
	pr := &producer{cl: cl, build: build, rate: cfg.Rate, max: cfg.MaxRecords, win: win, threads: cfg.Threads}
	if cfg.JoinClients > 0 || len(cfg.FilterTypes) > 0 {
		pr.fullEvery = cfg.FullStateEvery
	}
	if err := pr.plan(ctx, t.Topic, cfg.Partitions); err != nil {
		cl.Close()
		return nil, err
	}
	return pr, nil
}

// plan picks the partitions and reads where each one ends now.
func (pr *producer) plan(ctx context.Context, topic string, want int) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	adm := kadm.NewClient(pr.cl)
	topics, err := adm.ListTopics(ctx, topic)
	if err == nil {
		err = topics.Error()
	}
	if err == nil && !topics.Has(topic) {
		err = errors.New("not found")
	}
	if err != nil {
		return fmt.Errorf("bench: topic %s: %w", topic, err)
	}
	parts := topics[topic].Partitions.Numbers()
	slices.Sort(parts)
	if len(parts) == 0 || want > len(parts) {
		return fmt.Errorf("bench: %d partitions requested, topic %s has %d", want, topic, len(parts))
	}
	if want > 0 {
		parts = parts[:want]
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("bench: end offsets of %s: %w", topic, err)
	}
	pr.init(parts, func(p int32) int64 { o, _ := ends.Lookup(topic, p); return o.Offset })
	return nil
}

func (pr *producer) init(parts []int32, end func(int32) int64) {
	pr.parts = parts
	n := int(slices.Max(parts)) + 1
	pr.start, pr.last, pr.seq = make([]int64, n), make([]atomic.Int64, n), make([]uint64, max(n, pr.threads))
	pr.perThread = make([]atomic.Int64, pr.threads)
	for _, p := range parts {
		pr.start[p] = end(p)
		pr.last[p].Store(end(p) - 1)
	}
}

// cursor is where clients resume: the last offset before this run, per
// partition, so that each must receive exactly what the run produces.
func (pr *producer) cursor() map[int32]int64 {
	c := make(map[int32]int64, len(pr.parts))
	for _, p := range pr.parts {
		c[p] = pr.start[p] - 1
	}
	return c
}

// run produces at the target rate for d from start; it returns the number
// of records handed to the client.
func (pr *producer) run(ctx context.Context, start time.Time, d time.Duration) int64 {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var sent int64
	for {
		el := time.Since(start)
		if el >= d || sent >= pr.max {
			return sent
		}
		due := min(int64(el.Seconds()*float64(pr.rate)), pr.max)
		for ; sent < due && ctx.Err() == nil; sent++ {
			pr.produce(ctx, sent)
		}
		select {
		case <-ctx.Done():
			return sent
		case <-tick.C:
		}
	}
}

// produce sends record i: round robin over the partitions, or over the
// threads (thread t on partition t mod P).
func (pr *producer) produce(ctx context.Context, i int64) {
	t, p := -1, pr.parts[i%int64(len(pr.parts))]
	seq := &pr.seq[p]
	if pr.threads > 0 {
		t = int(i % int64(pr.threads))
		p, seq = pr.parts[t%len(pr.parts)], &pr.seq[t]
	}
	*seq++
	now := time.Now()
	thread := threadID(p, t)
	v, err := pr.build.buildFull(thread, *seq, now.UnixMicro(), fullKind(*seq, pr.fullEvery))
	if err != nil {
		pr.fail(err)
		return
	}
	pr.cl.Produce(ctx, &kgo.Record{Partition: p, Key: []byte(thread), Value: v, Timestamp: now}, pr.ack)
}

func (pr *producer) ack(r *kgo.Record, err error) {
	if err != nil {
		pr.fail(err)
		return
	}
	for last := &pr.last[r.Partition]; ; {
		cur := last.Load()
		if r.Offset <= cur || last.CompareAndSwap(cur, r.Offset) {
			break
		}
	}
	pr.acked.Add(1)
	if t, ok := threadIndex(r.Key); ok && t < len(pr.perThread) {
		pr.perThread[t].Add(1)
	}
	if k, ok := bodyKind(r.Value); ok {
		pr.perKind[k].Add(1)
	}
	if ts, ok := headerTimestamp(r.Value); ok && pr.win.contains(ts) { // Kafka keeps only ms
		pr.ackedInWindow.Add(1)
	}
}

func (pr *producer) fail(err error) {
	pr.errs.Add(1)
	pr.firstErr.CompareAndSwap(nil, &err)
}

// flush waits for every produced record's acknowledgement (bounded).
func (pr *producer) flush(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := pr.cl.Flush(ctx); err != nil {
		return fmt.Errorf("bench: flush producer: %w", err)
	}
	return nil
}

// lastOffsets is the last acknowledged offset per partition.
func (pr *producer) lastOffsets() map[int32]int64 {
	out := make(map[int32]int64, len(pr.parts))
	for _, p := range pr.parts {
		out[p] = pr.last[p].Load()
	}
	return out
}

// expected is how many records a client must receive: everything acked.
func (pr *producer) expected() int64 {
	var n int64
	for _, p := range pr.parts {
		n += pr.last[p].Load() - pr.start[p] + 1
	}
	return n
}

// threadExpected is how many records a client following thread t must
// receive: that thread's acknowledged records.
func (pr *producer) threadExpected(t int) int64 { return pr.perThread[t].Load() }

// typesExpected is how many records a client filtered to the message
// types of mask must receive: those types' acknowledged records.
func (pr *producer) typesExpected(mask uint16) int64 {
	var n int64
	for k := range pr.perKind {
		if mask&(1<<k) != 0 {
			n += pr.perKind[k].Load()
		}
	}
	return n
}

// threadIndex reads t of a "bench-t<t>" key.
func threadIndex(key []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(key, []byte("bench-t"))
	if !ok {
		return 0, false
	}
	t, err := strconv.Atoi(string(rest))
	return t, err == nil && t >= 0
}

func (pr *producer) close() { pr.cl.Close() }
