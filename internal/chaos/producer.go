package chaos

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// Key names one record of the topic.
type Key struct {
	Partition int32
	Offset    int64
}

func (k Key) String() string { return fmt.Sprintf("p%d@%d", k.Partition, k.Offset) }

// ProducerConfig configures a Producer.
type ProducerConfig struct {
	// Brokers are dialed directly (never through the fault injector): the
	// producer is the reference, not a subject.
	Brokers []string
	Topic   string
	// Partitions is how many partitions records are spread over, round robin.
	Partitions int32
	// Rate is records per second over all partitions. Zero: 200.
	Rate int
	// Run tags every payload so that two runs never produce equal bytes.
	Run string
}

// Producer writes valid DashStream events at a steady rate and logs every
// acknowledged offset with its bytes. Records keep being buffered and retried
// while the broker is down; Stop waits for each to be acknowledged or to fail.
type Producer struct {
	cfg    ProducerConfig
	cl     *kgo.Client
	cancel context.CancelFunc // stops the produce loop
	abort  context.CancelFunc // fails records still buffered (Stop's deadline passed)
	done   chan struct{}

	// mu guards the fields below.
	mu         sync.Mutex
	partitions int32
	seq        map[int32]uint64
	acked      map[Key][]byte
	lastAck    time.Time
	failed     int
	firstErr   error
}

// StartProducer starts producing until Stop.
func StartProducer(cfg ProducerConfig) (*Producer, error) {
	cfg.Rate = max(cfg.Rate, 0)
	if cfg.Rate == 0 {
		cfg.Rate = 200
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(50_000),
		kgo.RecordDeliveryTimeout(2*time.Minute))
	if err != nil {
		return nil, fmt.Errorf("chaos: producer client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// Records carry their own context: canceling the loop must not fail the
	// records already buffered, only Stop's deadline may.
	recCtx, abort := context.WithCancel(context.Background())
	p := &Producer{cfg: cfg, cl: cl, cancel: cancel, abort: abort, done: make(chan struct{}),
		partitions: cfg.Partitions, seq: map[int32]uint64{}, acked: map[Key][]byte{}}
	go p.run(ctx, recCtx)
	return p, nil
}

// SetPartitions spreads the next records over n partitions once the
// producer's metadata shows that many (after the topic grew), so that no
// record is produced to a partition it does not know yet.
func (p *Producer) SetPartitions(ctx context.Context, n int32) error {
	adm := kadm.NewClient(p.cl)
	for {
		p.cl.ForceMetadataRefresh()
		td, err := adm.ListTopics(ctx, p.cfg.Topic)
		if err == nil && int32(len(td[p.cfg.Topic].Partitions)) >= n {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chaos: producer metadata of %s never showed %d partitions: %w", p.cfg.Topic, n, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	// The refresh triggered above lands asynchronously: give it a moment.
	time.Sleep(500 * time.Millisecond)
	p.mu.Lock()
	p.partitions = n
	p.mu.Unlock()
	return nil
}

func (p *Producer) run(ctx, recCtx context.Context) {
	defer close(p.done)
	const tick = 20 * time.Millisecond
	perTick := max(p.cfg.Rate*int(tick)/int(time.Second), 1)
	t := time.NewTicker(tick)
	defer t.Stop()
	next := int32(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for range perTick {
			r, err := p.record(next)
			if err != nil {
				p.fail(err)
				return
			}
			next++
			p.cl.Produce(recCtx, r, p.ack) // blocks only when 50 000 records wait
		}
	}
}

// record builds the next event of the partition after n's round-robin turn.
func (p *Producer) record(n int32) (*kgo.Record, error) {
	p.mu.Lock()
	part := n % p.partitions
	p.seq[part]++
	seq := p.seq[part]
	p.mu.Unlock()
	v, err := event(p.cfg.Run, part, seq)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: p.cfg.Topic, Partition: part, Value: v}, nil
}

// event encodes a valid DashStream event unique to (run, partition, seq).
func event(run string, p int32, seq uint64) ([]byte, error) {
	msg := &pb.DashStreamMessage{Message: &pb.DashStreamMessage_Event{Event: &pb.Event{
		Header: &pb.Header{ThreadId: "chaos-" + run + "-p" + strconv.Itoa(int(p)), Sequence: seq,
			TimestampUs: time.Now().UnixMicro(), Type: pb.MessageType_MESSAGE_TYPE_EVENT, TenantId: "chaos",
			SchemaVersion: 1},
		EventType: pb.EventType_EVENT_TYPE_NODE_PROGRESS, NodeId: "chaos"}}}
	v, err := dashstream.Encode(msg, dashstream.FramingPlain)
	if err != nil {
		return nil, fmt.Errorf("chaos: encode event: %w", err)
	}
	return v, nil
}

func (p *Producer) ack(r *kgo.Record, err error) {
	if err != nil {
		p.fail(err)
		return
	}
	p.mu.Lock()
	p.acked[Key{r.Partition, r.Offset}] = r.Value
	p.lastAck = time.Now()
	p.mu.Unlock()
}

func (p *Producer) fail(err error) {
	p.mu.Lock()
	p.failed++
	if p.firstErr == nil {
		p.firstErr = err
	}
	p.mu.Unlock()
}

// Stop stops producing and waits (bounded by ctx) until every buffered
// record was acknowledged or failed.
func (p *Producer) Stop(ctx context.Context) error {
	p.cancel()
	stop := context.AfterFunc(ctx, p.abort)
	defer stop()
	<-p.done
	err := p.cl.Flush(ctx)
	p.abort()
	p.cl.Close()
	if err != nil {
		return fmt.Errorf("chaos: producer flush: %w", err)
	}
	return nil
}

// Acked returns a copy of the acknowledged records.
func (p *Producer) Acked() map[Key][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[Key][]byte, len(p.acked))
	for k, v := range p.acked {
		out[k] = v
	}
	return out
}

// Count returns how many records were acknowledged and how many failed.
func (p *Producer) Count() (acked, failed int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked), p.failed
}

// AckedAfter reports whether a record was acknowledged after t.
func (p *Producer) AckedAfter(t time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastAck.After(t)
}

// Err returns the first produce error, if any.
func (p *Producer) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.firstErr
}
