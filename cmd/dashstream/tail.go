package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
	"github.com/dashflow/dashstream-gateway/pkg/client"
)

// runTail implements `dashstream tail`.
func runTail(ctx context.Context, args []string, e env) int {
	o, code := parseTailFlags(args, e)
	if code >= 0 {
		return code
	}
	t, err := newTail(o, e.stdout, e.stderr)
	if err != nil {
		fmt.Fprintf(e.stderr, "dashstream tail: %v\n", err)
		return 1
	}
	return t.run(ctx)
}

// errMaxReached ends the stream once --max records were printed.
var errMaxReached = errors.New("max records printed")

type tail struct {
	o         tailOptions
	out       *bufio.Writer
	enc       *json.Encoder
	errw      io.Writer
	dec       *dashstream.Decoder
	store     client.CursorStore // nil without --cursor-file
	resumed   bool               // the cursor file exists
	c         *client.Client
	printed   int
	sinceSave int

	// Set on the reading goroutine only (client callbacks run there too).
	connected bool  // a connection was made at least once
	lastErr   error // why the last attempt before the first connection failed
}

func newTail(o tailOptions, stdout, stderr io.Writer) (*tail, error) {
	out := bufio.NewWriterSize(stdout, 64<<10)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	t := &tail{o: o, out: out, enc: enc, errw: stderr, dec: dashstream.NewDecoder(dashstream.DecoderConfig{})}
	if o.cursorFile == "" {
		return t, nil
	}
	fs := client.FileStore{Path: o.cursorFile}
	_, ok, err := fs.Load(context.Background()) // a corrupt file is refused before connecting
	if err != nil {
		return nil, err
	}
	t.store, t.resumed = fs, ok
	return t, nil
}

func (t *tail) run(parent context.Context) int {
	ctx := parent
	if t.o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.o.timeout)
		defer cancel()
	}
	err := t.follow(ctx)
	code := t.exitCode(parent, ctx, err)
	if ferr := t.out.Flush(); ferr != nil && code == 0 {
		code = 1
	}
	if t.c != nil {
		if cerr := t.c.Close(); cerr != nil { // saves the cursor file
			t.errorf("%v", cerr)
			code = 1
		}
	}
	return code
}

// follow connects and prints records until ctx ends, --max records were
// printed, or the stream cannot go on.
func (t *tail) follow(ctx context.Context) error {
	c, err := t.dial(ctx)
	if c == nil {
		return err
	}
	t.c = c
	for {
		r, err := c.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := t.onRecord(ctx, r); err != nil {
			return err
		}
	}
}

// dial makes the first connection. Without --timeout one attempt is made;
// with it, attempts go on (with backoff) until it expires. (nil, nil) means
// no connection: lastErr says why.
func (t *tail) dial(ctx context.Context) (*client.Client, error) {
	opts := t.clientOptions()
	for attempt := 0; ; attempt++ {
		c, err := client.Dial(ctx, t.o.url, opts)
		if err == nil {
			return c, nil
		}
		var he *client.HandshakeError
		var se *client.ServerError
		switch {
		case ctx.Err() != nil:
			return nil, nil
		case errors.As(err, &he) && he.Permanent(), errors.As(err, &se), errors.Is(err, client.ErrV2Unsupported):
			return nil, err
		}
		t.lastErr = err
		if t.o.timeout == 0 || !sleepCtx(ctx, dialBackoff(attempt)) {
			return nil, nil
		}
	}
}

