package chaos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// Delivery is one record a client applied, in the resume namespace of the
// connection that carried it.
type Delivery struct {
	Namespace string
	Key       Key
	Value     []byte
}

// Span is an inclusive offset range a gap or skipped frame announced.
type Span struct {
	Namespace string
	Partition int32
	From, To  int64
	Type      string // "gap" or "skipped"
}

// Close is how a connection of a client ended.
type Close struct {
	At     time.Time
	Code   int // WebSocket close code; 0 when the connection broke without one
	Reason string
	Err    string
}

// Client is a dashboard stand-in: it follows the stream with
// wsclient.Follower (resuming from its own cursor after every disconnect,
// failing over round robin across URLs) and logs every record, control frame
// and close.
type Client struct {
	Name string

	urls   []string
	cursor *wsclient.Cursor
	cancel context.CancelFunc
	done   chan struct{}
	runErr error

	// mu guards the fields below.
	mu         sync.Mutex
	deliveries []Delivery
	announced  []Span
	controls   map[string]int
	errorCodes []string
	disconnect []string // raw disconnect frames
	closes     []Close
	last       map[int32]int64 // last offset applied per partition, current namespace
	lastNS     string
	lastRecord time.Time
}

// StartClient connects to urls[0] and follows the stream until Stop. The
// first resume lists offsets (the last offset applied per partition, -1 for
// none); nil lists no partition, so the gateway replays its whole replay
// window, as for a fresh dashboard.
func StartClient(name string, offsets map[int32]int64, urls ...string) *Client {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{Name: name, urls: urls, cursor: wsclient.NewCursor(), cancel: cancel,
		done: make(chan struct{}), controls: map[string]int{}, last: map[int32]int64{}}
	for p, o := range offsets {
		c.cursor.Set(p, o)
	}
	f := &wsclient.Follower{URL: urls[0], Cursor: c.cursor, From: wsclient.FromCursor,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	f.OnRecord = func(r wsclient.Record, _ wsclient.Verdict) error { c.record(f.Cursor.Namespace, r); return nil }
	f.OnControl = func(ctl wsclient.Control) error { return c.control(f.Cursor.Namespace, ctl) }
	next := 0
	f.OnDisconnect = func(err error, _ time.Duration) {
		c.disconnected(err)
		next = (next + 1) % len(urls)
		f.URL = urls[next] // read by the Follower's own goroutine, the one calling this
	}
	go func() {
		defer close(c.done)
		c.runErr = f.Run(ctx)
	}()
	return c
}

func (c *Client) record(ns string, r wsclient.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ns != c.lastNS {
		clear(c.last)
		c.lastNS = ns
	}
	c.deliveries = append(c.deliveries, Delivery{Namespace: ns, Key: Key{r.Partition, r.Offset}, Value: r.Value})
	c.last[r.Partition] = max(c.last[r.Partition], r.Offset)
	c.lastRecord = time.Now()
}

func (c *Client) control(ns string, ctl wsclient.Control) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.controls[ctl.Type]++
	switch ctl.Type {
	case "gap":
		var g wsclient.Gap
		if err := ctl.Decode(&g); err != nil {
			return err
		}
		c.announced = append(c.announced, Span{ns, g.Partition, int64(g.FromOffset), int64(g.ToOffset), "gap"})
	case "skipped":
		var s wsclient.Skipped
		if err := ctl.Decode(&s); err != nil {
			return err
		}
		c.announced = append(c.announced, Span{ns, s.Partition, int64(s.Offset), int64(s.Offset), "skipped"})
	case "disconnect":
		c.disconnect = append(c.disconnect, string(ctl.Raw))
	case "error":
		var e wsclient.ErrorFrame
		if err := ctl.Decode(&e); err != nil {
			return err
		}
		c.errorCodes = append(c.errorCodes, e.Code)
	}
	return nil
}

func (c *Client) disconnected(err error) {
	cl := Close{At: time.Now()}
	if err != nil {
		cl.Err = err.Error()
	}
	var ce *wsclient.CloseError
	if errors.As(err, &ce) {
		cl.Code, cl.Reason = ce.Code, ce.Reason
	}
	c.mu.Lock()
	c.closes = append(c.closes, cl)
	c.mu.Unlock()
}

// Stop ends the client and waits for its goroutine. It returns what made the
// follower stop early (a malformed frame, a refused handshake), if anything.
func (c *Client) Stop() error {
	c.cancel()
	<-c.done
	if c.runErr != nil {
		return fmt.Errorf("chaos: client %s: %w", c.Name, c.runErr)
	}
	return nil
}

// CaughtUp reports whether the client applied, in its current namespace,
// every partition's records up to ends (next offsets; a partition with end 0
// needs nothing).
func (c *Client) CaughtUp(ends map[int32]int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, end := range ends {
		if end == 0 {
			continue
		}
		if last, ok := c.last[p]; !ok || last < end-1 {
			return false
		}
	}
	return true
}

// Received returns how many records the client applied so far.
func (c *Client) Received() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.deliveries)
}

// LastRecord is when the client last applied a record.
func (c *Client) LastRecord() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastRecord
}

// Closes returns the connection ends seen so far.
func (c *Client) Closes() []Close {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Close(nil), c.closes...)
}

// Controls returns how many control frames of each type arrived.
func (c *Client) Controls() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.controls))
	for k, v := range c.controls {
		out[k] = v
	}
	return out
}

// ErrorCodes returns the codes of the error frames received, in order.
func (c *Client) ErrorCodes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errorCodes...)
}

// Disconnects returns the disconnect frames received, as sent.
func (c *Client) Disconnects() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.disconnect...)
}

// Log is what Audit reads: a snapshot of the client's deliveries and
// announcements, and the duplicates its cursor dropped. Call it after Stop.
func (c *Client) Log() ClientLog {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ClientLog{Name: c.Name, Deliveries: append([]Delivery(nil), c.deliveries...),
		Announced: append([]Span(nil), c.announced...), DroppedDuplicates: c.cursor.Duplicates}
}
