package client

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/wsclient"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// Record is one Kafka record of the DashStream topic as delivered.
type Record struct {
	Partition int32
	Offset    int64
	// Value is the record value byte for byte (a DashStream message behind
	// its framing byte, possibly zstd). Nil for a JSON record.
	Value []byte
	// JSON is the decoded DashStream message in protobuf's canonical JSON
	// mapping (int64 as strings), when Options.JSON is set.
	JSON json.RawMessage
	// Hole reports that offsets before this one in its partition were passed
	// without a gap or skipped frame. Without a filter that is a protocol
	// violation worth reporting; with a filter it is what filtering does.
	Hole bool
	// Late reports a record that filled such a hole: it came after a higher
	// offset of its partition.
	Late bool
}

// Control is a control frame of the gateway: its type ("replay_complete",
// "gap", "skipped", "cursor_stale", "error", "disconnect", ...) and its
// JSON.
type Control struct {
	Type string
	Raw  json.RawMessage
}

// Stats counts what the client saw. Read it with Client.Stats.
type Stats struct {
	Connects   int64 // successful connections
	Duplicates int64 // records at or below the cursor that were dropped
	Gaps       int64 // records the gateway announced lost (gap frames)
	Skipped    int64 // dead-lettered offsets (skipped frames)
}

// Client follows a gateway stream; see the package comment.
type Client struct {
	url    string
	opts   Options
	filter json.RawMessage
	done   chan struct{} // closed by Close

	// Owned by the goroutine calling Next.
	attempt int           // reconnect attempts since the last progress
	retryIn time.Duration // wait before the next connection attempt
	saved   time.Time

	mu         sync.Mutex // guards the fields below; never held across I/O
	cursor     *wsclient.Cursor
	fromCursor bool // resume from the cursor: it was loaded, or a resume completed
	dirty      bool // the cursor moved since it was saved
	conn       *wsclient.Conn
	v2         bool
	closed     bool
	stats      Stats
}