// dialBackoff is the delay before the next first-connection attempt:
// 250 ms doubling up to 5 s.
func dialBackoff(attempt int) time.Duration {
	return min(250*time.Millisecond<<min(attempt, 5), 5*time.Second)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (t *tail) clientOptions() client.Options {
	o := client.Options{Token: t.o.token, Origin: t.o.origin, V2: t.o.v2 || t.o.json, JSON: t.o.json,
		Filter: t.o.filter, From: t.o.from, Join: t.o.join,
		SaveInterval: 24 * time.Hour, // tail saves every --save-every records (and on disconnects and exit)
		OnControl:    t.onControl, OnConnect: func(bool) { t.connected = true }, OnDisconnect: t.onDisconnect}
	if o.From == wsclient.FromCursor {
		// Without a cursor file no partition is listed, and an unlisted
		// partition replays from its window's oldest record: "earliest".
		o.From = client.FromEarliest
	}
	if t.store != nil {
		o.Store = t.store
	}
	if t.o.lastSeqGiven && len(t.o.filter.Threads) == 1 {
		o.ThreadSequences = map[string]uint64{t.o.filter.Threads[0]: t.o.lastSeq}
	}
	return o
}

// exitCode reports how the stream ended. parent ends on an interrupt, ctx
// also at --timeout.
func (t *tail) exitCode(parent, ctx context.Context, err error) int {
	switch {
	case errors.Is(err, errMaxReached):
		return 0
	case err != nil:
		t.errorf("%s", t.refusal(err))
		return 1
	case !t.connected && parent.Err() == nil:
		t.errorf("%s", t.unreachable())
		return exitUnreachable
	case t.o.max > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded):
		t.errorf("timed out after %d of %d records", t.printed, t.o.max)
		return 1
	}
	return 0
}

// errorf writes one "dashstream tail: " line to stderr, secrets redacted.
func (t *tail) errorf(format string, a ...any) {
	fmt.Fprintln(t.errw, t.redact("dashstream tail: "+fmt.Sprintf(format, a...)))
}

// redact hides the token, wherever an error message repeats it (a URL
// with ?token= in a dial error, say).
func (t *tail) redact(s string) string {
	for _, secret := range append(urlSecrets(t.o.url), t.o.token) {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "<redacted>")
		}
	}
	return s
}

// refusal explains an error that ended Run: most often the gateway
// refusing the handshake for good.
func (t *tail) refusal(err error) string {
	var he *client.HandshakeError
	if !errors.As(err, &he) {
		return err.Error()
	}
	hint := ""
	switch he.Status {
	case http.StatusUnauthorized:
		hint = ": check the token (--token, --token-file, " + envToken + " or " + envTokenFile + ")"
	case http.StatusForbidden:
		hint = ": check the token and --origin"
	case http.StatusNotFound:
		hint = ": check the URL's path (the gateway serves /ws)"
	}
	return fmt.Sprintf("%s refused the connection (HTTP %d)%s", shownURL(t.o.url), he.Status, hint)
}

// unreachable is the one line that explains why no connection was made.
func (t *tail) unreachable() string {
	hint := "is it running? try 'dashstream demo'"
	var he *client.HandshakeError
	switch {
	case errors.As(t.lastErr, &he):
		hint = "it answers but does not accept connections now; retry, or wait with --timeout"
	case !loopbackURL(t.o.url):
		hint = "is it running, and reachable from here?"
	}
	return fmt.Sprintf("cannot reach %s (%s): %s", shownURL(t.o.url), reachCause(t.lastErr, t.o.timeout), hint)
}

// reachCause is the short reason of a failed dial: "connection refused",
// "no such host", "HTTP 503", "no answer within 5s".
func reachCause(err error, timeout time.Duration) string {
	var he *client.HandshakeError
	var dnsErr *net.DNSError
	var errno syscall.Errno
	switch {
	case err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		if timeout > 0 {
			return "no answer within " + timeout.String()
		}
		return "no answer"
	case errors.As(err, &he):
		return "HTTP " + strconv.Itoa(he.Status)
	case errors.As(err, &dnsErr):
		return dnsErr.Err
	case errors.As(err, &errno):
		return errno.Error()
	}
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(err) {
		err = u
	}
	return err.Error()
}

