package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// joinTimeout bounds how long a joining client may wait for its first
// full state.
const joinTimeout = 15 * time.Second

// JoinResult is what the join burst measured.
type JoinResult struct {
	Clients int `json:"clients"`
	Runs    int `json:"runs"`
	// FirstFullMs is the time from a joining client's dial to its first
	// record, a full state of its run (ms over the joined clients).
	FirstFullMs Latency `json:"first_full_state_ms"`
	// Failed counts joining clients that got no full state first (an
	// error, a timeout, or a first record that is not a full state).
	Failed     int    `json:"failed"`
	FirstError string `json:"first_error,omitempty"`
	// LiveP99BeforeMs and LiveP99DuringMs are the other clients' p99
	// latency of the records they received in the window before the burst
	// and while it lasted (until the last joining client had its state,
	// at least one second from its start).
	LiveP99BeforeMs float64 `json:"live_p99_before_ms"`
	LiveP99DuringMs float64 `json:"live_p99_during_ms"`
	BurstMs         float64 `json:"burst_ms"`
}

// joinBurst waits until the burst time in win, then connects n clients at
// once, each joining run j mod runs at its last full state, and measures
// how long each takes to receive it. It marks the end of the burst in win.
func joinBurst(ctx context.Context, url string, cfg Config, win *window) *JoinResult {
	jr := &JoinResult{Clients: cfg.JoinClients, Runs: cfg.Threads}
	at := time.UnixMicro(win.burstFrom.Load())
	select {
	case <-ctx.Done():
		jr.Failed = cfg.JoinClients
		return jr
	case <-time.After(time.Until(at)):
	}
	start := time.Now()
	took := make([]time.Duration, cfg.JoinClients)
	errs := make([]error, cfg.JoinClients)
	var wg sync.WaitGroup
	for j := range cfg.JoinClients {
		wg.Go(func() {
			took[j], errs[j] = joinOne(ctx, url, cfg.Clients+cfg.IdleClients+j, threadID(0, j%cfg.Threads))
		})
	}
	wg.Wait()
	win.burstTo.Store(burstEnd(start, time.Now()))
	jr.BurstMs = float64(time.Since(start).Microseconds()) / 1000
	var h Histogram
	for j, err := range errs {
		if err != nil {
			jr.Failed++
			if jr.FirstError == "" {
				jr.FirstError = err.Error()
			}
			continue
		}
		h.Record(took[j].Microseconds())
	}
	jr.FirstFullMs = Latency{P50: ms(h.Quantile(0.5)), P99: ms(h.Quantile(0.99)), P999: ms(h.Quantile(0.999)), Max: ms(float64(h.Max()))}
	return jr
}

// minBurst is the shortest interval over which the live latency "during"
// the burst is taken, so that a burst over in milliseconds still has
// enough live samples.
const minBurst = time.Second

// burstEnd is when the live "during" interval of a burst from start that
// was over at end ends.
func burstEnd(start, end time.Time) int64 {
	return max(end.UnixMicro(), start.Add(minBurst).UnixMicro())
}

// joinOne dials client i joining thread at its last full state and returns
// the time to its first record, which must be a full state of thread.
func joinOne(ctx context.Context, url string, i int, thread string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	t0 := time.Now()
	res := &wsclient.Resume{From: wsclient.FromLatest, Join: "checkpoint",
		Filter: json.RawMessage(`{"threads":[` + strconv.Quote(thread) + `]}`)}
	opts := connectOptions(i, res)
	opts.V2 = true
	conn, err := wsclient.DialLean(ctx, url, opts)
	if err != nil {
		return 0, fmt.Errorf("join: %w", err)
	}
	defer conn.Close()
	for {
		msg, err := conn.Next(ctx)
		if err != nil {
			return 0, fmt.Errorf("join: %w", err)
		}
		if msg.Kind == wsclient.KindControl && msg.Control.Type == "error" {
			return 0, fmt.Errorf("join: %s", msg.Control.Raw)
		}
		if msg.Kind != wsclient.KindRecord {
			continue
		}
		took := time.Since(t0)
		return took, checkFullState(msg.Record.Value, thread)
	}
}

var errNotFullState = errors.New("join: first record is not a full state of its run")

// checkFullState checks that v is a full-state record of thread.
func checkFullState(v []byte, thread string) error {
	d, err := dashstream.NewDecoder(dashstream.DecoderConfig{}).Decode(v)
	if err != nil {
		return fmt.Errorf("join: first record: %w", err)
	}
	if _, full := d.RunFacts(); !full || len(d.Headers) == 0 || d.Headers[0].ThreadID != thread {
		return errNotFullState
	}
	return nil
}

// phaseRecord files the latency of a live record received at now (µs)
// before or during the join burst.
func (c *client) phaseRecord(now, lat int64) {
	from := c.win.burstFrom.Load()
	switch {
	case from == 0:
	case now < from:
		c.before.Record(lat)
	case now < c.win.burstTo.Load():
		c.during.Record(lat)
	}
}

// setLivePhases fills the other clients' p99 before and during the burst.
func (jr *JoinResult) setLivePhases(clients []*client) {
	var before, during Histogram
	for _, c := range clients {
		before.Merge(&c.before)
		during.Merge(&c.during)
	}
	jr.LiveP99BeforeMs, jr.LiveP99DuringMs = ms(before.Quantile(0.99)), ms(during.Quantile(0.99))
}

// startBurst plans the burst halfway through the window from start.
func (w *window) startBurst(at time.Time) {
	w.burstTo.Store(math.MaxInt64)
	w.burstFrom.Store(at.UnixMicro())
}