// Dial validates opts, loads the cursor from opts.Store, connects to the
// gateway at url (ws://host:port/ws or wss://…) and sends the resume. The
// first connection is made once: its failure is returned (a
// *HandshakeError when the gateway refused the upgrade). Later
// disconnects are retried by Next.
func Dial(ctx context.Context, url string, opts Options) (*Client, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	f, err := opts.Filter.json()
	if err != nil {
		return nil, err
	}
	c := &Client{url: url, opts: opts, filter: f, done: make(chan struct{}), cursor: wsclient.NewCursor()}
	if opts.Store != nil {
		cur, ok, err := opts.Store.Load(ctx)
		if err != nil {
			return nil, fmt.Errorf("client: load cursor: %w", err)
		}
		if ok {
			c.cursor, c.fromCursor = toInternal(cur), true
		}
	}
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// connect dials once and installs the connection.
func (c *Client) connect(ctx context.Context) error {
	header, err := c.header(ctx)
	if err != nil {
		return err
	}
	ns := wsclient.FetchNamespace(ctx, c.url, header)
	c.mu.Lock()
	resume := c.resume()
	c.mu.Unlock()
	conn, err := wsclient.Dial(ctx, c.url, wsclient.Options{Header: header, Origin: c.opts.Origin,
		ReadLimit: c.opts.ReadLimit, DialTimeout: c.opts.DialTimeout, V2: c.opts.V2, Resume: resume})
	if err != nil {
		var he *wsclient.HandshakeError
		if errors.As(err, &he) {
			return fmt.Errorf("client: dial %s: %w", c.url, &HandshakeError{Status: he.Status})
		}
		return fmt.Errorf("client: %w", err)
	}
	if c.opts.JSON && !conn.V2() {
		_ = conn.Close() // our refusal: a clean close
		return ErrV2Unsupported
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		_ = conn.CloseNow()
		return ErrClosed
	}
	if ns != "" {
		c.cursor.Namespace = ns // what this connection delivers belongs to it
	}
	c.conn, c.v2 = conn, conn.V2()
	c.stats.Connects++
	if c.opts.OnConnect != nil {
		c.opts.OnConnect(c.v2)
	}
	return nil
}

func (c *Client) header(ctx context.Context) (http.Header, error) {
	h := c.opts.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	token := c.opts.Token
	if c.opts.TokenSource != nil {
		t, err := c.opts.TokenSource(ctx)
		if err != nil {
			return nil, fmt.Errorf("client: token: %w", err)
		}
		token = t
	}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return h, nil
}

// resume is the resume frame of the next connection. Caller holds mu.
func (c *Client) resume() *wsclient.Resume {
	r := &wsclient.Resume{Filter: c.filter, Namespace: c.cursor.Namespace}
	if c.opts.JSON {
		r.Format = wsproto.FormatJSON
	}
	if c.fromCursor || len(c.cursor.Partitions()) > 0 {
		r.From, r.Offsets = wsclient.FromCursor, c.cursor.Offsets()
		return r
	}
	if len(c.opts.ThreadSequences) > 0 {
		r.Mode, r.Threads = wsproto.ModeThread, c.opts.ThreadSequences
		return r
	}
	r.From, r.Offsets = cmp.Or(c.opts.From, FromLatest), map[int32]int64{}
	if r.From == FromLatest && c.opts.Join == JoinCheckpoint {
		r.Join = JoinCheckpoint
	}
	return r
}

// Next returns the next record, reconnecting and resuming as needed. It
// returns an error only when the client cannot go on: ctx ended, Close was
// called (ErrClosed), the gateway refused the handshake for good
// (*HandshakeError) or the filter (*ServerError), the token source failed,
// or v2 JSON is unavailable (ErrV2Unsupported). The record returned by the
// previous call counts as applied from now on.
func (c *Client) Next(ctx context.Context) (Record, error) {
	for {
		c.maybeSave(ctx)
		conn, err := c.current(ctx)
		if err != nil {
			return Record{}, err
		}
		msg, err := conn.Next(ctx)
		if err != nil {
			c.drop(ctx, conn, err)
			if ctx.Err() != nil {
				return Record{}, ctx.Err()
			}
			continue
		}
		if msg.Kind == wsclient.KindControl {
			if err := c.control(msg.Control); err != nil {
				_ = conn.Close()
				c.drop(ctx, conn, err)
				return Record{}, err
			}
			continue
		}
		if r, ok := c.record(msg.Record); ok {
			return r, nil
		}
	}
}

// Records iterates over Next's records. An error is yielded once, with a
// zero Record, and ends the iteration.
func (c *Client) Records(ctx context.Context) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		for {
			r, err := c.Next(ctx)
			if !yield(r, err) || err != nil {
				return
			}
		}
	}
}

func (c *Client) record(r wsclient.Record) (Record, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.cursor.Apply(r)
	if v == wsclient.Duplicate {
		c.stats.Duplicates++
		return Record{}, false
	}
	c.dirty = true
	return Record{Partition: r.Partition, Offset: r.Offset, Value: r.Value, JSON: r.JSON,
		Hole: v == wsclient.AppliedAfterHole, Late: v == wsclient.Late}, true
}

// control applies a control frame; an error ends the client.
func (c *Client) control(ctl wsclient.Control) error {
	c.mu.Lock()
	_ = c.cursor.ApplyControl(ctl) // a malformed frame changes nothing; the application still sees it
	c.dirty = true
	switch ctl.Type {
	case "replay_complete":
		c.fromCursor, c.attempt = true, 0
	case "gap":
		var g wsclient.Gap
		if ctl.Decode(&g) == nil {
			c.stats.Gaps += g.Count
		}
	case "skipped":
		c.stats.Skipped++
	}
	c.mu.Unlock()
	if c.opts.OnControl != nil {
		c.opts.OnControl(Control{Type: ctl.Type, Raw: ctl.Raw})
	}
	if ctl.Type != "error" {
		return nil
	}
	var e wsclient.ErrorFrame
	if ctl.Decode(&e) == nil && fatalCodes[e.Code] {
		return &ServerError{Code: e.Code, Message: e.Message}
	}
	return nil
}

