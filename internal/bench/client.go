package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dashflow/dashstream-gateway/internal/sseclient"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// client is one measuring WebSocket client. Its fields are owned by its
// goroutine until done is closed; applied is read concurrently.
type client struct {
	conn   *wsclient.Lean
	sse    *sseclient.Stream // instead of conn for an SSE client (sse.go)
	cursor *wsclient.Cursor
	win    *window
	hist   Histogram
	// before and during split hist's live latencies around a join burst.
	before, during Histogram
	applied        atomic.Int64 // records that were not duplicates
	ready          chan struct{}
	done           chan struct{}

	// thread is the only thread a filtered client may receive (nil: no
	// filter); want how many records of it the run produced.
	thread []byte
	want   func() int64
	// types is the mask of the message types a types-filtered client may
	// receive (bit n: the envelope's body field n; 0: no types filter).
	types uint16

	delivered int64 // records of the measured window
	// scanned counts the JSON record frames the scanner read, fullDecodes
	// those it left to encoding/json.
	scanned, fullDecodes int64
	foreign              int64 // records a filtered client received outside its filter
	gaps                 int64 // gap frames (each a loss the gateway admitted)
	stale                int64 // cursor_stale frames (a setup problem)
	err                  error // why the connection ended before the run did
}

// connectOptions dials from the client's own loopback address.
func connectOptions(i int, resume *wsclient.Resume) wsclient.Options {
	return wsclient.Options{Resume: resume, LocalAddr: sourceAddr(i), ReadBufferSize: 64 << 10}
}

// clientSpec is what makes client i of a run different from the others.
type clientSpec struct {
	i      int
	v2     bool
	format string   // "json": v2 JSON record frames
	thread int      // the thread it follows with a filter; -1: none
	types  []string // the message types it is filtered to; nil: none
}

func dialClient(ctx context.Context, url string, spec clientSpec, pr *producer, win *window) (*client, error) {
	from := pr.cursor()
	res := &wsclient.Resume{From: wsclient.FromCursor, Offsets: from}
	c := &client{cursor: wsclient.NewCursor(), win: win, ready: make(chan struct{}), done: make(chan struct{}),
		want: pr.expected}
	if spec.thread >= 0 {
		id := threadID(0, spec.thread)
		res.Filter = json.RawMessage(`{"threads":[` + strconv.Quote(id) + `]}`)
		c.thread = []byte(id)
		c.want = func() int64 { return pr.threadExpected(spec.thread) }
	}
	if err := c.filterTypes(spec.types, pr); err != nil {
		return nil, err
	}
	if c.types != 0 {
		res.Filter = typesFilter(spec.types)
	}
	if spec.format == "json" {
		res.Format = "json"
	}
	opts := connectOptions(spec.i, res)
	opts.V2 = spec.v2
	conn, err := wsclient.DialLean(ctx, url, opts)
	if err != nil {
		return nil, err
	}
	c.conn = conn
	for p, o := range from {
		c.cursor.Set(p, o)
	}
	return c, nil
}

// filterTypes makes c a client filtered to the message types named (none:
// unchanged), checked for exactly the produced records of those types.
func (c *client) filterTypes(types []string, pr *producer) error {
	if len(types) == 0 {
		return nil
	}
	mask, err := typesMask(types)
	if err != nil {
		return err
	}
	c.types = mask
	c.want = func() int64 { return pr.typesExpected(mask) }
	return nil
}

// filtered reports whether c has a filter: it passes over other records'
// offsets by design.
func (c *client) filtered() bool { return c.thread != nil || c.types != 0 }

// run reads until ctx ends or the connection fails.
func (c *client) run(ctx context.Context) {
	if c.sse != nil {
		c.runSSE(ctx)
		return
	}
	defer close(c.done)
	defer c.conn.Close()
	if c.conn.V2() {
		c.runV2(ctx)
		return
	}
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

// verifyEvery: of the JSON record frames the scanner reads, one in
// verifyEvery per client (the first, then every verifyEvery-th) is decoded
// again with encoding/json, and a disagreement ends the client with an
// error: a malformed frame that got past the scanner still counts.
const verifyEvery = 1000

// runV2 reads a v2 connection frame by frame until ctx ends or the
// connection fails.
func (c *client) runV2(ctx context.Context) {
	for {
		text, b, err := c.conn.NextFrame(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.err = err
			}
			return
		}
		if err := c.frameV2(text, b, c.conn.ReceivedAt().UnixMicro()); err != nil {
			c.err = err
			return
		}
	}
}

