package filter

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// Limits of one filter.
const (
	// MaxThreads bounds the "threads" list (docs/PROTOCOL.md §3.8).
	MaxThreads = 1000
	// MaxThreadBytes bounds one thread id and the prefix, as resume entries.
	MaxThreadBytes = wsproto.MaxThreadIDBytes
	// maxNames bounds the "types" and "event_types" lists: more entries than
	// there are names can only be repeats.
	maxNames = 256
	// smallSet is the size up to which the thread set is a slice scanned
	// linearly: cheaper than hashing for the common one-thread filter.
	smallSet = 8
)

// Spec is the filter object a client sends, as JSON.
type Spec struct {
	Threads      []string `json:"threads,omitempty"`
	ThreadPrefix string   `json:"thread_prefix,omitempty"`
	Types        []string `json:"types,omitempty"`
	EventTypes   []string `json:"event_types,omitempty"`
}

// Filter is a parsed, validated subscription filter. The zero value and nil
// admit every record.
type Filter struct {
	spec Spec // as given (normalized: sorted, deduplicated), for String
	// threads: the admitted thread ids (already narrowed by the prefix when
	// both fields were given); hasThreads tells "no threads field" from "an
	// empty set after narrowing". Up to smallSet ids are kept in list, more
	// in set.
	hasThreads bool
	list       []string
	set        map[string]struct{}
	prefix     string // only when hasThreads is false
	types      uint16 // bit t: MessageType t admitted; 0: no types field
	events     [2]uint64
	hasEvents  bool
	tenant     string
	hasTenant  bool
}