func (t *tail) onRecord(ctx context.Context, r client.Record) error {
	switch {
	case r.Hole && t.o.filter.IsZero(): // with a filter, passing offsets is what filtering does
		fmt.Fprintf(t.errw, "hole: partition %d jumped to offset %d without a gap or skipped frame\n", r.Partition, r.Offset)
	case r.Late:
		fmt.Fprintf(t.errw, "out of order: partition %d offset %d arrived after a higher offset\n", r.Partition, r.Offset)
	}
	if err := t.print(r); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	t.printed++
	if t.sinceSave++; t.sinceSave >= t.o.saveEvery {
		t.sinceSave = 0
		if err := t.c.Save(ctx); err != nil {
			return err
		}
	}
	if t.o.max > 0 && t.printed >= t.o.max {
		return errMaxReached
	}
	return nil
}

func (t *tail) print(r client.Record) error {
	if r.JSON != nil {
		return firstErr(t.enc.Encode(jsonLine{Partition: r.Partition, Offset: strconv.FormatInt(r.Offset, 10), Message: r.JSON}), t.out.Flush())
	}
	d, err := t.dec.Decode(r.Value)
	if t.o.pretty {
		_, werr := t.out.WriteString(prettyLine(r, d, err) + "\n")
		return firstErr(werr, t.out.Flush())
	}
	if err != nil {
		return firstErr(t.enc.Encode(errorLineOf(r, err)), t.out.Flush())
	}
	line, err := recordLineOf(r, d)
	if err != nil {
		return err
	}
	return firstErr(t.enc.Encode(line), t.out.Flush())
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// recordLine is the JSON line of a decoded record.
type recordLine struct {
	Partition   int32          `json:"partition"`
	Offset      string         `json:"offset"`
	Framing     string         `json:"framing"`
	MessageType string         `json:"message_type"`
	ThreadID    string         `json:"thread_id"`
	Sequence    string         `json:"sequence"`
	TimestampUs string         `json:"timestamp_us"`
	Message     map[string]any `json:"message"`
}

// jsonLine is the line of a v2 JSON record (--json): the gateway's
// canonical protobuf JSON of the message, as received.
type jsonLine struct {
	Partition int32           `json:"partition"`
	Offset    string          `json:"offset"`
	Message   json.RawMessage `json:"message"`
}

// errorLine is the JSON line of a value the decoder rejected.
type errorLine struct {
	Partition int32  `json:"partition"`
	Offset    string `json:"offset"`
	ErrorKind string `json:"error_kind"`
	Error     string `json:"error"`
}

func recordLineOf(r client.Record, d *dashstream.Decoded) (recordLine, error) {
	msg, err := dashstream.RenderJSON(d)
	if err != nil {
		return recordLine{}, err
	}
	h := headerOf(d)
	return recordLine{Partition: r.Partition, Offset: strconv.FormatInt(r.Offset, 10),
		Framing: d.Framing.String(), MessageType: d.MessageType(), ThreadID: h.ThreadID,
		Sequence: strconv.FormatUint(h.Sequence, 10), TimestampUs: strconv.FormatInt(h.TimestampUs, 10),
		Message: msg}, nil
}

func errorLineOf(r client.Record, err error) errorLine {
	kind := "unknown"
	var de *dashstream.DecodeError
	if errors.As(err, &de) {
		kind = de.Kind.String()
	}
	return errorLine{Partition: r.Partition, Offset: strconv.FormatInt(r.Offset, 10), ErrorKind: kind, Error: err.Error()}
}

// headerOf is the body header, or for a batch without one its first event's.
func headerOf(d *dashstream.Decoded) dashstream.HeaderRef {
	if h := d.Header(); h != nil && h.GetThreadId() != "" {
		return dashstream.HeaderRef{ThreadID: h.GetThreadId(), Sequence: h.GetSequence(), TimestampUs: h.GetTimestampUs()}
	}
	if len(d.Headers) > 0 {
		return d.Headers[0]
	}
	return dashstream.HeaderRef{}
}

// prettyLine is `p0@41 event NODE_START node=x thread=t seq=5`.
func prettyLine(r client.Record, d *dashstream.Decoded, err error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "p%d@%d ", r.Partition, r.Offset)
	if err != nil {
		b.WriteString("undecodable " + errorLineOf(r, err).ErrorKind + ": " + err.Error())
		return b.String()
	}
	b.WriteString(d.MessageType())
	if detail := prettyDetail(d.Message); detail != "" {
		b.WriteString(" " + detail)
	}
	h := headerOf(d)
	fmt.Fprintf(&b, " thread=%s seq=%d", printable(dashstream.TruncateID(h.ThreadID, 64)), h.Sequence)
	return b.String()
}

