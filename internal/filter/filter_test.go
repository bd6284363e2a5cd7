package filter

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

const vectorDir = "../../testdata/dashstream"

// vector is what the tests read of a MANIFEST.json entry: the independent
// decoder's view of a record, from which the oracle below derives whether a
// filter admits it.
type vector struct {
	File        *string `json:"file"`
	Valid       bool    `json:"valid"`
	MessageType string  `json:"message_type"`
	Header      *struct {
		TenantID string `json:"tenant_id"`
		ThreadID string `json:"thread_id"`
	} `json:"header"`
	EventType *struct {
		Name string `json:"name"`
	} `json:"event_type"`
	InnerEvents []struct {
		ThreadID  string `json:"thread_id"`
		EventType int32  `json:"event_type"`
	} `json:"inner_events"`
}

type sample struct {
	name string
	vec  vector
	rec  *replay.Record
}

// samples decodes every valid test vector into a record the way the Kafka
// consumer builds one.
func samples(t testing.TB) []sample {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(vectorDir, "MANIFEST.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vecs []vector
	if err := json.Unmarshal(raw, &vecs); err != nil {
		t.Fatal(err)
	}
	dec := dashstream.NewDecoder(dashstream.DecoderConfig{})
	var out []sample
	for _, v := range vecs {
		if !v.Valid || v.File == nil {
			continue
		}
		value, err := os.ReadFile(filepath.Join(vectorDir, *v.File))
		if err != nil {
			t.Fatal(err)
		}
		d, err := dec.Decode(value)
		if err != nil {
			t.Fatalf("%s: %v", *v.File, err)
		}
		out = append(out, sample{name: *v.File, vec: v, rec: record(d)})
	}
	if len(out) < 20 {
		t.Fatalf("only %d valid vectors", len(out))
	}
	return out
}

func record(d *dashstream.Decoded) *replay.Record {
	r := &replay.Record{Tenant: d.Tenant(), Type: uint8(d.Type()), EventTypes: d.EventTypes()}
	for _, h := range d.Headers {
		r.Threads = append(r.Threads, replay.ThreadSeq{Thread: h.ThreadID, Sequence: h.Sequence})
	}
	return r
}

// oracle decides from the manifest alone, by the rule of docs/PROTOCOL.md
// §3.8 written out plainly: a record is a list of (type, thread, event type)
// items, one per inner event of a batch; it matches when one item satisfies
// every field.
func oracle(s Spec, v vector) bool {
	type item struct {
		types  []string
		thread string
		event  string
	}
	events := make([]string, len(s.EventTypes))
	for i, e := range s.EventTypes {
		events[i] = strings.TrimPrefix(e, "EVENT_TYPE_")
	}
	var items []item
	switch v.MessageType {
	case "event_batch":
		for _, ev := range v.InnerEvents {
			items = append(items, item{[]string{"event_batch", "event"}, ev.ThreadID, eventName(ev.EventType)})
		}
	default:
		it := item{types: []string{v.MessageType}}
		if v.Header != nil {
			it.thread = v.Header.ThreadID
		}
		if v.EventType != nil {
			it.event = strings.TrimPrefix(v.EventType.Name, "EVENT_TYPE_")
		}
		items = append(items, it)
	}
	for _, it := range items {
		ok := (len(s.Threads) == 0 || slices.Contains(s.Threads, it.thread)) &&
			strings.HasPrefix(it.thread, s.ThreadPrefix) &&
			(len(s.Types) == 0 || slices.ContainsFunc(it.types, func(t string) bool { return slices.Contains(s.Types, t) })) &&
			(len(s.EventTypes) == 0 || (it.event != "" && slices.Contains(events, it.event)))
		if ok {
			return true
		}
	}
	return false
}

func eventName(v int32) string {
	names := map[int32]string{10: "NODE_START", 11: "NODE_END", 40: "TOOL_START", 41: "TOOL_END"}
	if n, ok := names[v]; ok {
		return n
	}
	return "value-" + strconv.Itoa(int(v))
}

var specs = map[string]Spec{
	"one thread":                {Threads: []string{"tv-thread-1"}},
	"batch thread b":            {Threads: []string{"tv-batch-b"}},
	"two threads":               {Threads: []string{"tv-batch-a", "tv-legacy"}},
	"utf8 thread":               {Threads: []string{"tv-ütf8-线程-🧵-Ω"}},
	"prefix":                    {ThreadPrefix: "tv-batch-"},
	"prefix narrows threads":    {Threads: []string{"tv-thread-1", "tv-batch-a"}, ThreadPrefix: "tv-batch"},
	"state diffs":               {Types: []string{"state_diff"}},
	"events only":               {Types: []string{"event"}},
	"batches only":              {Types: []string{"event_batch"}},
	"tokens and tools":          {Types: []string{"token_chunk", "tool_execution"}},
	"node start":                {EventTypes: []string{"NODE_START"}},
	"node start long name":      {EventTypes: []string{"EVENT_TYPE_NODE_START"}},
	"tool end":                  {EventTypes: []string{"TOOL_END"}},
	"none: thread b node start": {Threads: []string{"tv-batch-b"}, EventTypes: []string{"NODE_START"}},
	"thread b and tool start":   {Threads: []string{"tv-batch-b"}, EventTypes: []string{"TOOL_START"}},
	"thread 1 and state diff":   {Threads: []string{"tv-thread-1"}, Types: []string{"state_diff", "checkpoint"}},
	"none: no events":           {Types: []string{"metrics"}, EventTypes: []string{"NODE_START"}},
	"none: no such thread":      {Threads: []string{"no-such-thread"}},
}

// TestMatchVectors checks Match on every decoded test vector against the
// oracle, for each filter shape.
func TestMatchVectors(t *testing.T) {
	recs := samples(t)
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			f, err := New(spec)
			if err != nil {
				t.Fatal(err)
			}
			matched := 0
			for _, s := range recs {
				want := oracle(spec, s.vec)
				if got := f.MatchRecord(s.rec); got != want {
					t.Errorf("%s: Match = %v, want %v", s.name, got, want)
				}
				if want {
					matched++
				}
			}
			if !strings.HasPrefix(name, "none:") && matched == 0 {
				t.Errorf("no vector matches: the case tests nothing")
			}
		})
	}
}

