package wsclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"
)

// Follower reads a gateway stream across disconnects: it dials, resumes from
// its Cursor, hands records and control frames to its callbacks, and after
// any connection failure reconnects with capped, jittered backoff. It never
// hands over a duplicate: Cursor.Apply filters them (and counts them).
type Follower struct {
	URL string
	// Options are the dial options; Resume is ignored (built from Cursor).
	Options Options
	// Cursor is where to resume. Nil: Run starts an empty one.
	Cursor *Cursor
	// From is the starting point while nothing has been received yet:
	// FromLatest, FromEarliest or FromCursor. Empty: FromCursor.
	From string
	// Threads, when set, makes the first resume a thread resume: each listed
	// thread replays its events after the given sequence (docs/PROTOCOL.md §3.4).
	Threads map[string]uint64
	// OnRecord receives every record that is not a duplicate. A non-nil
	// error stops Run, which returns it. Required.
	OnRecord func(Record, Verdict) error
	// OnControl receives every control frame after the cursor saw it. Nil:
	// ignored. A non-nil error stops Run.
	OnControl func(Control) error
	// OnConnect is called after each successful dial, before any message of
	// that connection. Nil: silent.
	OnConnect func()
	// OnDisconnect is told why a connection (or an attempt to open one)
	// ended and when the next attempt is. Nil: silent.
	OnDisconnect func(err error, retryIn time.Duration)
	// MinBackoff and MaxBackoff bound the reconnect delay. Zero: 250 ms, 10 s.
	MinBackoff, MaxBackoff time.Duration

	started bool // a replay_complete was seen: resume from the cursor from now on
}

// errStop wraps callback errors so Run can tell them from connection errors.
type errStop struct{ err error }

func (e errStop) Error() string { return e.err.Error() }

// Run follows the stream until ctx ends (then it returns nil), a callback
// fails, or the server refuses the handshake for good.
func (f *Follower) Run(ctx context.Context) error {
	if f.Cursor == nil {
		f.Cursor = NewCursor()
	}
	for attempt := 0; ; attempt++ {
		progressed, err := f.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var stop errStop
		var he *HandshakeError
		if errors.As(err, &stop) {
			return stop.err
		}
		if errors.As(err, &he) && he.Permanent() {
			return err
		}
		if progressed {
			attempt = 0
		}
		delay := jitter(f.backoff(attempt))
		if f.OnDisconnect != nil {
			f.OnDisconnect(err, delay)
		}
		if !sleep(ctx, delay) {
			return nil
		}
	}
}

// session runs one connection; progressed reports a completed resume.
func (f *Follower) session(ctx context.Context) (progressed bool, err error) {
	ns := FetchNamespace(ctx, f.URL, f.Options.Header)
	opts := f.Options
	opts.Resume = f.resume()
	conn, err := Dial(ctx, f.URL, opts)
	if err != nil {
		return false, err
	}
	if ns != "" {
		f.Cursor.Namespace = ns // what this connection delivers belongs to it
	}
	if f.OnConnect != nil {
		f.OnConnect()
	}
	for {
		msg, err := conn.Next(ctx)
		if err != nil {
			_ = conn.CloseNow() // the read error is the one to report
			return f.started, err
		}
		if err := f.handle(msg); err != nil {
			conn.Close() // our decision to stop: a clean close for the server
			return f.started, err
		}
	}
}

func (f *Follower) resume() *Resume {
	switch {
	case f.started || len(f.Cursor.parts) > 0:
		return f.Cursor.Resume(FromCursor)
	case len(f.Threads) > 0:
		return &Resume{Threads: f.Threads, Mode: "thread", Namespace: f.Cursor.Namespace}
	}
	return &Resume{From: f.From, Offsets: map[int32]int64{}, Namespace: f.Cursor.Namespace}
}

func (f *Follower) handle(msg Message) error {
	if msg.Kind == KindRecord {
		v := f.Cursor.Apply(msg.Record)
		if v == Duplicate {
			return nil
		}
		return wrapStop(f.OnRecord(msg.Record, v))
	}
	cerr := f.Cursor.ApplyControl(msg.Control)
	if msg.Control.Type == "replay_complete" && cerr == nil {
		f.started = true
	}
	if f.OnControl != nil {
		return wrapStop(f.OnControl(msg.Control))
	}
	return nil
}

func wrapStop(err error) error {
	if err != nil {
		return errStop{err}
	}
	return nil
}

func (f *Follower) backoff(attempt int) time.Duration {
	lo, hi := f.MinBackoff, f.MaxBackoff
	if lo <= 0 {
		lo = 250 * time.Millisecond
	}
	if hi <= 0 {
		hi = 10 * time.Second
	}
	return min(lo<<min(attempt, 16), hi)
}

// jitter spreads reconnects of many clients: ±20 %.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// versionClient keeps no idle connections: a follower asks once per dial.
var versionClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// FetchNamespace returns the gateway's resume_namespace from /version next
// to the WebSocket URL, or "" when it cannot be read (best effort, 2 s).
func FetchNamespace(ctx context.Context, wsURL string, header http.Header) string {
	u, err := url.Parse(wsURL)
	if err != nil {
		return ""
	}
	u.Scheme = map[string]string{"ws": "http", "wss": "https"}[u.Scheme]
	u.Path, u.RawQuery = "/version", ""
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil || u.Scheme == "" {
		return ""
	}
	req.Header = header.Clone()
	resp, err := versionClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var v struct {
		Namespace string `json:"resume_namespace"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&v) != nil {
		return ""
	}
	return v.Namespace
}
