package replay

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Write batching: a batch is at most maxBatchRecords records of one
// partition, sent as one pipeline of script calls of chunkRecords records
// each (one EVALSHA for the partition log per chunk, one per thread).
const (
	maxBatchRecords = 1000
	chunkRecords    = 250
)

// writeQueue holds the records waiting for Redis, per partition. At most one
// batch per partition is in flight, so a partition's writes land in offset
// order. Safe for concurrent use; no I/O under its lock.
type writeQueue struct {
	mu      sync.Mutex
	pending map[int32][]*Record
	busy    map[int32]bool
	queued  int           // records pending or in flight
	idle    chan struct{} // closed while queued == 0
	closed  bool          // Run has returned: nothing is accepted any more
}

// batch is one partition's records taken for one write.
type batch struct {
	p    int32
	recs []*Record
}

func (q *writeQueue) init() {
	q.pending, q.busy = map[int32][]*Record{}, map[int32]bool{}
	q.idle = make(chan struct{})
	close(q.idle)
}

// push queues recs up to capacity queued records and returns how many were
// refused (queue full or closed, or a negative partition or offset).
func (q *writeQueue) push(recs []*Record, capacity int) (refused int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, rec := range recs {
		if q.closed || q.queued >= capacity || rec.Partition < 0 || rec.Offset < 0 {
			refused++
			continue
		}
		if q.queued == 0 {
			q.idle = make(chan struct{})
		}
		q.pending[rec.Partition] = append(q.pending[rec.Partition], rec)
		q.queued++
	}
	return refused
}

// take removes the next batch of a partition that has none in flight.
func (q *writeQueue) take() (batch, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for p, recs := range q.pending {
		if q.busy[p] {
			continue
		}
		n := min(len(recs), maxBatchRecords)
		if n == len(recs) {
			delete(q.pending, p)
		} else {
			q.pending[p] = recs[n:]
		}
		q.busy[p] = true
		return batch{p: p, recs: recs[:n:n]}, true
	}
	return batch{}, false
}

// done releases a batch taken by take, written or not.
func (q *writeQueue) done(b batch) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.busy, b.p)
	q.release(len(b.recs))
}

func (q *writeQueue) release(n int) {
	q.queued -= n
	if q.queued == 0 && n > 0 {
		close(q.idle)
	}
}

// dropPending removes every record not in flight and returns their number.
// With final, the queue refuses everything from then on.
func (q *writeQueue) dropPending(final bool) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for p, recs := range q.pending {
		n += len(recs)
		delete(q.pending, p)
	}
	q.closed = q.closed || final
	q.release(n)
	return n
}

// idleChan returns a channel that is closed once nothing is queued.
func (q *writeQueue) idleChan() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.idle
}

// Append queues recs for writing and returns nil at once: it never blocks
// on Redis. Records that do not fit the queue, or arrive while the breaker
// is open, are dropped and counted (the hole is filled from Kafka at read
// time). recs must not be modified afterwards.
func (r *Redis) Append(_ context.Context, recs []*Record) error {
	if r.brk.current() == stateOpen {
		r.dropped(len(recs))
		return nil
	}
	r.dropped(r.q.push(recs, r.cfg.QueueRecords))
	signal(r.wake)
	return nil
}

func (r *Redis) dropped(n int) {
	for range n {
		r.m.RedisWriteDropped()
	}
}

// Flush waits until every queued record has been written (or dropped, or
// has failed), or ctx ends. Writes are done by Run.
func (r *Redis) Flush(ctx context.Context) error {
	select {
	case <-r.q.idleChan():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("replay: redis flush: %w", ctx.Err())
	}
}