// TestBatchSpanningThreads: a batch matches as soon as one inner event
// satisfies every field at once, not when the fields are satisfied by
// different events.
func TestBatchSpanningThreads(t *testing.T) {
	batch := Facts{Type: typeBatch, Threads: []replay.ThreadSeq{{Thread: "a"}, {Thread: "b"}}, EventTypes: []int32{10, 41}}
	for _, c := range []struct {
		spec Spec
		want bool
	}{
		{Spec{Threads: []string{"b"}}, true},
		{Spec{Threads: []string{"c"}}, false},
		{Spec{EventTypes: []string{"NODE_START"}}, true},
		{Spec{Threads: []string{"a"}, EventTypes: []string{"NODE_START"}}, true},
		{Spec{Threads: []string{"b"}, EventTypes: []string{"NODE_START"}}, false},
		{Spec{Threads: []string{"b"}, EventTypes: []string{"TOOL_END"}}, true},
		{Spec{Types: []string{"event"}, ThreadPrefix: "b"}, true},
		{Spec{Types: []string{"state_diff"}}, false},
	} {
		f, err := New(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Match(batch); got != c.want {
			t.Errorf("%s: Match = %v, want %v", f, got, c.want)
		}
	}
}

// TestTenant: the token's tenant is required on top of the client's filter,
// and no filter, empty or not, lets another tenant's record through.
func TestTenant(t *testing.T) {
	acme := Facts{Type: typeEvent, Tenant: "acme", Threads: []replay.ThreadSeq{{Thread: "t"}}, EventTypes: []int32{1}}
	other, none := acme, acme
	other.Tenant, none.Tenant = "globex", ""
	var unfiltered *Filter
	wide, _ := Parse(json.RawMessage(`{"thread_prefix":""}`))
	for _, f := range []*Filter{unfiltered, wide, mustNew(t, Spec{Threads: []string{"t"}})} {
		tf := f.WithTenant("acme")
		if !tf.Match(acme) || tf.Match(other) || tf.Match(none) {
			t.Errorf("%s with tenant acme: acme %v, globex %v, none %v", tf, tf.Match(acme), tf.Match(other), tf.Match(none))
		}
		if tf.AdmitsAll() || tf.Match(Facts{Skipped: true}) {
			t.Errorf("%s with tenant: admits all or a skipped record", tf)
		}
		if f.WithTenant("") != f {
			t.Errorf("WithTenant(\"\") changed the filter")
		}
	}
	if f := mustNew(t, Spec{Threads: []string{"t"}}); f.WithTenant("acme") == f || !f.Match(other) {
		t.Errorf("WithTenant changed its receiver")
	}
}

func TestAdmitsAllAndSkipped(t *testing.T) {
	skipped := Facts{Skipped: true}
	var nilFilter *Filter
	empty, err := Parse(json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*Filter{nilFilter, empty} {
		if !f.AdmitsAll() || !f.Match(skipped) || !f.Match(Facts{}) {
			t.Errorf("%s: an unconstrained filter must admit everything", f)
		}
	}
	f := mustNew(t, Spec{ThreadPrefix: "x"})
	if f.AdmitsAll() || f.Match(skipped) {
		t.Errorf("a constrained filter admits a skipped record")
	}
	// A record of unknown type (read back from a tier that keeps no type)
	// still matches by thread, never by type.
	unknown := Facts{Threads: []replay.ThreadSeq{{Thread: "x1"}}}
	if !f.Match(unknown) || mustNew(t, Spec{Types: []string{"event"}}).Match(unknown) {
		t.Errorf("unknown type: thread match %v", f.Match(unknown))
	}
}

func TestScopeKindAdmitsType(t *testing.T) {
	cases := []struct {
		spec  Spec
		scope ThreadScope
		kind  string
		types []uint8
	}{
		{Spec{}, ThreadScope{}, "none", []uint8{1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{Spec{Threads: []string{"b", "a", "b"}}, ThreadScope{Exact: []string{"a", "b"}}, "threads", []uint8{1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{Spec{Threads: []string{"x1", "y1"}, ThreadPrefix: "x"}, ThreadScope{Exact: []string{"x1"}}, "threads", []uint8{1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{Spec{Threads: []string{"y1"}, ThreadPrefix: "x"}, ThreadScope{Exact: []string{}}, "threads", []uint8{1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{Spec{ThreadPrefix: "run-"}, ThreadScope{Prefix: "run-"}, "thread_prefix", []uint8{1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{Spec{Types: []string{"state_diff", "event"}}, ThreadScope{}, "types", []uint8{1, 2, 8}},
		{Spec{Types: []string{"event_batch"}}, ThreadScope{}, "types", []uint8{8}},
		{Spec{EventTypes: []string{"GRAPH_END"}}, ThreadScope{}, "event_types", []uint8{1, 8}},
		{Spec{Threads: []string{"a"}, Types: []string{"checkpoint"}}, ThreadScope{Exact: []string{"a"}}, "combined", []uint8{5}},
	}
	for _, c := range cases {
		f := mustNew(t, c.spec)
		got := f.ThreadScope()
		if !slices.Equal(got.Exact, c.scope.Exact) || (got.Exact == nil) != (c.scope.Exact == nil) || got.Prefix != c.scope.Prefix || got.Any() != c.scope.Any() {
			t.Errorf("%s: scope %+v, want %+v", f, got, c.scope)
		}
		if f.Kind() != c.kind {
			t.Errorf("%s: kind %q, want %q", f, f.Kind(), c.kind)
		}
		var admitted []uint8
		for typ := uint8(0); typ < 20; typ++ {
			if f.AdmitsType(typ) && typ >= 1 && typ <= 9 {
				admitted = append(admitted, typ)
			}
		}
		if !slices.Equal(admitted, c.types) {
			t.Errorf("%s: admits types %v, want %v", f, admitted, c.types)
		}
	}
}

func TestParseErrors(t *testing.T) {
	many := make([]string, MaxThreads+1)
	for i := range many {
		many[i] = "t" + strconv.Itoa(i)
	}
	tooMany, _ := json.Marshal(map[string]any{"threads": many})
	atLimit, _ := json.Marshal(map[string]any{"threads": many[:MaxThreads]})
	long := strings.Repeat("x", MaxThreadBytes+1)
	cases := map[string]struct {
		in   string
		code string // "" = accepted
	}{
		"absent":             {``, ""},
		"null":               {`null`, ""},
		"empty object":       {`{}`, ""},
		"all fields":         {`{"threads":["a"],"thread_prefix":"a","types":["event"],"event_types":["NODE_START","EVENT_TYPE_LLM_END"]}`, ""},
		"null fields":        {`{"threads":null,"types":null}`, ""},
		"1000 threads":       {string(atLimit), ""},
		"1001 threads":       {string(tooMany), wsproto.CodeFilterTooManyThreads},
		"array":              {`["a"]`, wsproto.CodeFilterInvalid},
		"string":             {`"a"`, wsproto.CodeFilterInvalid},
		"number":             {`7`, wsproto.CodeFilterInvalid},
		"truncated":          {`{"threads":["a"`, wsproto.CodeFilterInvalid},
		"trailing data":      {`{} {}`, wsproto.CodeFilterInvalid},
		"unknown field":      {`{"thread":["a"]}`, wsproto.CodeFilterInvalid},
		"threads not list":   {`{"threads":"a"}`, wsproto.CodeFilterInvalid},
		"thread not string":  {`{"threads":[1]}`, wsproto.CodeFilterInvalid},
		"empty threads":      {`{"threads":[]}`, wsproto.CodeFilterInvalid},
		"empty thread id":    {`{"threads":[""]}`, wsproto.CodeFilterInvalid},
		"long thread id":     {`{"threads":["` + long + `"]}`, wsproto.CodeFilterInvalid},
		"long prefix":        {`{"thread_prefix":"` + long + `"}`, wsproto.CodeFilterInvalid},
		"prefix not string":  {`{"thread_prefix":["a"]}`, wsproto.CodeFilterInvalid},
		"unknown type":       {`{"types":["events"]}`, wsproto.CodeFilterInvalid},
		"type wrong case":    {`{"types":["EVENT"]}`, wsproto.CodeFilterInvalid},
		"empty types":        {`{"types":[]}`, wsproto.CodeFilterInvalid},
		"unknown event type": {`{"event_types":["NODE_BEGIN"]}`, wsproto.CodeFilterInvalid},
		"event type number":  {`{"event_types":[10]}`, wsproto.CodeFilterInvalid},
		"empty event types":  {`{"event_types":[]}`, wsproto.CodeFilterInvalid},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			f, err := Parse(json.RawMessage(c.in))
			switch {
			case c.code == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.code != "" && (err == nil || err.Code != c.code):
				t.Fatalf("got %v, want code %s", err, c.code)
			case err != nil && (err.Message == "" || len(err.Message) > 300):
				t.Fatalf("message %q: empty or unbounded", err.Message)
			case err != nil && f != nil:
				t.Fatalf("a refused filter was returned")
			}
		})
	}
}

// TestStringRoundTrip: String is canonical and parses back to the same
// filter.
func TestStringRoundTrip(t *testing.T) {
	a, errA := Parse(json.RawMessage(`{"types":["state_diff","event"],"threads":["b","a","a"],"event_types":["EVENT_TYPE_NODE_END"]}`))
	b, errB := Parse(json.RawMessage(`{"event_types":["NODE_END"],"threads":["a","b"],"types":["event","state_diff"]}`))
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	want := `{"threads":["a","b"],"types":["event","state_diff"],"event_types":["NODE_END"]}`
	if a.String() != want || b.String() != want {
		t.Fatalf("String: %s / %s, want %s", a, b, want)
	}
	c, err := Parse(json.RawMessage(a.String()))
	if err != nil || c.String() != want {
		t.Fatalf("round trip: %v %v", c, err)
	}
	var none *Filter
	if none.String() != "{}" {
		t.Fatalf("nil filter: %s", none)
	}
}

// TestMatchAllocs: Match allocates nothing, whichever path it takes.
func TestMatchAllocs(t *testing.T) {
	recs := samples(t)
	for name, spec := range specs {
		f := mustNew(t, spec).WithTenant("demo-tenant")
		n := testing.AllocsPerRun(20, func() {
			for _, s := range recs {
				f.MatchRecord(s.rec)
			}
		})
		if n != 0 {
			t.Errorf("%s: %v allocations per run", name, n)
		}
	}
}

func mustNew(t testing.TB, s Spec) *Filter {
	t.Helper()
	f, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
