package replay

import (
	"slices"
	"testing"

	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// event is a record of one Event of thread at seq (timestamp seq µs), of
// event type et, as the consumer makes it.
func event(p int32, o int64, thread string, seq uint64, et pb.EventType) *Record {
	r := threaded(rec(p, o, o-1), seq, thread)
	r.TimestampUs = int64(seq)
	r.Type = uint8(pb.MessageType_MESSAGE_TYPE_EVENT)
	r.EventTypes = []int32{int32(et)}
	return r
}

func graphStart(p int32, o int64, thread string, seq uint64, graph string) *Record {
	r := event(p, o, thread, seq, pb.EventType_EVENT_TYPE_GRAPH_START)
	r.GraphName, r.FullState = graph, true
	return r
}

func checkpoint(p int32, o int64, thread string, seq uint64) *Record {
	r := threaded(rec(p, o, o-1), seq, thread)
	r.TimestampUs = int64(seq)
	r.Type, r.FullState = uint8(pb.MessageType_MESSAGE_TYPE_CHECKPOINT), true
	return r
}

func runIDs(runs []Run) []string {
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.Thread)
	}
	return ids
}

func TestRunsContents(t *testing.T) {
	m := NewMemory(MemoryConfig{PerPartition: 100})
	m.add([]*Record{
		graphStart(0, 0, "a", 1, "planner"),
		event(0, 1, "a", 2, pb.EventType_EVENT_TYPE_NODE_START),
		graphStart(1, 0, "b", 1, "coder"),
		checkpoint(0, 2, "a", 3),
		event(1, 1, "b", 2, pb.EventType_EVENT_TYPE_GRAPH_END),
		graphStart(0, 3, "c", 1, "planner"),
		event(0, 4, "c", 2, pb.EventType_EVENT_TYPE_GRAPH_ERROR),
		event(0, 5, "a", 4, pb.EventType_EVENT_TYPE_NODE_END),
		event(1, 2, "mid", 7, pb.EventType_EVENT_TYPE_NODE_START), // joined mid-run: no GRAPH_START seen
	})
	runs, more := m.Runs(RunQuery{})
	if more || !slices.Equal(runIDs(runs), []string{"a", "b", "c", "mid"}) {
		t.Fatalf("runs %v more %v", runIDs(runs), more)
	}
	want := []Run{
		{Thread: "a", GraphName: "planner", Status: RunRunning, FirstUs: 1, LastUs: 4, Records: 4, FullState: &Ref{Sequence: 3, Partition: 0, Offset: 2}},
		{Thread: "b", GraphName: "coder", Status: RunCompleted, FirstUs: 1, LastUs: 2, Records: 2, FullState: &Ref{Sequence: 1, Partition: 1, Offset: 0}},
		{Thread: "c", GraphName: "planner", Status: RunFailed, FirstUs: 1, LastUs: 2, Records: 2, FullState: &Ref{Sequence: 1, Partition: 0, Offset: 3}},
		{Thread: "mid", Status: RunRunning, FirstUs: 7, LastUs: 7, Records: 1},
	}
	for i, w := range want {
		if !sameRun(runs[i], w) {
			t.Fatalf("run %d:\n got  %+v (full %v)\n want %+v (full %v)", i, runs[i], runs[i].FullState, w, w.FullState)
		}
	}
	if one, ok := m.RunOf("b"); !ok || !sameRun(one, want[1]) {
		t.Fatalf("Run(b) = %+v, %v", one, ok)
	}
	if _, ok := m.RunOf("nobody"); ok {
		t.Fatal("Run of an unknown thread")
	}
	for _, tc := range []struct {
		q    RunQuery
		want []string
	}{
		{RunQuery{Status: RunRunning}, []string{"a", "mid"}},
		{RunQuery{Status: RunCompleted}, []string{"b"}},
		{RunQuery{Status: RunFailed}, []string{"c"}},
		{RunQuery{GraphName: "planner"}, []string{"a", "c"}},
		{RunQuery{GraphName: "planner", Status: RunFailed}, []string{"c"}},
		{RunQuery{SinceUs: 4}, []string{"a", "mid"}},
		{RunQuery{After: "b"}, []string{"c", "mid"}},
	} {
		if got, _ := m.Runs(tc.q); !slices.Equal(runIDs(got), tc.want) {
			t.Fatalf("%+v: %v, want %v", tc.q, runIDs(got), tc.want)
		}
	}
}

func sameRun(a, b Run) bool {
	fa, fb := a.FullState, b.FullState
	a.FullState, b.FullState = nil, nil
	return a == b && (fa == nil) == (fb == nil) && (fa == nil || *fa == *fb)
}