// Run writes queued records and probes Redis while its breaker is open. It
// returns when ctx ends, after one last attempt to write what is still
// queued, bounded by WriteTimeout (call Flush first for a drain bounded by
// a deadline of your own); from then on Append drops everything. Call it
// once.
func (r *Redis) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.probeLoop(ctx)
	}()
	sem := make(chan struct{}, r.cfg.MaxConcurrentWrites)
	wctx := context.WithoutCancel(ctx) // in-flight writes end by WriteTimeout
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-r.wake:
			r.dispatch(wctx, &wg, sem)
		}
	}
	r.drain(wctx, &wg, sem)
	return nil
}

// drain writes what is queued until the queue is idle or WriteTimeout
// passes, then closes the queue and drops the rest.
func (r *Redis) drain(ctx context.Context, wg *sync.WaitGroup, sem chan struct{}) {
	deadline := time.NewTimer(r.cfg.WriteTimeout)
	defer deadline.Stop()
	for waiting := r.brk.current() != stateStarting; waiting; { // never reached Redis: nothing to wait for
		r.dispatch(ctx, wg, sem)
		select {
		case <-r.q.idleChan():
			waiting = false
		case <-deadline.C:
			waiting = false
		case <-r.wake:
		}
	}
	r.dropped(r.q.dropPending(true))
}

// dispatch starts writes for partitions with queued records and none in
// flight, as long as a concurrency slot is free. With the breaker open it
// drops what is queued; while starting it leaves it queued.
func (r *Redis) dispatch(ctx context.Context, wg *sync.WaitGroup, sem chan struct{}) {
	switch r.brk.current() {
	case stateOpen:
		r.dropped(r.q.dropPending(false))
		return
	case stateStarting:
		return
	}
	for {
		select {
		case sem <- struct{}{}:
		default:
			return // a finishing write wakes us up
		}
		b, ok := r.q.take()
		if !ok {
			<-sem
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.write(ctx, b)
			r.q.done(b)
			<-sem
			signal(r.wake)
		}()
	}
}

// write sends one batch, reloading the scripts once if Redis lost them
// (restart, SCRIPT FLUSH). A failure is counted and forgotten.
func (r *Redis) write(ctx context.Context, b batch) {
	wctx, cancel := context.WithTimeout(ctx, r.cfg.WriteTimeout)
	defer cancel()
	start := time.Now()
	err := r.pipeline(wctx, b)
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		if err = loadScripts(wctx, r.client); err == nil {
			err = r.pipeline(wctx, b)
		}
	}
	r.observe(ctx, opAppend, start, err)
	if err != nil {
		for range b.recs {
			r.m.RedisWriteFailed()
		}
	}
}

// pipeline sends the partition log's script calls, then one thread-index
// call per thread, in one round trip. Each call touches one key.
func (r *Redis) pipeline(ctx context.Context, b batch) error {
	ttl := max(r.cfg.TTL.Milliseconds(), 1)
	_, err := r.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		key := []string{r.logKey(b.p)}
		for i := 0; i < len(b.recs); i += chunkRecords {
			chunk := b.recs[i:min(i+chunkRecords, len(b.recs))]
			args := make([]any, 0, 2+argsPerRecord*len(chunk))
			args = append(args, r.cfg.MaxPerPartition, ttl)
			for _, rec := range chunk {
				args = appendArgs(args, rec)
			}
			appendScript.EvalSha(ctx, pipe, key, args...)
		}
		for thread, members := range threadMembers(b.recs) {
			args := append([]any{r.cfg.MaxPerThread, ttl}, members...)
			threadIndexScript.EvalSha(ctx, pipe, []string{r.threadKey(thread)}, args...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replay: redis append p%d: %w", b.p, err)
	}
	return nil
}

// threadMembers groups the thread-index members of recs by thread.
// Sequence 0 (absent) is not indexed: no "sequence > after" query can
// return it.
func threadMembers(recs []*Record) map[string][]any {
	out := map[string][]any{}
	for _, rec := range recs {
		for _, t := range rec.Threads {
			if t.Sequence > 0 {
				out[t.Thread] = append(out[t.Thread], refMember(t.Sequence, rec.Partition, rec.Offset))
			}
		}
	}
	return out
}
