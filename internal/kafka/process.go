package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// maxPollRecords bounds one poll, and so one Publish call.
const maxPollRecords = 4096

// failure is a record that failed to decode, held while its partition is
// paused.
type failure struct {
	rec  *kgo.Record
	kind dashstream.Kind
	err  error
}

// pollWait bounds one poll: a quiet topic wakes the consumer goroutine
// every pollWait.
const pollWait = time.Second

// Backoff after a poll that returned only errors: capped and jittered, so a
// fetch error that repeats at once (a deleted topic, say) never spins.
const (
	pollBackoffBase = 100 * time.Millisecond
	pollBackoffMax  = 2 * time.Second
)

// consume is the consumer goroutine: poll, process, publish, until ctx ends.
// A poll that returned only errors is followed by a backoff.
func (c *Consumer) consume(ctx context.Context, s *clusterConn) {
	fails := 0
	for ctx.Err() == nil {
		if c.pollOnce(ctx, s) {
			fails = 0
			continue
		}
		d := jittered(pollBackoffBase, pollBackoffMax, fails)
		fails++
		c.idle(ctx, s, d)
	}
}

// idle waits d, running control requests meanwhile.
func (c *Consumer) idle(ctx context.Context, s *clusterConn, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case fn := <-c.ctrl:
			fn(s)
		}
	}
}

// pollOnce runs queued control requests, then polls. The poll's context is
// cancelled by enqueue so that a request does not wait for a fetch. It
// reports false when the poll returned errors and no records: the fetches
// are failing.
func (c *Consumer) pollOnce(ctx context.Context, s *clusterConn) bool {
	pollCtx, cancel := context.WithTimeout(ctx, pollWait)
	defer cancel()
	c.wakeMu.Lock()
	c.wake = cancel
	c.wakeMu.Unlock()
	c.runControls(s)
	fs := s.cl.PollRecords(pollCtx, maxPollRecords)
	failed := c.countFetchErrors(fs) && fs.NumRecords() == 0
	switch {
	case failed:
		c.failing.fail(c.now())
	case fs.NumRecords() > 0:
		c.failing.clear() // progress
	}
	if c.tracer == nil || fs.NumRecords() == 0 {
		c.process(ctx, s, fs)
		return !failed
	}
	batchCtx, span := c.startBatch(ctx, fs)
	s.decodeFailures = 0
	c.process(batchCtx, s, fs)
	endBatch(span, s.decodeFailures)
	return !failed
}

func (c *Consumer) runControls(s *clusterConn) {
	for {
		select {
		case fn := <-c.ctrl:
			fn(s)
		default:
			return
		}
	}
}

// process handles one poll: decode every record, publish once, then let the
// other goroutines see the new positions. ctx carries the poll's span, if
// any, to the dead-letter sends and log lines.
func (c *Consumer) process(ctx context.Context, s *clusterConn, fs kgo.Fetches) {
	now := c.now()
	var batch []*replay.Record
	valid := false
	fs.EachPartition(func(fp kgo.FetchTopicPartition) {
		st := s.parts[fp.Partition]
		if fp.Topic != c.cfg.Topic || st == nil {
			return
		}
		s.touch(st)
		st.hwm, st.lso = max(st.hwm, fp.HighWatermark), max(st.lso, fp.LastStableOffset)
		for _, r := range fp.Records {
			rec, ok := c.handle(ctx, s, st, r, now)
			if rec != nil {
				batch = append(batch, rec)
				valid = valid || rec.Skipped == ""
			}
			if !ok {
				return
			}
		}
	})
	if len(batch) > 0 {
		c.sink.Publish(batch)
	}
	if valid {
		c.lastMessage.Store(now.UnixNano())
	}
	c.syncView(s, now)
}

// touch lists st among the partitions whose view must be synced.
func (s *clusterConn) touch(st *partState) {
	if !st.touched {
		st.touched = true
		s.touched = append(s.touched, st)
	}
}

func (c *Consumer) syncView(s *clusterConn, now time.Time) {
	if len(s.touched) == 0 {
		return
	}
	paused := c.view.sync(s.touched, now)
	for _, st := range s.touched {
		st.touched = false
	}
	s.touched = s.touched[:0]
	c.m.PartitionsPaused.Set(float64(paused))
}

// handle processes one record of st. It returns the record to publish (nil
// for none) and false when the partition has just been paused.
func (c *Consumer) handle(ctx context.Context, s *clusterConn, st *partState, r *kgo.Record, now time.Time) (*replay.Record, bool) {
	if st.paused() || r.Offset < st.next {
		return nil, !st.paused() // stale data from before a pause or reset
	}
	st.lastTsMs = r.Timestamp.UnixMilli()
	if r.Attrs.IsControl() {
		st.next = r.Offset + 1
		return nil, true
	}
	d, err := c.dec.Decode(r.Value)
	if err != nil {
		return c.failed(ctx, s, st, r, err)
	}
	c.m.KafkaMessage()
	rec := c.record(st, r, d)
	if r.Offset >= st.startHWM {
		c.observeLatency(rec.TimestampUs, now)
	}
	return rec, true
}