// Parse parses the "filter" value of a resume. An absent value (nil, empty
// or JSON null) is no filter: (nil, nil). Otherwise the value must be an
// object with only the four known fields; lists must be non-empty; "threads"
// holds at most MaxThreads non-empty ids of at most MaxThreadBytes bytes;
// "types" holds message type names (the envelope's field names: "event",
// "state_diff", "token_chunk", "tool_execution", "checkpoint", "metrics",
// "error", "event_batch", "execution_trace"); "event_types" EventType names,
// written "NODE_START" or "EVENT_TYPE_NODE_START". A refused filter is an
// *Error: CodeFilterTooManyThreads for too many threads, CodeFilterInvalid
// for everything else.
func Parse(raw json.RawMessage) (*Filter, *Error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] != '{' || !json.Valid(raw) {
		return nil, invalid("filter must be a JSON object")
	}
	var spec struct {
		Threads      *[]string `json:"threads"`
		ThreadPrefix *string   `json:"thread_prefix"`
		Types        *[]string `json:"types"`
		EventTypes   *[]string `json:"event_types"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return nil, invalid("filter is not a valid filter object: " + bound(err.Error(), 200))
	}
	var s Spec
	for _, f := range []struct {
		name string
		in   *[]string
		out  *[]string
	}{{"threads", spec.Threads, &s.Threads}, {"types", spec.Types, &s.Types}, {"event_types", spec.EventTypes, &s.EventTypes}} {
		if f.in == nil {
			continue
		}
		if len(*f.in) == 0 {
			return nil, invalid("filter " + f.name + " is an empty list (omit the field to admit all)")
		}
		*f.out = *f.in
	}
	if spec.ThreadPrefix != nil {
		s.ThreadPrefix = *spec.ThreadPrefix
	}
	return New(s)
}

// New builds a filter from spec with the validation Parse applies, except
// that empty lists and an empty prefix mean "field absent".
func New(spec Spec) (*Filter, *Error) {
	f := &Filter{}
	if err := f.setThreads(spec.Threads, spec.ThreadPrefix); err != nil {
		return nil, err
	}
	if err := f.setTypes(spec.Types); err != nil {
		return nil, err
	}
	if err := f.setEvents(spec.EventTypes); err != nil {
		return nil, err
	}
	f.spec = normalized(spec)
	return f, nil
}

func (f *Filter) setThreads(threads []string, prefix string) *Error {
	if len(threads) > MaxThreads {
		return &Error{Code: wsproto.CodeFilterTooManyThreads,
			Message: "filter lists " + strconv.Itoa(len(threads)) + " threads, at most 1000 are allowed"}
	}
	if len(prefix) > MaxThreadBytes {
		return invalid("filter thread_prefix exceeds 4096 bytes")
	}
	for _, t := range threads {
		if t == "" || len(t) > MaxThreadBytes {
			return invalid("filter threads: an id is empty or exceeds 4096 bytes")
		}
	}
	if len(threads) == 0 {
		f.prefix = prefix
		return nil
	}
	f.hasThreads = true
	ids := make([]string, 0, len(threads))
	for _, t := range threads {
		if strings.HasPrefix(t, prefix) { // AND across fields: narrow the set once
			ids = append(ids, t)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) <= smallSet {
		f.list = ids
		return nil
	}
	f.set = make(map[string]struct{}, len(ids))
	for _, t := range ids {
		f.set[t] = struct{}{}
	}
	f.list = ids
	return nil
}

func (f *Filter) setTypes(names []string) *Error {
	if len(names) > maxNames {
		return invalid("filter types lists more than 256 names")
	}
	for _, n := range names {
		t, ok := typeByName[n]
		if !ok {
			return invalid("filter types: unknown message type " + strconv.Quote(bound(n, 64)))
		}
		f.types |= 1 << t
	}
	return nil
}

func (f *Filter) setEvents(names []string) *Error {
	if len(names) > maxNames {
		return invalid("filter event_types lists more than 256 names")
	}
	for _, n := range names {
		v, ok := dashstreampb.EventType_value[n]
		if !ok {
			v, ok = dashstreampb.EventType_value["EVENT_TYPE_"+n]
		}
		if !ok || v < 0 || v >= 128 {
			return invalid("filter event_types: unknown event type " + strconv.Quote(bound(n, 64)))
		}
		f.events[v/64] |= 1 << (v % 64)
		f.hasEvents = true
	}
	return nil
}

// WithTenant returns a copy of f (nil: no filter) that also requires the
// record's tenant to be tenant; "" returns f unchanged. The tenant is the
// token's: nothing in the client's filter widens it.
func (f *Filter) WithTenant(tenant string) *Filter {
	if tenant == "" {
		return f
	}
	out := &Filter{}
	if f != nil {
		*out = *f
	}
	out.tenant, out.hasTenant = tenant, true
	return out
}

// typeByName maps the envelope's oneof field names to MessageType numbers.
var typeByName = func() map[string]uint8 {
	m := make(map[string]uint8)
	oneof := (&dashstreampb.DashStreamMessage{}).ProtoReflect().Descriptor().Oneofs().ByName("message")
	for i := range oneof.Fields().Len() {
		fd := oneof.Fields().Get(i)
		m[string(fd.Name())] = uint8(fd.Number())
	}
	return m
}()

// normalized sorts and deduplicates the lists of s and writes event types
// with their short names, so that String is the same for equal filters.
func normalized(s Spec) Spec {
	norm := func(in []string, f func(string) string) []string {
		if len(in) == 0 {
			return nil
		}
		out := make([]string, len(in))
		for i, v := range in {
			out[i] = f(v)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	same := func(v string) string { return v }
	s.Threads = norm(s.Threads, same)
	s.Types = norm(s.Types, same)
	s.EventTypes = norm(s.EventTypes, func(v string) string { return strings.TrimPrefix(v, "EVENT_TYPE_") })
	return s
}

// Spec returns the filter as the client gave it (lists sorted and
// deduplicated, event types by short name), without the tenant. The zero
// Spec for a nil filter.
func (f *Filter) Spec() Spec {
	if f == nil {
		return Spec{}
	}
	return f.spec
}

// String is the filter's canonical JSON object ("{}" for none), for logs
// and cursors; the tenant is not part of it.
func (f *Filter) String() string {
	b, _ := json.Marshal(f.Spec()) // a struct of strings cannot fail
	return string(b)
}

// bound cuts an untrusted string to limit bytes on a UTF-8 boundary.
func bound(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit], "")
}