// prettyDetail names what happened, per message kind.
func prettyDetail(m *pb.DashStreamMessage) string {
	switch {
	case m.GetEvent() != nil:
		e := m.GetEvent()
		s := strings.TrimPrefix(e.GetEventType().String(), "EVENT_TYPE_")
		if e.GetNodeId() != "" {
			s += " node=" + printable(dashstream.TruncateID(e.GetNodeId(), 64))
		}
		return s
	case m.GetEventBatch() != nil:
		return "events=" + strconv.Itoa(len(m.GetEventBatch().GetEvents()))
	case m.GetToolExecution() != nil:
		te := m.GetToolExecution()
		return printable(dashstream.TruncateID(te.GetToolName(), 64)) + " " + strings.TrimPrefix(te.GetStage().String(), "TOOL_STAGE_")
	case m.GetError() != nil:
		return printable(dashstream.TruncateID(m.GetError().GetErrorCode(), 64))
	}
	return ""
}

// printable keeps a terminal line intact: control characters and spaces
// become escapes, so a hostile id cannot rewrite the screen or split fields.
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r < 0x21 || r == 0x7f }) < 0 {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

func (t *tail) onControl(c client.Control) {
	if line := controlLine(wsclient.Control{Type: c.Type, Raw: c.Raw}); line != "" {
		fmt.Fprintln(t.errw, line)
	}
}

// onDisconnect reports a lost connection (the client saved the cursor file
// before calling it).
func (t *tail) onDisconnect(err error, retryIn time.Duration) {
	fmt.Fprintln(t.errw, t.redact(fmt.Sprintf("disconnected: %v; reconnecting in %s", err, retryIn.Round(time.Millisecond))))
}

// controlLine renders a control frame for stderr; "" for frames not worth a
// line (pong).
func controlLine(c wsclient.Control) string {
	switch c.Type {
	case "gap":
		var g wsclient.Gap
		if c.Decode(&g) == nil {
			return fmt.Sprintf("gap: partition %d offsets %d..%d lost (%d records, %s, %s): %s",
				g.Partition, g.FromOffset, g.ToOffset, g.Count, g.Severity, g.Reason, g.Message)
		}
	case "skipped":
		var s wsclient.Skipped
		if c.Decode(&s) == nil {
			return fmt.Sprintf("skipped: partition %d offset %d was dead-lettered (%s)", s.Partition, s.Offset, s.ErrorType)
		}
	case "cursor_stale":
		var s wsclient.CursorStale
		if c.Decode(&s) == nil {
			return fmt.Sprintf("cursor_stale: partition %d requested %d, oldest retained %d: %s", s.Partition, s.Requested, s.Oldest, s.Message)
		}
	case "disconnect":
		var d wsclient.Disconnect
		if c.Decode(&d) == nil {
			return fmt.Sprintf("disconnect: %s (lag %d in %ds window, %d total, threshold %d): %s",
				d.Reason, d.LagInWindow, d.WindowSecs, d.CumulativeLag, d.Threshold, d.Message)
		}
	case "error":
		var e wsclient.ErrorFrame
		if c.Decode(&e) == nil {
			return fmt.Sprintf("error: %s: %s %s", e.Code, e.Message, strings.Join(e.Entries, " "))
		}
	case "replay_complete":
		var rc wsclient.ReplayComplete
		if c.Decode(&rc) == nil {
			return fmt.Sprintf("replay_complete: %d records replayed (mode %s, capped %t)", rc.TotalReplayed, rc.Mode, rc.Capped)
		}
	case "pong":
		return ""
	}
	return c.Type + ": " + string(c.Raw)
}
