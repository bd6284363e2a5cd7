package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/filter"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// Starting points of a client without a saved cursor.
const (
	FromLatest   = "latest"
	FromEarliest = "earliest"
)

// JoinCheckpoint is the Options.Join that starts a fresh client (from
// latest) with each active thread's records since its latest full state.
const JoinCheckpoint = wsproto.JoinCheckpoint

// Options configures a Client. The zero value follows every record from
// now on over protocol v1 with a cursor kept in memory.
type Options struct {
	// Token is sent as "Authorization: Bearer <token>". Empty: no token
	// (unless TokenSource gives one).
	Token string
	// TokenSource, when set, is asked for the token before every connection
	// (so that a reconnect after TOKEN_EXPIRED uses a fresh one); it wins
	// over Token. An error ends the client.
	TokenSource func(ctx context.Context) (string, error)
	// Header is sent with every upgrade request. Nil: none.
	Header http.Header
	// Origin sets the Origin header. Empty: none.
	Origin string

	// V2 offers protocol v2 (subprotocol "dashstream.v2"). A gateway
	// without v2 answers in v1, which the client reads just as well, unless
	// JSON is set: then Dial fails with ErrV2Unsupported.
	V2 bool
	// JSON asks for records as canonical protobuf JSON (Record.JSON)
	// instead of bytes. Requires V2.
	JSON bool
	// Filter restricts the records the gateway sends. Zero: all.
	Filter Filter
	// From is where a client without a saved cursor starts: FromLatest
	// (default) or FromEarliest (the oldest record the gateway retains in
	// its replay window).
	From string
	// Join is JoinCheckpoint or empty (none). It applies only to a start
	// from latest without a saved cursor.
	Join string
	// ThreadSequences, when set, makes the first resume of a client without
	// a saved cursor a thread resume (docs/PROTOCOL.md §3.4): each listed
	// thread replays its records after the given sequence, then live
	// delivery follows. From and Join are then not used.
	ThreadSequences map[string]uint64

	// Store keeps the cursor across restarts. Nil: memory only.
	Store CursorStore
	// SaveInterval is how often, at most, Next saves a moved cursor to
	// Store; it is also saved on every disconnect, on Close and by Save.
	// Zero: 1 s.
	SaveInterval time.Duration
	// MinBackoff and MaxBackoff bound the reconnect delay (each delay is
	// drawn from the upper half of its step). Zero: 250 ms and 10 s.
	MinBackoff, MaxBackoff time.Duration
	// DialTimeout bounds one connection attempt. Zero: 10 s.
	DialTimeout time.Duration
	// ReadLimit bounds one message in bytes. Zero: 10 MiB plus framing.
	ReadLimit int64

	// OnControl, when set, is called with every control frame (gap,
	// skipped, cursor_stale, replay_complete, error, ...) after the cursor
	// took it into account.
	OnControl func(Control)
	// OnConnect, when set, is called after each successful connection;
	// v2 tells the protocol the gateway selected.
	OnConnect func(v2 bool)
	// OnDisconnect, when set, is told why a connection ended (or failed)
	// and when the next attempt is.
	OnDisconnect func(err error, retryIn time.Duration)
}

// Filter selects records (docs/PROTOCOL.md §3.8): fields combine with AND,
// the entries of one field with OR. An EventBatch matches when one of its
// inner events does, and is then delivered whole.
type Filter struct {
	// Threads: only records of these thread ids (at most 1,000).
	Threads []string
	// ThreadPrefix: only threads whose id starts with it.
	ThreadPrefix string
	// Types: only these message types: "event", "state_diff",
	// "token_chunk", "tool_execution", "checkpoint", "metrics", "error",
	// "event_batch", "execution_trace".
	Types []string
	// EventTypes: only events of these types, e.g. "NODE_START",
	// "GRAPH_END" (the EVENT_TYPE_ prefix is optional).
	EventTypes []string
}

// IsZero reports whether f admits every record.
func (f Filter) IsZero() bool {
	return len(f.Threads) == 0 && f.ThreadPrefix == "" && len(f.Types) == 0 && len(f.EventTypes) == 0
}

func (f Filter) spec() filter.Spec {
	return filter.Spec{Threads: f.Threads, ThreadPrefix: f.ThreadPrefix, Types: f.Types, EventTypes: f.EventTypes}
}

// json is the filter object of a resume, validated as the gateway would;
// nil for the zero filter.
func (f Filter) json() (json.RawMessage, error) {
	if f.IsZero() {
		return nil, nil
	}
	if _, ferr := filter.New(f.spec()); ferr != nil {
		return nil, fmt.Errorf("client: %w", &ServerError{Code: ferr.Code, Message: ferr.Message})
	}
	return json.Marshal(f.spec())
}

func (o *Options) validate() error {
	var errs []error
	if o.JSON && !o.V2 {
		errs = append(errs, errors.New("client: JSON records need V2"))
	}
	if o.From != "" && o.From != FromLatest && o.From != FromEarliest {
		errs = append(errs, fmt.Errorf("client: From %q: want latest or earliest", o.From))
	}
	if o.Join != "" && o.Join != wsproto.JoinNone && o.Join != JoinCheckpoint {
		errs = append(errs, fmt.Errorf("client: Join %q: want checkpoint or none", o.Join))
	}
	return errors.Join(errs...)
}

func (o *Options) saveInterval() time.Duration {
	if o.SaveInterval > 0 {
		return o.SaveInterval
	}
	return time.Second
}

// backoff is the delay before reconnect attempt n (0-based): the step
// min(MinBackoff·2^n, MaxBackoff), drawn from its upper half so that many
// clients cut at once do not come back at once.
func (o *Options) backoff(n int, rnd func() float64) time.Duration {
	lo, hi := o.MinBackoff, o.MaxBackoff
	if lo <= 0 {
		lo = 250 * time.Millisecond
	}
	if hi <= 0 {
		hi = 10 * time.Second
	}
	step := min(lo<<min(n, 20), hi)
	return step/2 + time.Duration(rnd()*float64(step/2))
}
