package kafka

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// DeepReadConfig configures a DeepReader.
type DeepReadConfig struct {
	// Brokers, Topic and Security as for the consumer. Brokers required.
	Brokers  []string
	Topic    string
	Security Security
	// MaxConcurrent bounds the fetches in flight over all clients, so a
	// reconnect storm cannot starve live delivery. Zero: 8.
	MaxConcurrent int
	// FetchMaxBytes bounds one fetch response. Zero: 4 MiB.
	FetchMaxBytes int32
	// MaxPayload and MaxSchemaVersion as for the consumer's decoder.
	MaxPayload       int
	MaxSchemaVersion uint32
	// ExtraOpts are appended to the client's options.
	ExtraOpts []kgo.Opt
	// TracerProvider traces each read that goes to Kafka. Nil: no tracing.
	TracerProvider trace.TracerProvider
}

// deepRetryTimeout bounds how long one metadata or ListOffsets request of a
// deep read is retried: with Kafka down a resume ends with
// REPLAY_UNAVAILABLE after a few seconds instead of waiting out the whole
// replay timeout (franz-go's default is 30 s).
const deepRetryTimeout = 5 * time.Second

// DeepReader reads old offsets straight from Kafka: the replay tier of last
// resort for records that memory and Redis no longer hold but the topic
// still retains. Identical reads (same partition, start and limits) in
// flight at once are coalesced into one fetch. Safe for concurrent use.
type DeepReader struct {
	cfg   DeepReadConfig
	cl    *kgo.Client
	dec   *dashstream.Decoder
	sem   chan struct{}
	group singleflight.Group
	log   *slog.Logger
	// tracer traces reads; nil when tracing is off.
	tracer trace.Tracer

	startMu sync.Mutex // guards the log start cache (never held during I/O)
	starts  map[int32]int64
	startAt time.Time
}

// DeepPage is one deep read: records after the requested offset, and the
// partition's log start (everything below it is gone from Kafka).
type DeepPage struct {
	Records  []*replay.Record
	LogStart int64
}

// NewDeepReader returns a reader; its client connects lazily.
func NewDeepReader(cfg DeepReadConfig, log *slog.Logger) (*DeepReader, error) {
	if len(cfg.Brokers) == 0 {
		return nil, fmt.Errorf("kafka: deep reader: %w: no brokers", ErrInvalidConfig)
	}
	cfg.Topic = cmp.Or(cfg.Topic, DefaultTopic)
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 8
	}
	if cfg.FetchMaxBytes <= 0 {
		cfg.FetchMaxBytes = 4 << 20
	}
	opts, err := ClientOpts(cfg.Security)
	if err != nil {
		return nil, err
	}
	opts = append(opts, kgo.SeedBrokers(cfg.Brokers...), kgo.ClientID(DefaultClientID+"-deep-read"),
		kgo.RetryTimeout(deepRetryTimeout))
	cl, err := kgo.NewClient(append(opts, cfg.ExtraOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: deep reader: %w", err)
	}
	return &DeepReader{cfg: cfg, cl: cl, sem: make(chan struct{}, cfg.MaxConcurrent), log: log, tracer: tracerOf(cfg.TracerProvider),
		dec: dashstream.NewDecoder(dashstream.DecoderConfig{MaxPayload: cfg.MaxPayload, MaxSchemaVersion: cfg.MaxSchemaVersion})}, nil
}

// Close releases the client.
func (d *DeepReader) Close() { d.cl.Close() }

// Read returns up to maxRecords records of partition p with offset > after,
// frames encoded, shared with concurrent identical reads (never modify them).
func (d *DeepReader) Read(ctx context.Context, p int32, after int64, maxRecords int) (DeepPage, error) {
	key := strconv.Itoa(int(p)) + "/" + strconv.FormatInt(after, 10) + "/" + strconv.Itoa(maxRecords)
	ch := d.group.DoChan(key, func() (any, error) {
		// The shared read must not die with the first caller's context.
		return d.tracedRead(context.WithoutCancel(ctx), p, after, maxRecords)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return DeepPage{}, res.Err
		}
		return res.Val.(DeepPage), nil
	case <-ctx.Done():
		return DeepPage{}, ctx.Err()
	}
}

// tracedRead is read in a span (a child of ctx's: the resume or catch-up
// that needed it) when tracing is on.
func (d *DeepReader) tracedRead(ctx context.Context, p int32, after int64, maxRecords int) (DeepPage, error) {
	if d.tracer == nil {
		return d.read(ctx, p, after, maxRecords)
	}
	ctx, span := d.tracer.Start(ctx, spanDeepRead, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("messaging.system", "kafka"),
		attribute.String("messaging.operation.type", "receive"),
		attribute.String("messaging.destination.name", d.cfg.Topic),
		attribute.String("messaging.destination.partition.id", strconv.Itoa(int(p))),
		attribute.Int64("dashstream.after", after),
		attribute.Int("dashstream.max_records", maxRecords)))
	page, err := d.read(ctx, p, after, maxRecords)
	span.SetAttributes(attribute.Int("messaging.batch.message_count", len(page.Records)),
		attribute.Int64("dashstream.log_start", page.LogStart))
	endSpan(span, err)
	return page, err
}