// record builds the published record of a valid r and tracks its sequences.
func (c *Consumer) record(st *partState, r *kgo.Record, d *dashstream.Decoded) *replay.Record {
	rec := &replay.Record{Partition: r.Partition, Offset: r.Offset, Prev: st.prev, Value: r.Value, Tenant: d.Tenant(),
		Type: uint8(d.Type()), EventTypes: d.EventTypes()}
	rec.GraphName, rec.FullState = d.RunFacts()
	if len(d.Headers) > 0 {
		rec.TimestampUs = d.Headers[0].TimestampUs
		rec.Threads = make([]replay.ThreadSeq, len(d.Headers))
		for i, h := range d.Headers {
			rec.Threads[i] = replay.ThreadSeq{Thread: h.ThreadID, Sequence: h.Sequence}
			c.seq.observe(h.ThreadID, h.Sequence)
		}
	}
	st.prev, st.next = r.Offset, r.Offset+1
	return rec
}

// observeLatency records producer-to-consumer latency of live data; catch-up
// history would only measure its own age. A producer clock ahead of ours is
// counted as skew instead.
func (c *Consumer) observeLatency(tsUs int64, now time.Time) {
	if tsUs <= 0 {
		return
	}
	d := now.UnixMicro() - tsUs
	if d < 0 {
		c.m.ClockSkewEvents.Inc()
		return
	}
	c.e2e.Observe(float64(d) / 1000)
}

// failed applies the decode-error policy to r: skip publishes a marker and
// dead-letters r; pause stops the partition at r. Dead letters are logged at
// most once per logEvery per error type.
func (c *Consumer) failed(ctx context.Context, s *clusterConn, st *partState, r *kgo.Record, err error) (*replay.Record, bool) {
	kind := dashstream.KindInvalidProtobuf
	var de *dashstream.DecodeError
	if errors.As(err, &de) {
		kind = de.Kind
	}
	c.m.DecodeError(kind.String(), r.Offset < st.startHWM)
	s.decodeFailures++
	if c.cfg.OnDecodeError == PolicyPause {
		c.pause(s, st, &failure{rec: r, kind: kind, err: err})
		return nil, false
	}
	s.dlq.send(ctx, r, kind, err)
	c.logs.atContext(ctx, slog.LevelWarn, "dlq:"+kind.String(), "kafka: record dead-lettered",
		"partition", r.Partition, "offset", r.Offset, "error_type", kind.String())
	return c.marker(st, r.Offset, kind), true
}

// marker is the published stand-in of a dead-lettered record at off.
func (c *Consumer) marker(st *partState, off int64, kind dashstream.Kind) *replay.Record {
	rec := &replay.Record{Partition: st.id, Offset: off, Prev: st.prev, Skipped: kind.String()}
	st.prev, st.next = off, off+1
	return rec
}

func (c *Consumer) pause(s *clusterConn, st *partState, f *failure) {
	st.failed = f
	s.cl.PauseFetchPartitions(map[string][]int32{c.cfg.Topic: {st.id}})
	c.log.Warn("kafka: partition paused on a decode failure (policy pause)",
		"partition", st.id, "offset", f.rec.Offset, "error_type", f.kind.String())
}

// resume runs on the consumer goroutine for ResumePartition.
func (c *Consumer) resume(s *clusterConn, p int32) error {
	st := s.parts[p]
	switch {
	case st == nil:
		return fmt.Errorf("kafka: resume p%d: %w", p, ErrUnknownPartition)
	case !st.paused():
		return fmt.Errorf("kafka: resume p%d: %w", p, ErrNotPaused)
	}
	f := st.failed
	st.failed = nil
	s.dlq.send(context.Background(), f.rec, f.kind, f.err)
	c.sink.Publish([]*replay.Record{c.marker(st, f.rec.Offset, f.kind)})
	// Records after the failing one may have been handed out by the poll
	// that paused: read again from right after it.
	s.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{c.cfg.Topic: {p: {Epoch: -1, Offset: st.next}}})
	s.cl.ResumeFetchPartitions(map[string][]int32{c.cfg.Topic: {p}})
	s.touch(st)
	c.syncView(s, c.now())
	c.log.Info("kafka: partition resumed", "partition", p, "skipped_offset", f.rec.Offset)
	return nil
}

// countFetchErrors counts fetch errors by Kafka error name, logs each kind
// at most once per logEvery, and reports whether there was any. Context
// errors are this consumer waking or stopping, not failures.
func (c *Consumer) countFetchErrors(fs kgo.Fetches) bool {
	failed := false
	fs.EachError(func(topic string, p int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed) {
			return
		}
		failed = true
		typ := kafkaErrorType(err)
		c.m.KafkaError(typ)
		c.logs.warn("fetch:"+typ, "kafka: fetch failed", "topic", topic, "partition", p, "err", err)
	})
	return failed
}

// kafkaErrorType is a short, bounded name for a client error.
func kafkaErrorType(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return strings.ToLower(ke.Message)
	}
	return "fetch"
}
