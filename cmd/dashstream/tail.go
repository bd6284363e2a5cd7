package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

var tailHelp = helpText{
	name:    "tail",
	args:    "[flags]",
	summary: "Print the gateway's live stream, one JSON line per record (or one short line with --pretty).",
	about: `Protocol events (gap, skipped, cursor_stale, disconnect, error) go to
stderr. On a disconnect it reconnects with backoff and resumes from its
cursor, so it never loses or repeats a record. With --cursor-file it resumes
from the file when it exists, and saves it every --save-every records and on
exit.

The URL is --url, else DASHSTREAM_URL, else ws://127.0.0.1:3002/ws. The
token is --token or --token-file (not both), else DASHSTREAM_TOKEN, else
DASHSTREAM_TOKEN_FILE: the command line wins over the environment, and a
token beats a token file. A token file holds the token on one line. The
token is sent as a bearer token and never printed.

A gateway that cannot be reached ends tail at once, or with --timeout once
that long passed without a connection.
Exit status: 0 on interrupt, after --max records, or at --timeout (without
--max); 1 on a failure (a refused token, a write error, or --timeout before
--max records); 2 on a usage error; 3 when no connection could be made.`,
	examples: []string{
		"dashstream tail --pretty",
		"dashstream tail --cursor-file c.json --timeout 30s --max 1000",
		`DASHSTREAM_URL=wss://gw.example.com/ws DASHSTREAM_TOKEN_FILE=$HOME/.dashstream-token dashstream tail`,
	},
}

// Environment variables of `dashstream tail`; its flags win over them.
const (
	envURL       = "DASHSTREAM_URL"
	envToken     = "DASHSTREAM_TOKEN"
	envTokenFile = "DASHSTREAM_TOKEN_FILE"
)

const defaultTailURL = "ws://127.0.0.1:3002/ws"

// exitUnreachable is tail's status when no connection could be made.
const exitUnreachable = 3

// maxTokenFile bounds a token file: a JWT is a few KiB at most.
const maxTokenFile = 64 << 10

// tailOptions are the parsed flags of `dashstream tail`.
type tailOptions struct {
	url        string
	urlFrom    string // where url came from, for error messages
	cursorFile string
	from       string
	thread     string
	lastSeq    uint64
	pretty     bool
	token      string
	tokenFile  string
	origin     string
	max        int
	timeout    time.Duration
	saveEvery  int
}

func parseTailFlags(args []string, e env) (tailOptions, int) {
	o := tailOptions{urlFrom: "--url"}
	fs := newFlagSet(&tailHelp)
	fs.StringVar(&o.url, "url", defaultTailURL, "gateway WebSocket URL")
	fs.StringVar(&o.cursorFile, "cursor-file", "", "resume from and save the cursor to this file")
	fs.StringVar(&o.from, "from", wsclient.FromLatest, "start without a cursor file: latest, cursor or earliest")
	fs.StringVar(&o.thread, "thread", "", "start with a thread resume of this thread id (replays its newer events)")
	fs.Uint64Var(&o.lastSeq, "last-sequence", 0, "with --thread: the last sequence already seen")
	fs.BoolVar(&o.pretty, "pretty", false, "print one short human-readable line per record")
	fs.StringVar(&o.token, "token", "", "bearer token for the gateway (visible in the process list: prefer a token file)")
	fs.StringVar(&o.tokenFile, "token-file", "", "read the bearer token from this file")
	fs.StringVar(&o.origin, "origin", "", "Origin header to send (none by default)")
	fs.IntVar(&o.max, "max", 0, "exit after this many records, a number (0: no limit)")
	fs.DurationVar(&o.timeout, "timeout", 0, "stop after this long, e.g. 30s, and keep trying to connect until then (0: no limit, and a single connection attempt)")
	fs.IntVar(&o.saveEvery, "save-every", 100, "save the cursor file every N records")
	fs.envOf["url"], fs.envOf["token"], fs.envOf["token-file"] = envURL, envToken, envTokenFile
	if code := fs.parse(args, e, 0); code >= 0 {
		return o, code
	}
	if err := o.resolve(fs.given(), e.getenv); err != nil {
		return o, tailHelp.usageError(e.stderr, "%v", err)
	}
	if err := o.validate(); err != nil {
		return o, tailHelp.usageError(e.stderr, "%v", err)
	}
	return o, -1
}