func (d *DeepReader) read(ctx context.Context, p int32, after int64, maxRecords int) (DeepPage, error) {
	select {
	case d.sem <- struct{}{}:
		defer func() { <-d.sem }()
	case <-ctx.Done():
		return DeepPage{}, ctx.Err()
	}
	from := after + 1
	for skips := 0; ; skips++ {
		fp, last, err := d.fetch(ctx, p, from)
		if errors.Is(err, kerr.OffsetOutOfRange) {
			// The error response carries no log start: ask for it (fresh).
			ls, lerr := d.LogStart(ctx, p, 0)
			if lerr != nil {
				return DeepPage{}, fmt.Errorf("kafka: deep read p%d after %d: %w", p, after, lerr)
			}
			return DeepPage{LogStart: ls}, nil
		}
		if err != nil {
			return DeepPage{}, fmt.Errorf("kafka: deep read p%d after %d: %w", p, after, err)
		}
		recs := d.records(fp.Records, after, maxRecords)
		if len(recs) > 0 || last < from || last+1 >= fp.LastStableOffset || skips == maxAbortedSkips {
			return DeepPage{Records: recs, LogStart: fp.LogStartOffset}, nil
		}
		// The response held only aborted records and transaction markers
		// (up to FetchMaxBytes of them): read on after them, or an empty
		// page would say nothing about the committed records further on.
		from = last + 1
	}
}

// maxAbortedSkips bounds the fetches one read spends walking over aborted
// transactions before it returns an empty page.
const maxAbortedSkips = 16

// fetch asks the partition's leader for records from offset. last is the
// last offset of the complete record batches the response held (aborted
// ones and transaction markers included), or -1.
func (d *DeepReader) fetch(ctx context.Context, p int32, offset int64) (fp kgo.FetchPartition, last int64, err error) {
	leader, topicID, err := d.leader(ctx, p)
	if err != nil {
		return kgo.FetchPartition{}, -1, err
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MinBytes, req.MaxBytes, req.IsolationLevel = -1, 1, d.cfg.FetchMaxBytes, 1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = d.cfg.Topic, topicID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.LogStartOffset = p, offset, d.cfg.FetchMaxBytes, -1
	rp.CurrentLeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, d.cl.Broker(int(leader)))
	if err != nil {
		return kgo.FetchPartition{}, -1, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return kgo.FetchPartition{}, -1, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return kgo.FetchPartition{}, -1, errors.New("unexpected fetch response shape")
	}
	raw := &resp.Topics[0].Partitions[0]
	last = lastBatchOffset(raw.RecordBatches)
	fp, _ = kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Offset: offset, Topic: d.cfg.Topic,
		Partition: p, IsolationLevel: kgo.ReadCommitted()}, raw, kgo.DefaultDecompressor(), nil)
	return fp, last, fp.Err
}

// lastBatchOffset returns the last offset of the complete record batches
// in a fetch response's partition data (a batch cut by the size limit is
// not counted), or -1. A v2 batch's header holds its first offset and
// length at bytes 0 and 8, its magic at 16 and its last offset delta at
// 23; an older message set's entry holds its (wrapper's last) offset at 0.
func lastBatchOffset(raw []byte) int64 {
	const header = 27
	last := int64(-1)
	for len(raw) >= header {
		n := 12 + int64(int32(binary.BigEndian.Uint32(raw[8:12])))
		if n < header || n > int64(len(raw)) {
			break
		}
		last = int64(binary.BigEndian.Uint64(raw[0:8]))
		if raw[16] == 2 {
			last += int64(int32(binary.BigEndian.Uint32(raw[23:27])))
		}
		raw = raw[n:]
	}
	return last
}

// leader looks the partition's leader and the topic id up in cached metadata.
// A partition the cache does not know yet (added to the topic since) is
// looked up again in fresh metadata.
func (d *DeepReader) leader(ctx context.Context, p int32) (int32, [16]byte, error) {
	l, id, err := d.cachedLeader(ctx, p, 0)
	if errors.Is(err, ErrUnknownPartition) {
		l, id, err = d.cachedLeader(ctx, p, time.Nanosecond)
	}
	return l, id, err
}

// cachedLeader is leader with metadata cached at most maxAge ago (0: the
// client's MetadataMinAge).
func (d *DeepReader) cachedLeader(ctx context.Context, p int32, maxAge time.Duration) (int32, [16]byte, error) {
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(d.cfg.Topic)
	req.Topics = append(req.Topics, t)
	meta, err := d.cl.RequestCachedMetadata(ctx, req, maxAge)
	if err != nil {
		return 0, [16]byte{}, err
	}
	for _, mt := range meta.Topics {
		if err := kerr.ErrorForCode(mt.ErrorCode); err != nil {
			return 0, [16]byte{}, err
		}
		for _, mp := range mt.Partitions {
			if mp.Partition == p {
				return mp.Leader, mt.TopicID, kerr.ErrorForCode(mp.ErrorCode)
			}
		}
	}
	return 0, [16]byte{}, fmt.Errorf("%w: partition %d", ErrUnknownPartition, p)
}

