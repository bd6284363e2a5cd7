package replay

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// breakerChanged runs on every breaker state change (from whichever
// goroutine changed it): it wakes the prober and the writer.
func (r *Redis) breakerChanged(state int32) {
	signal(r.probe)
	signal(r.wake)
	if state == stateClosed {
		r.log.Info("redis reachable, circuit breaker closed")
	}
}

// Breaker returns a snapshot of the circuit breaker, for /health.
func (r *Redis) Breaker() BreakerStatus {
	st := r.brk.status()
	st.ProbeInterval = r.cfg.ProbeInterval
	return st
}

// signal wakes a capacity-1 channel's reader without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// probeLoop PINGs Redis while the breaker is not closed: at once on start,
// then every ProbeInterval; after the breaker opens, first one interval
// later (a Redis that answers PING but fails writes must not flap the
// breaker at full speed). It returns when ctx ends.
func (r *Redis) probeLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.probe:
			if r.brk.current() == stateOpen {
				t.Reset(r.cfg.ProbeInterval)
			}
			continue
		case <-t.C:
		}
		if !r.brk.closed() {
			r.probeOnce(ctx)
			t.Reset(r.cfg.ProbeInterval)
		}
	}
}

// probeOnce PINGs and loads the scripts; success closes the breaker.
func (r *Redis) probeOnce(parent context.Context) {
	ctx, cancel := context.WithTimeout(parent, r.cfg.ReadTimeout)
	defer cancel()
	r.brk.probeStarted()
	start := time.Now()
	err := r.client.Ping(ctx).Err()
	r.lat[opPing].Observe(float64(time.Since(start).Microseconds()) / 1000)
	if err == nil {
		err = loadScripts(ctx, r.client)
	}
	if err != nil && parent.Err() == nil && r.brk.current() == stateStarting {
		r.log.Warn("redis unreachable, retrying in the background", "err", err, "every", r.cfg.ProbeInterval)
	}
	r.brk.probed(err == nil)
}

// loadScripts puts the Lua scripts in Redis's script cache (on every shard
// of a cluster) so that EVALSHA finds them.
func loadScripts(ctx context.Context, c redis.Scripter) error {
	for _, s := range []*redis.Script{appendScript, threadIndexScript} {
		if err := s.Load(ctx, c).Err(); err != nil {
			return err
		}
	}
	return nil
}

// Clear deletes every key of this namespace: SCAN on every node (every
// master of a cluster), UNLINK in bounded batches. The namespace's
// character set keeps other namespaces out of the pattern.
func (r *Redis) Clear(ctx context.Context) error {
	if !r.brk.closed() {
		return fmt.Errorf("replay: redis clear: %w", ErrUnavailable)
	}
	start := time.Now()
	var err error
	if cc, ok := r.client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return r.clearNode(ctx, c)
		})
	} else {
		err = r.clearNode(ctx, r.client)
	}
	r.observe(ctx, opClear, start, err)
	if err != nil {
		return fmt.Errorf("replay: redis clear: %w", err)
	}
	return nil
}

// clearBatch is the number of keys per SCAN step and UNLINK pipeline.
const clearBatch = 500

func (r *Redis) clearNode(ctx context.Context, c redis.Cmdable) error {
	var cursor uint64
	for {
		stepCtx, cancel := context.WithTimeout(ctx, r.cfg.ReadTimeout)
		keys, next, err := c.Scan(stepCtx, cursor, r.tag+"*", clearBatch).Result()
		if err == nil && len(keys) > 0 {
			err = unlink(stepCtx, c, keys)
		}
		cancel()
		if err != nil || next == 0 {
			return err
		}
		cursor = next
	}
}

// unlink deletes keys one command each, so that keys of different slots on
// one cluster node never meet in one command (CROSSSLOT).
func unlink(ctx context.Context, c redis.Cmdable, keys []string) error {
	_, err := c.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, k := range keys {
			pipe.Unlink(ctx, k)
		}
		return nil
	})
	return err
}