// resolve takes the URL and the token from the environment or a token file
// where the command line gave none (see tailHelp for the order).
func (o *tailOptions) resolve(given map[string]bool, getenv func(string) string) error {
	if u := getenv(envURL); u != "" && !given["url"] {
		o.url, o.urlFrom = u, envURL
	}
	switch {
	case given["token"] && given["token-file"]:
		return errors.New("--token and --token-file exclude each other")
	case given["token"]:
		return nil
	case given["token-file"]:
		return o.readToken("--token-file", o.tokenFile)
	case getenv(envToken) != "":
		o.token = getenv(envToken)
		return nil
	case getenv(envTokenFile) != "":
		return o.readToken(envTokenFile, getenv(envTokenFile))
	}
	return nil
}

// readToken reads the token from path, named by source in errors.
func (o *tailOptions) readToken(source, path string) error {
	f, err := os.Open(path) //nolint:gosec // G304: the user names the token file
	if err != nil {
		return fmt.Errorf("%s %q: %w", source, path, pathErr(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	tok := strings.TrimSpace(string(b))
	switch {
	case err != nil:
		return fmt.Errorf("%s %q: %w", source, path, pathErr(err))
	case len(b) > maxTokenFile:
		return fmt.Errorf("%s %q: larger than %d KiB", source, path, maxTokenFile>>10)
	case tok == "":
		return fmt.Errorf("%s %q: empty", source, path)
	case strings.ContainsAny(tok, "\r\n"):
		return fmt.Errorf("%s %q: more than one line", source, path)
	}
	o.token = tok
	return nil
}

// pathErr drops the path an *fs.PathError repeats.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (o *tailOptions) validate() error {
	switch {
	case o.from != wsclient.FromLatest && o.from != wsclient.FromCursor && o.from != wsclient.FromEarliest:
		return fmt.Errorf("--from %q: want latest, cursor or earliest", o.from)
	case o.max < 0 || o.saveEvery < 1 || o.timeout < 0:
		return errors.New("--max, --timeout must be >= 0 and --save-every >= 1")
	case !strings.HasPrefix(o.url, "ws://") && !strings.HasPrefix(o.url, "wss://"):
		return fmt.Errorf("%s %q: want ws:// or wss://", o.urlFrom, shownURL(o.url))
	}
	return nil
}

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

// errMaxReached ends the follower once --max records were printed.
var errMaxReached = errors.New("max records printed")

type tail struct {
	o         tailOptions
	out       *bufio.Writer
	enc       *json.Encoder
	errw      io.Writer
	dec       *dashstream.Decoder
	cursor    *wsclient.Cursor
	resumed   bool // the cursor came from the file
	printed   int
	sinceSave int

	// The follower's callbacks run on Run's goroutine: no lock needed.
	connected bool               // a connection was made at least once
	lastErr   error              // why the last attempt before the first connection failed
	giveUp    context.CancelFunc // ends Run once connecting failed without --timeout
}

func newTail(o tailOptions, stdout, stderr io.Writer) (*tail, error) {
	out := bufio.NewWriterSize(stdout, 64<<10)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	t := &tail{o: o, out: out, enc: enc, errw: stderr,
		dec: dashstream.NewDecoder(dashstream.DecoderConfig{}), cursor: wsclient.NewCursor()}
	if o.cursorFile == "" {
		return t, nil
	}
	c, err := wsclient.LoadCursor(o.cursorFile)
	switch {
	case err == nil:
		t.cursor, t.resumed = c, true
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	return t, nil
}

func (t *tail) run(parent context.Context) int {
	ctx, giveUp := context.WithCancel(parent)
	defer giveUp()
	t.giveUp = giveUp
	if t.o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.o.timeout)
		defer cancel()
	}
	err := t.follower().Run(ctx)
	code := t.exitCode(parent, ctx, err)
	if ferr := t.out.Flush(); ferr != nil && code == 0 {
		code = 1
	}
	if serr := t.save(); serr != nil {
		t.errorf("%v", serr)
		code = 1
	}
	return code
}

// exitCode reports how Run ended. parent ends on an interrupt, ctx also at
// --timeout or when connecting failed without --timeout.
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
	var he *wsclient.HandshakeError
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
	var he *wsclient.HandshakeError
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
	var he *wsclient.HandshakeError
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

// shownURL is u without secrets: a token in the query and a password in
// the user info are redacted.
func shownURL(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return "<unparsable URL>" // it may hold a secret all the same
	}
	if _, ok := pu.User.Password(); ok {
		pu.User = url.UserPassword(pu.User.Username(), "redacted")
	}
	if secrets := urlSecrets(u); len(secrets) > 0 {
		q := pu.Query()
		for k := range q {
			if isSecretParam(k) {
				q.Set(k, "redacted")
			}
		}
		pu.RawQuery = q.Encode()
	}
	return pu.String()
}