// frameV2 accounts one v2 frame received at now (µs since the epoch). A
// JSON record frame is read by scanRecordJSON (no encoding/json per
// record); what the scanner cannot read goes through the protocol parser
// and encoding/json. An error is a frame the client cannot accept.
func (c *client) frameV2(text bool, b []byte, now int64) error {
	if text {
		if rec, err := scanRecordJSON(b); err == nil {
			if c.scanned++; c.scanned%verifyEvery == 1 {
				if err := verifyScan(b, rec); err != nil {
					return err
				}
			}
			c.recordJSON(rec, now)
			return nil
		}
	}
	msg, err := wsclient.ParseV2Frame(text, b)
	switch {
	case err != nil:
		return err
	case msg.Kind == wsclient.KindControl:
		c.control(msg.Control)
	case msg.Record.JSON == nil:
		c.record(msg.Record, now)
	default: // a JSON record in a form the scanner leaves to encoding/json
		rec, _, err := decodeRecordJSON(b)
		if err != nil {
			return err
		}
		c.fullDecodes++
		rec.partition, rec.offset = msg.Record.Partition, msg.Record.Offset // the protocol parser's reading
		c.recordJSON(rec, now)
	}
	return nil
}

// record accounts r, received at now (µs since the epoch).
func (c *client) record(r wsclient.Record, now int64) {
	if c.cursor.Apply(r) == wsclient.Duplicate {
		return // counted by the cursor; neither delivered nor timed
	}
	if c.thread != nil {
		if th, ok := headerThread(r.Value); !ok || !bytes.Equal(th, c.thread) {
			c.foreign++ // the filter let through what it should have held back
			return
		}
	}
	if c.types != 0 {
		if k, ok := bodyKind(r.Value); !ok || c.types&(1<<k) == 0 {
			c.foreign++
			return
		}
	}
	c.applied.Add(1)
	if ts, ok := headerTimestamp(r.Value); ok && c.win.contains(ts) {
		c.delivered++
		c.hist.Record(now - ts)
		c.phaseRecord(now, now-ts)
	}
}

// recordJSON accounts a v2 JSON record received at now.
func (c *client) recordJSON(r jsonRecord, now int64) {
	if c.cursor.Apply(wsclient.Record{Partition: r.partition, Offset: r.offset, JSON: r.message}) == wsclient.Duplicate {
		return
	}
	if c.thread != nil && (r.thread == nil || !bytes.Equal(r.thread, c.thread)) {
		c.foreign++
		return
	}
	if c.types != 0 {
		if k, ok := jsonKind(r.message); !ok || c.types&(1<<k) == 0 {
			c.foreign++
			return
		}
	}
	c.applied.Add(1)
	if r.timed && c.win.contains(r.ts) {
		c.delivered++
		c.hist.Record(now - r.ts)
		c.phaseRecord(now, now-r.ts)
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
// plus everything after its last offset up to the last one produced. A
// filtered client passes over other threads' offsets by design: its loss is
// its thread's (or its types') records that never came.
func (c *client) lost(before, last map[int32]int64) int64 {
	if c.filtered() {
		return max(0, c.want()-c.applied.Load())
	}
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

// startClients dials the run's clients (32 at a time), starts them and
// waits until each finished its resume.
func startClients(ctx context.Context, url string, cfg Config, pr *producer, win *window) ([]*client, error) {
	clients := make([]*client, cfg.Clients)
	dial := dialClient
	if cfg.SSE {
		base, err := sseURL(url)
		if err != nil {
			return nil, err
		}
		url, dial = base, dialSSEClient
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i := range clients {
		spec := clientSpec{i: i, v2: cfg.V2, format: cfg.Format, thread: -1, types: cfg.FilterTypes}
		if cfg.FilterPerClient {
			spec.thread = i % cfg.Threads
		}
		g.Go(func() error {
			c, err := dial(gctx, url, spec, pr, win)
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

// awaitDelivered waits until every live client applied the records it
// must receive, or grace runs out.
func awaitDelivered(ctx context.Context, clients []*client, grace time.Duration) {
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if allDelivered(clients) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func allDelivered(clients []*client) bool {
	for _, c := range clients {
		select {
		case <-c.done:
			continue // ended early: its losses are counted
		default:
		}
		if c.applied.Load() < c.want() {
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
