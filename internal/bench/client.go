package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// client is one measuring WebSocket client. Its fields are owned by its
// goroutine until done is closed; applied is read concurrently.
type client struct {
	conn    *wsclient.Lean
	cursor  *wsclient.Cursor
	win     *window
	hist    Histogram
	applied atomic.Int64 // records that were not duplicates
	ready   chan struct{}
	done    chan struct{}

	delivered int64 // records of the measured window
	gaps      int64 // gap frames (each a loss the gateway admitted)
	stale     int64 // cursor_stale frames (a setup problem)
	err       error // why the connection ended before the run did
}

// connectOptions dials from the client's own loopback address.
func connectOptions(i int, resume *wsclient.Resume) wsclient.Options {
	return wsclient.Options{Resume: resume, LocalAddr: sourceAddr(i), ReadBufferSize: 64 << 10}
}

func dialClient(ctx context.Context, url string, i int, from map[int32]int64, win *window) (*client, error) {
	conn, err := wsclient.DialLean(ctx, url, connectOptions(i, &wsclient.Resume{From: wsclient.FromCursor, Offsets: from}))
	if err != nil {
		return nil, err
	}
	c := &client{conn: conn, cursor: wsclient.NewCursor(), win: win, ready: make(chan struct{}), done: make(chan struct{})}
	for p, o := range from {
		c.cursor.Set(p, o)
	}
	return c, nil
}

// run reads until ctx ends or the connection fails.
func (c *client) run(ctx context.Context) {
	defer close(c.done)
	defer c.conn.Close()
	for {
		msg, err := c.conn.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.err = err
			}
			return
		}
		if msg.Kind == wsclient.KindRecord {
			c.record(msg.Record, c.conn.ReceivedAt().UnixMicro())
		} else {
			c.control(msg.Control)
		}
	}
}

// record accounts r, received at now (µs since the epoch).
func (c *client) record(r wsclient.Record, now int64) {
	if c.cursor.Apply(r) == wsclient.Duplicate {
		return // counted by the cursor; neither delivered nor timed
	}
	c.applied.Add(1)
	if ts, ok := headerTimestamp(r.Value); ok && c.win.contains(ts) {
		c.delivered++
		c.hist.Record(now - ts)
	}
}

// control notes what the gateway said. Gaps are not announced to the
// cursor: for the benchmark a gap is a loss, and it shows as one.
func (c *client) control(ctl wsclient.Control) {
	switch ctl.Type {
	case "replay_complete":
		select {
		case <-c.ready:
		default:
			close(c.ready)
		}
	case "gap":
		c.gaps++
	case "cursor_stale":
		c.stale++
		_ = c.cursor.ApplyControl(ctl) // a malformed frame was counted by the server; the bench goes on
	}
}

// lost is what this client did not receive of the run's records: holes
// plus everything after its last offset up to the last one produced.
func (c *client) lost(before, last map[int32]int64) int64 {
	n := c.cursor.Missing
	for p, l := range last {
		got, ok := c.cursor.Last(p)
		if !ok {
			got = before[p]
		}
		n += max(0, l-got)
	}
	return n
}

// startClients dials n clients (32 at a time), starts them and waits until
// each finished its resume.
func startClients(ctx context.Context, url string, n int, from map[int32]int64, win *window) ([]*client, error) {
	clients := make([]*client, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i := range clients {
		g.Go(func() error {
			c, err := dialClient(gctx, url, i, from, win)
			clients[i] = c
			return err
		})
	}
	err := g.Wait()
	for _, c := range clients {
		if c != nil {
			go c.run(ctx)
		}
	}
	if err != nil {
		return clients, fmt.Errorf("bench: connect clients: %w", err)
	}
	return clients, awaitReady(ctx, clients)
}

func awaitReady(ctx context.Context, clients []*client) error {
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for i, c := range clients {
		select {
		case <-c.ready:
		case <-c.done:
			return fmt.Errorf("bench: client %d ended before its resume completed: %w", i, c.err)
		case <-timeout.C:
			return fmt.Errorf("bench: client %d: no replay_complete within 30s", i)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// awaitDelivered waits until every live client applied want records, or
// grace runs out.
func awaitDelivered(ctx context.Context, clients []*client, want int64, grace time.Duration) {
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if allDelivered(clients, want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func allDelivered(clients []*client, want int64) bool {
	for _, c := range clients {
		select {
		case <-c.done:
			continue // ended early: its losses are counted
		default:
		}
		if c.applied.Load() < want {
			return false
		}
	}
	return true
}

// stopClients ends every client's read loop and waits for them.
func stopClients(cancel context.CancelFunc, clients []*client) {
	cancel()
	for _, c := range clients {
		if c != nil {
			<-c.done
		}
	}
}
