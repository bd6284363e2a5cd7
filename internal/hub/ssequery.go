package hub

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/dashflow/dashstream-gateway/internal/filter"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// Codes of a refused /sse request (HTTP 400) besides the filter's.
const (
	codeSSEBadParam  = "INVALID_PARAMETER"
	codeSSEBadCursor = "INVALID_CURSOR"
)

// parseSSERequest reads the resume of a /sse request (docs/PROTOCOL.md
// §3.9) from its query and Last-Event-ID:
//
//	from=latest|cursor|earliest  (default: cursor with a cursor, else latest)
//	cursor=<id>                  an event id; Last-Event-ID wins over it
//	threads=a,b  thread_prefix=x  types=event,state_diff  event_types=…
//	format=base64|json           (default base64)
//	join=none|checkpoint
//
// List parameters take comma-separated values and may repeat; thread ids
// are split on commas (follow a thread whose id holds one by thread_prefix).
// The filter is validated here, so a bad one is a 400, not a stream that
// ends at once (an EventSource would reconnect forever).
func parseSSERequest(r *http.Request) (*wsproto.Resume, *wsproto.Error) {
	q := r.URL.Query()
	res := &wsproto.Resume{Mode: wsproto.ModePartition, Format: wsproto.FormatBinary, Join: wsproto.JoinNone}
	cursor := r.Header.Get("Last-Event-ID")
	if cursor == "" {
		cursor = q.Get("cursor")
	}
	switch from := q.Get("from"); from {
	case "":
		res.From = wsproto.FromLatest
		if cursor != "" {
			res.From = wsproto.FromCursor
		}
	case wsproto.FromLatest, wsproto.FromCursor, wsproto.FromEarliest:
		res.From = from
	default:
		return nil, sseErr(codeSSEBadParam, "from must be latest, cursor or earliest")
	}
	if cursor != "" {
		offsets, ns, err := parseSSECursor(cursor)
		if err != nil {
			return nil, sseErr(codeSSEBadCursor, "cursor (Last-Event-ID) is not an id this gateway issued")
		}
		// A cursor is where the client is: it wins over "from" (a browser
		// reconnects with the URL it started from).
		res.From, res.Offsets, res.Namespace = wsproto.FromCursor, offsets, ns
	}
	switch f := q.Get("format"); f {
	case "", "base64":
	case wsproto.FormatJSON:
		res.Format = wsproto.FormatJSON
	default:
		return nil, sseErr(codeSSEBadParam, "format must be base64 or json")
	}
	switch j := q.Get("join"); j {
	case "", wsproto.JoinNone:
	case wsproto.JoinCheckpoint:
		res.Join = wsproto.JoinCheckpoint
	default:
		return nil, sseErr(codeSSEBadParam, "join must be none or checkpoint")
	}
	spec, ok := sseFilter(q)
	if !ok {
		return res, nil
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, sseErr(wsproto.CodeFilterInvalid, "filter does not encode")
	}
	if _, ferr := filter.Parse(raw); ferr != nil {
		return nil, sseErr(ferr.Code, ferr.Message)
	}
	res.Filter = raw
	return res, nil
}

// sseFilter gathers the filter parameters; ok is false when none is given.
// An empty parameter (threads=) is kept as an empty list, which the
// filter refuses.
func sseFilter(q url.Values) (spec filter.Spec, ok bool) {
	list := func(name string) []string {
		vs, present := q[name]
		if !present {
			return nil
		}
		ok = true
		out := []string{}
		for _, v := range vs {
			for part := range strings.SplitSeq(v, ",") {
				if part = strings.TrimSpace(part); part != "" {
					out = append(out, part)
				}
			}
		}
		return out
	}
	spec.Threads = list("threads")
	spec.Types = list("types")
	spec.EventTypes = list("event_types")
	if vs, present := q["thread_prefix"]; present {
		ok = true
		spec.ThreadPrefix = vs[0]
	}
	return spec, ok
}

func sseErr(code, msg string) *wsproto.Error {
	e := wsproto.NewError(code, msg)
	return &e
}
