package filter

import (
	"strings"

	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// Message type numbers Match treats specially.
const (
	typeEvent = 1
	typeBatch = 8
)

// Facts is what Match reads of a record: computed once when the record was
// decoded (see replay.Record), never by Match.
type Facts struct {
	// Type is the MessageType number (the envelope's oneof field number);
	// 0 when unknown.
	Type uint8
	// Tenant is the record's single tenant, "" when none.
	Tenant string
	// Skipped marks a dead-lettered record: it has no facts.
	Skipped bool
	// Threads are the record's (thread, sequence) pairs; for an EventBatch
	// one per inner event, lined up with EventTypes.
	Threads []replay.ThreadSeq
	// EventTypes: one for an Event, one per inner event of a batch, else nil.
	EventTypes []int32
}

// FactsOf returns the facts of r without copying its slices.
func FactsOf(r *replay.Record) Facts {
	return Facts{Type: r.Type, Tenant: r.Tenant, Skipped: r.Skipped != "", Threads: r.Threads, EventTypes: r.EventTypes}
}

// MatchRecord is Match(FactsOf(r)).
func (f *Filter) MatchRecord(r *replay.Record) bool { return f.Match(FactsOf(r)) }

// Match reports whether a record with facts x is delivered to a client with
// filter f. It allocates nothing.
//
// A nil filter, or one with no field and no tenant, admits everything, also
// skipped records. Any other filter refuses a skipped record (its thread and
// type are unknown) and a record of unknown Type when "types" or
// "event_types" is set (a message without a body, or a value that no longer
// decodes). "event_types" admits only events: an Event whose type is
// listed, or an EventBatch holding one. An EventBatch matches when "types"
// lists "event_batch" or "event" and at least one inner event has both an
// admitted thread and an admitted event type.
func (f *Filter) Match(x Facts) bool {
	if f.AdmitsAll() {
		return true
	}
	if x.Skipped || (f.hasTenant && x.Tenant != f.tenant) {
		return false
	}
	if x.Type == typeBatch {
		return f.matchBatch(x)
	}
	if f.types != 0 && f.types&(1<<x.Type) == 0 {
		return false
	}
	if f.hasEvents && (x.Type != typeEvent || len(x.EventTypes) == 0 || !f.event(x.EventTypes[0])) {
		return false
	}
	if !f.hasThreads && f.prefix == "" {
		return true
	}
	for _, t := range x.Threads {
		if f.thread(t.Thread) {
			return true
		}
	}
	return false
}

func (f *Filter) matchBatch(x Facts) bool {
	if f.types != 0 && f.types&(1<<typeBatch|1<<typeEvent) == 0 {
		return false
	}
	anyThread := !f.hasThreads && f.prefix == ""
	if anyThread && !f.hasEvents {
		return true
	}
	for i, t := range x.Threads {
		if !anyThread && !f.thread(t.Thread) {
			continue
		}
		if f.hasEvents && (i >= len(x.EventTypes) || !f.event(x.EventTypes[i])) {
			continue
		}
		return true
	}
	return false
}

func (f *Filter) thread(t string) bool {
	switch {
	case f.set != nil:
		_, ok := f.set[t]
		return ok
	case f.hasThreads:
		for _, id := range f.list {
			if id == t {
				return true
			}
		}
		return false
	}
	return strings.HasPrefix(t, f.prefix)
}

func (f *Filter) event(e int32) bool {
	return e >= 0 && e < 128 && f.events[e/64]&(1<<(e%64)) != 0
}

// AdmitsAll reports whether f admits every record (nil, or no field and no
// tenant): the session needs no filtering at all.
func (f *Filter) AdmitsAll() bool {
	return f == nil || (!f.hasThreads && f.prefix == "" && f.types == 0 && !f.hasEvents && !f.hasTenant)
}

// AdmitsType reports whether a record of MessageType t can match f, for an
// index by message type. For event_batch (8) it is true when "types" lists
// "event_batch" or "event"; with "event_types" set only event (1) and
// event_batch (8) can match.
func (f *Filter) AdmitsType(t uint8) bool {
	if f == nil {
		return true
	}
	if f.hasEvents && t != typeEvent && t != typeBatch {
		return false
	}
	if f.types == 0 || t >= 16 {
		return f.types == 0
	}
	if t == typeBatch {
		return f.types&(1<<typeBatch|1<<typeEvent) != 0
	}
	return f.types&(1<<t) != 0
}

// ThreadScope is the part of a filter an index by thread can serve.
type ThreadScope struct {
	// Exact, when non-nil, is the sorted set of the only thread ids a
	// matching record can carry (already narrowed by thread_prefix). It may
	// be empty: then nothing matches.
	Exact []string
	// Prefix, when Exact is nil and Prefix is not empty, admits only thread
	// ids that start with it.
	Prefix string
}

// Any reports whether the scope admits every thread (an index by thread
// cannot help).
func (s ThreadScope) Any() bool { return s.Exact == nil && s.Prefix == "" }

// ThreadScope returns which threads f admits. A record matches only if one
// of its Threads entries (for a batch, any inner event's) is in the scope;
// an index by thread must therefore list a batch under each of its inner
// threads. The scope is necessary, not sufficient: Match decides.
func (f *Filter) ThreadScope() ThreadScope {
	switch {
	case f == nil:
		return ThreadScope{}
	case f.hasThreads:
		return ThreadScope{Exact: append(make([]string, 0, len(f.list)), f.list...)}
	}
	return ThreadScope{Prefix: f.prefix}
}

// Kind names the filter's shape for metrics: "none", "threads",
// "thread_prefix", "types", "event_types" or "combined" (more than one
// field). The implicit tenant does not count.
func (f *Filter) Kind() string {
	if f == nil {
		return "none"
	}
	kind, n := "none", 0
	for _, k := range []struct {
		set  bool
		name string
	}{{f.hasThreads, "threads"}, {!f.hasThreads && f.prefix != "", "thread_prefix"}, {f.types != 0, "types"}, {f.hasEvents, "event_types"}} {
		if k.set {
			kind, n = k.name, n+1
		}
	}
	if n > 1 {
		return "combined"
	}
	return kind
}
