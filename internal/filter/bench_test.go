package filter

import (
	"strconv"
	"testing"

	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// BenchmarkMatch measures Match on the shapes a gateway sees most: one
// followed thread, a 1,000-thread dashboard, a type filter, and an
// EventBatch of 16 events against a thread and event-type filter.
func BenchmarkMatch(b *testing.B) {
	event := Facts{Type: typeEvent, Tenant: "acme", Threads: []replay.ThreadSeq{{Thread: "run-000777", Sequence: 9}}, EventTypes: []int32{11}}
	batch := Facts{Type: typeBatch, Tenant: "acme"}
	for i := range 16 {
		batch.Threads = append(batch.Threads, replay.ThreadSeq{Thread: "run-" + strconv.Itoa(1000+i)})
		batch.EventTypes = append(batch.EventTypes, 10)
	}
	many := make([]string, MaxThreads)
	for i := range many {
		many[i] = "run-" + strconv.Itoa(i)
	}
	cases := []struct {
		name string
		spec Spec
		x    Facts
	}{
		{"one thread/miss", Spec{Threads: []string{"run-000001"}}, event},
		{"one thread/hit", Spec{Threads: []string{"run-000777"}}, event},
		{"1000 threads/event", Spec{Threads: many}, event},
		{"prefix/event", Spec{ThreadPrefix: "run-0007"}, event},
		{"types/event", Spec{Types: []string{"state_diff", "checkpoint"}}, event},
		{"thread+event type/batch16", Spec{Threads: []string{"run-1015"}, EventTypes: []string{"NODE_START"}}, batch},
	}
	for _, c := range cases {
		f := mustNew(b, c.spec).WithTenant("acme")
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f.Match(c.x)
			}
		})
	}
}