// records turns fetched records into replay records. The fetch started
// right after 'after', so nothing exists between after and the first one.
func (d *DeepReader) records(in []*kgo.Record, after int64, limit int) []*replay.Record {
	out := make([]*replay.Record, 0, min(len(in), limit))
	prev := after
	for _, r := range in {
		if len(out) == limit {
			break
		}
		if r.Offset <= after {
			continue
		}
		rec := d.record(r, prev)
		rec.EncodeFrames()
		out = append(out, rec)
		prev = r.Offset
	}
	return out
}

func (d *DeepReader) record(r *kgo.Record, prev int64) *replay.Record {
	rec := &replay.Record{Partition: r.Partition, Offset: r.Offset, Prev: prev, Value: r.Value}
	dec, err := d.dec.Decode(r.Value)
	if err != nil {
		var de *dashstream.DecodeError
		kind := dashstream.KindInvalidProtobuf
		if errors.As(err, &de) {
			kind = de.Kind
		}
		rec.Value, rec.Skipped = nil, kind.String()
		return rec
	}
	rec.Tenant, rec.Type, rec.EventTypes = dec.Tenant(), uint8(dec.Type()), dec.EventTypes()
	rec.GraphName, rec.FullState = dec.RunFacts()
	if len(dec.Headers) > 0 {
		rec.TimestampUs = dec.Headers[0].TimestampUs
		rec.Threads = make([]replay.ThreadSeq, len(dec.Headers))
		for i, h := range dec.Headers {
			rec.Threads[i] = replay.ThreadSeq{Thread: h.ThreadID, Sequence: h.Sequence}
		}
	}
	return rec
}

// ReadAfter implements replay.DeepReader.
func (d *DeepReader) ReadAfter(ctx context.Context, p int32, after int64, limit int) ([]*replay.Record, int64, error) {
	page, err := d.Read(ctx, p, after, limit)
	return page.Records, page.LogStart, err
}

// Reset forgets the cached log starts; the app calls it when the topic was
// re-created (its offsets restarted).
func (d *DeepReader) Reset() {
	d.startMu.Lock()
	defer d.startMu.Unlock()
	d.starts, d.startAt = nil, time.Time{}
}

// LogStart implements replay.DeepReader: the partition's log start offset
// as Kafka reported it at most maxAge ago (maxAge 0: ask now). An older
// cache is refreshed by one ListStartOffsets shared by concurrent callers
// (no I/O under the cache's lock). Log starts only move when retention or
// DeleteRecords drops a segment; a stale cached answer is caught by the
// fetch that follows (offset out of range).
func (d *DeepReader) LogStart(ctx context.Context, p int32, maxAge time.Duration) (int64, error) {
	starts, fresh := d.cachedLogStarts(maxAge)
	if !fresh {
		v, err, _ := d.group.Do("log-starts", func() (any, error) { return d.refreshLogStarts(ctx) })
		if err != nil {
			return 0, err
		}
		starts = v.(map[int32]int64)
	}
	o, ok := starts[p]
	if !ok {
		return 0, fmt.Errorf("kafka: log start of partition %d: %w", p, ErrUnknownPartition)
	}
	return o, nil
}

func (d *DeepReader) cachedLogStarts(maxAge time.Duration) (map[int32]int64, bool) {
	d.startMu.Lock()
	defer d.startMu.Unlock()
	return d.starts, d.starts != nil && time.Since(d.startAt) < maxAge
}

func (d *DeepReader) refreshLogStarts(ctx context.Context) (map[int32]int64, error) {
	offs, err := kadm.NewClient(d.cl).ListStartOffsets(ctx, d.cfg.Topic)
	if err != nil {
		return nil, fmt.Errorf("kafka: log start offsets: %w", err)
	}
	starts := map[int32]int64{}
	offs.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			starts[o.Partition] = o.Offset
		}
	})
	d.startMu.Lock()
	defer d.startMu.Unlock()
	d.starts, d.startAt = starts, time.Now()
	return starts, nil
}

// EndOffset asks Kafka for the partition's current high watermark (not
// cached: it confirms that a cursor beyond what this instance has consumed
// really does not exist yet).
func (d *DeepReader) EndOffset(ctx context.Context, p int32) (int64, error) {
	offs, err := kadm.NewClient(d.cl).ListEndOffsets(ctx, d.cfg.Topic)
	if err != nil {
		return 0, fmt.Errorf("kafka: end offsets: %w", err)
	}
	o, ok := offs.Lookup(d.cfg.Topic, p)
	if !ok {
		return 0, fmt.Errorf("kafka: end offset of partition %d: %w", p, ErrUnknownPartition)
	}
	if o.Err != nil {
		return 0, fmt.Errorf("kafka: end offset of partition %d: %w", p, o.Err)
	}
	return o.Offset, nil
}
