package bench

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// measureIdle opens n idle connections (resumed at "latest", then never
// read) and returns the growth of pid's RSS per connection. In process the
// figure includes the client side of each connection.
func measureIdle(ctx context.Context, t Target, n, addrBase int) (int64, error) {
	settle(t.InProcess)
	before := rssBytes(t.PID)
	conns, err := openIdle(ctx, t.URL, n, addrBase)
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.CloseNow() // teardown
			}
		}
	}()
	if err != nil {
		return 0, err
	}
	// Let the gateway finish setting them up: a session idle for a sweep
	// interval (1-2 s) parks its writer goroutine.
	time.Sleep(3 * time.Second)
	settle(t.InProcess)
	after := rssBytes(t.PID)
	if before == 0 || after == 0 {
		return 0, fmt.Errorf("bench: cannot read the RSS of pid %d", t.PID)
	}
	return (after - before) / int64(n), nil
}

func openIdle(ctx context.Context, url string, n, addrBase int) ([]*wsclient.Lean, error) {
	conns := make([]*wsclient.Lean, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i := range conns {
		g.Go(func() error {
			opts := connectOptions(addrBase+i, &wsclient.Resume{From: wsclient.FromLatest})
			opts.ReadBufferSize = 4 << 10 // idle: nothing to buffer
			c, err := wsclient.DialLean(gctx, url, opts)
			if err != nil {
				return err
			}
			conns[i] = c
			return awaitResume(gctx, c)
		})
	}
	if err := g.Wait(); err != nil {
		return conns, fmt.Errorf("bench: idle connections: %w", err)
	}
	return conns, nil
}

// awaitResume reads until the connection's replay_complete.
func awaitResume(ctx context.Context, c *wsclient.Lean) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		msg, err := c.Next(ctx)
		if err != nil {
			return err
		}
		if msg.Kind == wsclient.KindControl && msg.Control.Type == "replay_complete" {
			return nil
		}
	}
}
