package filter

import (
	"encoding/json"
	"testing"

	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// FuzzParseFilter: Parse never panics on client bytes; a refusal carries a
// known code and a bounded message; an accepted filter's String parses back
// to the same filter, which decides the same on a few records.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `{"threads":["a","b"],"thread_prefix":"a"}`,
		`{"types":["event","event_batch"],"event_types":["NODE_START","EVENT_TYPE_GRAPH_END"]}`,
		`{"threads":[]}`, `{"threads":[""]}`, `{"thread_prefix":"\u00fc"}`, `{"x":1}`, `{"types":["none"]}`,
		`{"event_types":["EVENT_TYPE_UNSPECIFIED"]}`, `{"threads":["a"]} x`,
	} {
		f.Add([]byte(s))
	}
	facts := []Facts{
		{Type: typeEvent, Threads: []replay.ThreadSeq{{Thread: "a"}}, EventTypes: []int32{10}},
		{Type: typeBatch, Threads: []replay.ThreadSeq{{Thread: "a"}, {Thread: "b"}}, EventTypes: []int32{2, 41}},
		{Type: 2, Threads: []replay.ThreadSeq{{Thread: "ab"}}},
		{Skipped: true},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		flt, err := Parse(json.RawMessage(data))
		if err != nil {
			if err.Code != wsproto.CodeFilterInvalid && err.Code != wsproto.CodeFilterTooManyThreads {
				t.Fatalf("unknown code %q", err.Code)
			}
			if len(err.Message) > 300 || flt != nil {
				t.Fatalf("message of %d bytes, filter %v", len(err.Message), flt)
			}
			return
		}
		again, err := Parse(json.RawMessage(flt.String()))
		if err != nil || again.String() != flt.String() {
			t.Fatalf("String %s does not parse back: %v %v", flt, again, err)
		}
		for _, x := range facts {
			if flt.Match(x) != again.Match(x) {
				t.Fatalf("%s and its reparse differ on %+v", flt, x)
			}
		}
	})
}