// urlSecrets are the values of u's token-like query parameters.
func urlSecrets(u string) []string {
	pu, err := url.Parse(u)
	if err != nil {
		return nil
	}
	var out []string
	for k, vs := range pu.Query() {
		if isSecretParam(k) {
			out = append(out, vs...)
		}
	}
	if p, ok := pu.User.Password(); ok {
		out = append(out, p)
	}
	return out
}

func isSecretParam(k string) bool {
	k = strings.ToLower(k)
	return k == "token" || k == "access_token" || k == "jwt"
}

func loopbackURL(u string) bool {
	pu, err := url.Parse(u)
	if err != nil {
		return false
	}
	h := pu.Hostname()
	ip := net.ParseIP(h)
	return h == "localhost" || ip != nil && ip.IsLoopback()
}

func (t *tail) follower() *wsclient.Follower {
	h := http.Header{}
	if t.o.token != "" {
		h.Set("Authorization", "Bearer "+t.o.token)
	}
	f := &wsclient.Follower{URL: t.o.url, Options: wsclient.Options{Header: h, Origin: t.o.origin},
		Cursor: t.cursor, From: t.o.from, OnRecord: t.onRecord, OnControl: t.onControl,
		OnConnect: func() { t.connected = true }, OnDisconnect: t.onDisconnect}
	if t.resumed {
		f.From = wsclient.FromCursor
	} else if t.o.thread != "" {
		f.Threads = map[string]uint64{t.o.thread: t.o.lastSeq}
	}
	return f
}

func (t *tail) onRecord(r wsclient.Record, v wsclient.Verdict) error {
	switch v {
	case wsclient.AppliedAfterHole:
		fmt.Fprintf(t.errw, "hole: partition %d jumped to offset %d without a gap or skipped frame\n", r.Partition, r.Offset)
	case wsclient.Late:
		fmt.Fprintf(t.errw, "out of order: partition %d offset %d arrived after a higher offset\n", r.Partition, r.Offset)
	}
	if err := t.print(r); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	t.printed++
	if t.sinceSave++; t.sinceSave >= t.o.saveEvery {
		if err := t.save(); err != nil {
			return err
		}
	}
	if t.o.max > 0 && t.printed >= t.o.max {
		return errMaxReached
	}
	return nil
}

// save writes the cursor file (when one is configured).
func (t *tail) save() error {
	t.sinceSave = 0
	if t.o.cursorFile == "" {
		return nil
	}
	return t.cursor.Save(t.o.cursorFile)
}

func (t *tail) print(r wsclient.Record) error {
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

// errorLine is the JSON line of a value the decoder rejected.
type errorLine struct {
	Partition int32  `json:"partition"`
	Offset    string `json:"offset"`
	ErrorKind string `json:"error_kind"`
	Error     string `json:"error"`
}

func recordLineOf(r wsclient.Record, d *dashstream.Decoded) (recordLine, error) {
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

func errorLineOf(r wsclient.Record, err error) errorLine {
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
func prettyLine(r wsclient.Record, d *dashstream.Decoded, err error) string {
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

func (t *tail) onControl(c wsclient.Control) error {
	if line := controlLine(c); line != "" {
		fmt.Fprintln(t.errw, line)
	}
	return nil
}

// onDisconnect reports a lost connection. Before the first connection it
// only keeps the reason: tail waits quietly until --timeout, or without one
// gives up at once (exitCode explains it in one line).
func (t *tail) onDisconnect(err error, retryIn time.Duration) {
	if !t.connected {
		t.lastErr = err
		if t.o.timeout == 0 {
			t.giveUp()
		}
		return
	}
	t.save() // a crash while disconnected must not lose the position
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