func TestRunsPaging(t *testing.T) {
	m := NewMemory(MemoryConfig{PerPartition: 1000})
	var want []string
	for i := range 25 {
		id := string(rune('a'+i%26)) + string(rune('a'+i/26))
		want = append(want, id)
		m.add([]*Record{graphStart(0, int64(i), id, 1, "g")})
	}
	slices.Sort(want)
	var got []string
	q := RunQuery{Limit: 4}
	for range 100 {
		runs, more := m.Runs(q)
		if len(runs) > 4 {
			t.Fatalf("page of %d", len(runs))
		}
		got = append(got, runIDs(runs)...)
		if !more {
			break
		}
		q.After = runs[len(runs)-1].Thread
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages %v, want %v", got, want)
	}
}

// A tenant sees only the runs all of whose records are its own.
func TestRunsTenant(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	a := graphStart(0, 0, "a", 1, "g")
	a.Tenant = "acme"
	b := graphStart(0, 1, "b", 1, "g")
	b.Tenant = "other"
	mixed1, mixed2 := graphStart(0, 2, "mixed", 1, "g"), event(0, 3, "mixed", 2, pb.EventType_EVENT_TYPE_NODE_START)
	mixed1.Tenant = "acme"
	none := graphStart(0, 4, "none", 1, "g")
	m.add([]*Record{a, b, mixed1, mixed2, none})
	for _, tc := range []struct {
		q    RunQuery
		want []string
	}{
		{RunQuery{}, []string{"a", "b", "mixed", "none"}},
		{RunQuery{Tenant: "acme", Restricted: true}, []string{"a"}},
		{RunQuery{Tenant: "other", Restricted: true}, []string{"b"}},
		{RunQuery{Tenant: "", Restricted: true}, []string{"none"}},
		{RunQuery{Tenant: "nobody", Restricted: true}, nil},
	} {
		if got, _ := m.Runs(tc.q); !slices.Equal(runIDs(got), tc.want) {
			t.Fatalf("%+v: %v, want %v", tc.q, runIDs(got), tc.want)
		}
	}
}

// The run index is bounded by the records held: a run's count, first
// timestamp and full-state position follow eviction, and a run leaves with
// its last record.
func TestRunsEvicted(t *testing.T) {
	m := NewMemory(MemoryConfig{PerPartition: 4})
	m.add([]*Record{
		graphStart(0, 0, "a", 1, "g"),
		event(0, 1, "a", 2, pb.EventType_EVENT_TYPE_NODE_START),
		graphStart(0, 2, "b", 1, "g"),
		event(0, 3, "a", 3, pb.EventType_EVENT_TYPE_NODE_END),
		event(0, 4, "b", 2, pb.EventType_EVENT_TYPE_NODE_START), // evicts a's GRAPH_START
	})
	runs, _ := m.Runs(RunQuery{})
	if len(runs) != 2 || runs[0].Records != 2 || runs[0].FirstUs != 2 || runs[0].FullState != nil ||
		runs[0].GraphName != "g" || runs[0].Status != RunRunning {
		t.Fatalf("after eviction of a's start: %+v", runs)
	}
	for o := int64(5); o < 9; o++ {
		m.add([]*Record{event(0, o, "c", uint64(o), pb.EventType_EVENT_TYPE_NODE_START)})
	}
	if runs, _ := m.Runs(RunQuery{}); !slices.Equal(runIDs(runs), []string{"c"}) || runs[0].Records != 4 {
		t.Fatalf("after a and b left: %+v", runs)
	}
	if n := m.Threads(); n != 1 {
		t.Fatalf("%d threads indexed", n)
	}
}

// In an EventBatch the lifecycle events and the full state belong to the
// threads of their own inner events.
func TestRunsBatch(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	r := rec(0, 0, -1)
	r.Threads = []ThreadSeq{{"x", 1}, {"y", 5}, {"z", 9}}
	r.Type = uint8(pb.MessageType_MESSAGE_TYPE_EVENT_BATCH)
	r.EventTypes = []int32{int32(pb.EventType_EVENT_TYPE_GRAPH_START), int32(pb.EventType_EVENT_TYPE_GRAPH_END), int32(pb.EventType_EVENT_TYPE_NODE_START)}
	r.GraphName, r.FullState = "batched", true
	m.add([]*Record{r})
	runs, _ := m.Runs(RunQuery{})
	if len(runs) != 3 {
		t.Fatalf("runs %+v", runs)
	}
	x, y, z := runs[0], runs[1], runs[2]
	if x.Status != RunRunning || x.GraphName != "batched" || x.FullState == nil || *x.FullState != (Ref{Sequence: 1, Partition: 0, Offset: 0}) {
		t.Fatalf("x %+v", x)
	}
	if y.Status != RunCompleted || y.GraphName != "" || y.FullState != nil || z.Status != RunRunning || z.FullState != nil {
		t.Fatalf("y %+v, z %+v", y, z)
	}
}
