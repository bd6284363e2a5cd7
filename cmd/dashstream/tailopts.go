package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/filter"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
	"github.com/dashflow/dashstream-gateway/pkg/client"
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

Filters are applied by the gateway: --thread (repeatable), --thread-prefix,
--type and --event-type (repeatable or comma-separated) combine with AND,
the values of one flag with OR. --thread with --last-sequence starts with a
thread resume of that one thread (its events after that sequence). --v2
speaks protocol v2 (one frame per record); --json asks the gateway for each
record as protobuf JSON (implies --v2) and prints it as "message". --join
checkpoint starts each active run at its latest full state.

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
		"dashstream tail --v2 --thread run-42 --event-type NODE_END --cursor-file c.json --timeout 30s --max 1000",
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
	lastSeq    uint64
	// lastSeqGiven: --last-sequence was given (a thread resume).
	lastSeqGiven bool
	filter       client.Filter
	v2, json     bool
	join         string
	pretty       bool
	token        string
	tokenFile    string
	origin       string
	max          int
	timeout      time.Duration
	saveEvery    int
}

func parseTailFlags(args []string, e env) (tailOptions, int) {
	o := tailOptions{urlFrom: "--url"}
	fs := newFlagSet(&tailHelp)
	fs.StringVar(&o.url, "url", defaultTailURL, "gateway WebSocket URL")
	fs.StringVar(&o.cursorFile, "cursor-file", "", "resume from and save the cursor to this file")
	fs.StringVar(&o.from, "from", wsclient.FromLatest, "start without a cursor file: latest, cursor or earliest")
	fs.Var((*listFlag)(&o.filter.Threads), "thread", "only records of this thread id (repeatable)")
	fs.StringVar(&o.filter.ThreadPrefix, "thread-prefix", "", "only records of threads whose id starts with this")
	fs.Var(commaList{&o.filter.Types}, "type", "only these message types: event, state_diff, token_chunk, ... (repeatable, comma-separated)")
	fs.Var(commaList{&o.filter.EventTypes}, "event-type", "only events of these types, e.g. NODE_END (repeatable, comma-separated)")
	fs.Uint64Var(&o.lastSeq, "last-sequence", 0, "with one --thread: start with a thread resume of its events after this sequence")
	fs.BoolVar(&o.v2, "v2", false, "speak protocol v2 (subprotocol dashstream.v2)")
	fs.BoolVar(&o.json, "json", false, "receive records as protobuf JSON (implies --v2)")
	fs.StringVar(&o.join, "join", "", "checkpoint: start each active run at its latest full state (with --from latest)")
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
	o.lastSeqGiven = fs.given()["last-sequence"]
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
	case o.join != "" && o.join != client.JoinCheckpoint && o.join != "none":
		return fmt.Errorf("--join %q: want checkpoint or none", o.join)
	case o.lastSeqGiven && len(o.filter.Threads) != 1:
		return errors.New("--last-sequence needs exactly one --thread")
	case o.json && o.pretty:
		return errors.New("--json and --pretty exclude each other")
	}
	if _, err := filter.New(filter.Spec{Threads: o.filter.Threads, ThreadPrefix: o.filter.ThreadPrefix,
		Types: o.filter.Types, EventTypes: o.filter.EventTypes}); err != nil {
		return errors.New(err.Message)
	}
	return nil
}

// listFlag collects every value of a repeatable flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// commaList collects a repeatable flag whose values may also be
// comma-separated.
type commaList struct{ list *[]string }

func (c commaList) String() string {
	if c.list == nil {
		return ""
	}
	return strings.Join(*c.list, ",")
}

func (c commaList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*c.list = append(*c.list, s)
		}
	}
	return nil
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
