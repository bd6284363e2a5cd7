package filter

import (
	"slices"
	"testing"

	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

func TestTypeScope(t *testing.T) {
	cases := []struct {
		name string
		spec Spec
		want replay.TypeQuery
	}{
		{"none", Spec{}, replay.TypeQuery{}},
		{"threads only", Spec{Threads: []string{"a"}}, replay.TypeQuery{}},
		{"types", Spec{Types: []string{"state_diff", "token_chunk"}}, replay.TypeQuery{Types: 1<<2 | 1<<3}},
		{"event admits batches", Spec{Types: []string{"event"}}, replay.TypeQuery{Types: 1<<1 | 1<<8}},
		{"event types", Spec{EventTypes: []string{"NODE_END", "EVENT_TYPE_NODE_START"}},
			replay.TypeQuery{Events: []int32{int32(dashstreampb.EventType_EVENT_TYPE_NODE_START), int32(dashstreampb.EventType_EVENT_TYPE_NODE_END)}}},
		{"both: only events and batches", Spec{Types: []string{"event_batch", "state_diff"}, EventTypes: []string{"NODE_START"}},
			replay.TypeQuery{Types: 1 << 8, Events: []int32{int32(dashstreampb.EventType_EVENT_TYPE_NODE_START)}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := New(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			got := f.TypeScope()
			slices.Sort(tc.want.Events)
			if got.Types != tc.want.Types || !slices.Equal(got.Events, tc.want.Events) {
				t.Fatalf("TypeScope = %+v, want %+v", got, tc.want)
			}
		})
	}
	if q := (*Filter)(nil).TypeScope(); q.Types != 0 || q.Events != nil {
		t.Fatalf("nil filter: %+v", q)
	}
}
