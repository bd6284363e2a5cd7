package devbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// maxInFlight bounds records handed to the client and not yet acked.
	maxInFlight = 512
	// maxRate caps WorkloadConfig.Rate: above it pacing is meaningless.
	maxRate = 100_000
	// pacingTick is how often the producer catches up with its rate.
	pacingTick = 10 * time.Millisecond
	// drainTimeout bounds how long RunDemo waits for in-flight records
	// after ctx is done before failing them.
	drainTimeout = 5 * time.Second
	// maxErrorKinds bounds the distinct produce errors remembered.
	maxErrorKinds = 32
)

// RunDemo produces the synthetic workload of cfg to topic at cfg.Rate
// records per second, keyed by thread id, until ctx is done. Produce
// failures are counted and each kind of failure is logged once. When ctx is
// done it waits briefly for records in flight, logs a summary and returns
// nil; it returns an error only if the workload cannot be generated. The
// client stays open: the caller owns it.
func RunDemo(ctx context.Context, client *kgo.Client, topic string, cfg WorkloadConfig, log *slog.Logger) error {
	if topic == "" {
		return errors.New("devbroker: demo: empty topic")
	}
	cfg = cfg.withDefaults()
	rate := math.Min(cfg.Rate, maxRate)
	p := newDemoProducer(client, topic, log)
	log.Info("demo workload started", "topic", topic, "threads", cfg.Threads, "rate", rate, "seed", cfg.Seed, "tenant", cfg.Tenant)
	err := p.run(ctx, NewWorkload(cfg), rate)
	p.drain()
	log.Info("demo workload stopped", "topic", topic, "produced", p.produced.Load(), "failed", p.failed.Load())
	return err
}

// demoProducer paces records into the client with a bounded number in
// flight. Promises run on the client's goroutine.
type demoProducer struct {
	client *kgo.Client
	topic  string
	log    *slog.Logger
	sem    chan struct{} // one token per record in flight

	// produceCtx outlives the caller's ctx by up to drainTimeout so that
	// records already handed over are delivered rather than failed.
	produceCtx    context.Context
	cancelProduce context.CancelFunc

	produced atomic.Int64
	failed   atomic.Int64

	mu     sync.Mutex
	logged map[string]bool // error kinds already logged
}

func newDemoProducer(client *kgo.Client, topic string, log *slog.Logger) *demoProducer {
	ctx, cancel := context.WithCancel(context.Background())
	return &demoProducer{
		client: client, topic: topic, log: log,
		sem:        make(chan struct{}, maxInFlight),
		produceCtx: ctx, cancelProduce: cancel,
		logged: make(map[string]bool),
	}
}

// run produces records as they come due at rate, catching up each tick but
// never bursting more than a second's worth after a stall.
func (p *demoProducer) run(ctx context.Context, w *Workload, rate float64) error {
	ticker := time.NewTicker(pacingTick)
	defer ticker.Stop()
	start, sent := time.Now(), int64(0)
	burst := int64(math.Max(rate, 1))
	for {
		due := int64(time.Since(start).Seconds()*rate) + 1 - sent
		if due > burst {
			sent += due - burst
			due = burst
		}
		for ; due > 0 && ctx.Err() == nil; due-- {
			if err := p.produceNext(ctx, w); err != nil {
				return err
			}
			sent++
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

func (p *demoProducer) produceNext(ctx context.Context, w *Workload) error {
	key, value, err := w.Next()
	if err != nil {
		return err
	}
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil
	}
	rec := &kgo.Record{Topic: p.topic, Key: []byte(key), Value: value}
	p.client.TryProduce(p.produceCtx, rec, p.promise)
	return nil
}

func (p *demoProducer) promise(_ *kgo.Record, err error) {
	<-p.sem
	if err == nil {
		p.produced.Add(1)
		return
	}
	p.failed.Add(1)
	p.logOnce(err)
}

func (p *demoProducer) logOnce(err error) {
	kind := errorKind(err)
	p.mu.Lock()
	first := !p.logged[kind] && len(p.logged) < maxErrorKinds
	if first {
		p.logged[kind] = true
	}
	p.mu.Unlock()
	if first {
		p.log.Warn("demo produce failed; further failures of this kind are only counted",
			"topic", p.topic, "kind", kind, "err", err)
	}
}

// drain waits up to drainTimeout for records in flight by taking every
// token of the semaphore, then fails whatever is still buffered.
func (p *demoProducer) drain() {
	defer p.cancelProduce()
	timer := time.NewTimer(drainTimeout)
	defer timer.Stop()
	for range cap(p.sem) {
		select {
		case p.sem <- struct{}{}:
		case <-timer.C:
			return
		}
	}
}

// errorKind names a produce error for once-per-kind logging: the Kafka
// error code, a client sentinel, or the (bounded) error text.
func errorKind(err error) string {
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		return ke.Message
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	case errors.Is(err, kgo.ErrMaxBuffered):
		return "max_buffered"
	case errors.Is(err, kgo.ErrRecordTimeout):
		return "record_timeout"
	}
	s := err.Error()
	if len(s) > 120 {
		s = s[:120]
	}
	return fmt.Sprintf("%T: %s", err, s)
}