// current returns the open connection, or opens one after the pending
// backoff. Connection failures are retried here until one succeeds or
// cannot.
func (c *Client) current(ctx context.Context) (*wsclient.Conn, error) {
	for {
		c.mu.Lock()
		conn, closed := c.conn, c.closed
		c.mu.Unlock()
		switch {
		case closed:
			return nil, ErrClosed
		case conn != nil:
			return conn, nil
		}
		if err := c.wait(ctx, c.retryIn); err != nil {
			return nil, err
		}
		err := c.connect(ctx)
		if err == nil {
			continue
		}
		if permanent(err) || ctx.Err() != nil {
			return nil, cmp.Or(ctx.Err(), err)
		}
		c.scheduleRetry(err)
	}
}

func permanent(err error) bool {
	var he *HandshakeError
	var se *ServerError
	return errors.As(err, &he) && he.Permanent() || errors.As(err, &se) ||
		errors.Is(err, ErrV2Unsupported) || errors.Is(err, ErrClosed)
}

// drop forgets a failed connection, saves the cursor and schedules the
// reconnect.
func (c *Client) drop(ctx context.Context, conn *wsclient.Conn, err error) {
	_ = conn.CloseNow() // it already failed: the read error is what counts
	c.mu.Lock()
	if c.conn == conn {
		c.conn = nil
	}
	closed := c.closed
	c.mu.Unlock()
	if closed || ctx.Err() != nil {
		return
	}
	c.save(ctx)
	c.scheduleRetry(err)
}

func (c *Client) scheduleRetry(err error) {
	c.retryIn = c.opts.backoff(c.attempt, rand.Float64)
	c.attempt++
	if c.opts.OnDisconnect != nil {
		c.opts.OnDisconnect(err, c.retryIn)
	}
}

func (c *Client) wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return ErrClosed
	}
}

// maybeSave saves a moved cursor at most every SaveInterval.
func (c *Client) maybeSave(ctx context.Context) {
	if c.opts.Store != nil && time.Since(c.saved) >= c.opts.saveInterval() {
		c.save(ctx)
	}
}

// save is Save for the client's own occasions: a failure is retried at the
// next one, and the in-memory cursor stays exact meanwhile.
func (c *Client) save(ctx context.Context) {
	_ = c.Save(ctx) // retried: Save leaves the cursor dirty
}

// Save writes the cursor to Options.Store now (when it moved): every record
// Next returned counts as applied. Next saves by itself every SaveInterval;
// Save is for an application that wants its own rhythm (every N records).
// Call it from the goroutine that calls Next.
func (c *Client) Save(ctx context.Context) error {
	c.mu.Lock()
	if c.opts.Store == nil || !c.dirty {
		c.mu.Unlock()
		return nil
	}
	cur := Cursor{Namespace: c.cursor.Namespace, Offsets: c.cursor.Offsets()}
	c.dirty = false
	c.mu.Unlock()
	c.saved = time.Now()
	if err := c.opts.Store.Save(ctx, cur); err != nil {
		c.mu.Lock()
		c.dirty = true
		c.mu.Unlock()
		return fmt.Errorf("client: save cursor: %w", err)
	}
	return nil
}

// Cursor returns the client's position: what it would resume from.
func (c *Client) Cursor() Cursor {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Cursor{Namespace: c.cursor.Namespace, Offsets: c.cursor.Offsets()}
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// V2 reports whether the current (or last) connection speaks protocol v2.
func (c *Client) V2() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.v2
}

// Close ends the client: a blocked Next returns ErrClosed, the connection
// is closed normally, and the cursor (every record Next returned counts as
// applied) is saved to the store, whose error Close returns.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	conn := c.conn
	c.conn = nil
	cur := Cursor{Namespace: c.cursor.Namespace, Offsets: c.cursor.Offsets()}
	dirty := c.dirty && c.opts.Store != nil
	c.dirty = false
	c.mu.Unlock()
	if conn != nil {
		_ = conn.Close() // best effort: the peer may be gone already
	}
	if !dirty {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.opts.Store.Save(ctx, cur); err != nil {
		return fmt.Errorf("client: save cursor: %w", err)
	}
	return nil
}
