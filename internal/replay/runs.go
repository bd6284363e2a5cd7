package replay

import (
	"slices"

	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// Run statuses (docs/PROTOCOL.md §3.9), from the thread's latest
// GRAPH_START, GRAPH_END or GRAPH_ERROR event held or seen.
const (
	RunRunning   = "running"
	RunCompleted = "completed"
	RunFailed    = "failed"
)

// Run is one thread of the run index: what the memory tier holds of it.
type Run struct {
	Thread    string
	GraphName string // from its GRAPH_START; "" when none was seen
	Status    string // RunRunning (also when no lifecycle event was seen), RunCompleted, RunFailed
	// FirstUs and LastUs are the producer timestamps (µs) of the oldest
	// record held and of the newest seen.
	FirstUs, LastUs int64
	Records         int // records held that carry an event of the thread
	// FullState is the position of the newest full-state record held (a
	// Checkpoint, a StateDiff with full_state, a GRAPH_START with the
	// initial state); nil when none is held.
	FullState *Ref
}

// RunQuery selects and pages runs. Zero fields select everything.
type RunQuery struct {
	Status    string // only runs of this status
	GraphName string // only runs of this graph
	SinceUs   int64  // only runs whose newest record is at or after this (µs)
	// Tenant restricts the answer to the threads whose every held or seen
	// record is this tenant's (a tenant-bound token); it applies when
	// Restricted, so that the empty tenant restricts too.
	Tenant     string
	Restricted bool
	After      string // page cursor: only threads whose id sorts after it
	Limit      int    // runs per page; not positive means 100
}

// runState is a thread's run-index entry, kept with its index entries
// (memory_threads.go) and dropped with them.
type runState struct {
	records int
	graph   string
	status  string
	lastUs  int64
	tenant  string
	tenants int // distinct tenants seen, capped at 2
	full    *Record
	fullRef Ref
}

// observe updates the run with event i of r, of sequence seq.
func (s *runState) observe(r *Record, i int, seq uint64) {
	s.lastUs = max(s.lastUs, r.TimestampUs)
	switch {
	case s.tenants == 0:
		s.tenant, s.tenants = r.Tenant, 1
	case r.Tenant != s.tenant:
		s.tenants = 2
	}
	batch := r.Type == uint8(dashstreampb.MessageType_MESSAGE_TYPE_EVENT_BATCH)
	var event int32
	if i < len(r.EventTypes) && (batch || len(r.EventTypes) == 1) {
		event = r.EventTypes[i]
	}
	switch dashstreampb.EventType(event) {
	case dashstreampb.EventType_EVENT_TYPE_GRAPH_START:
		s.status = RunRunning
		if r.GraphName != "" {
			s.graph = r.GraphName
		}
	case dashstreampb.EventType_EVENT_TYPE_GRAPH_END:
		s.status = RunCompleted
	case dashstreampb.EventType_EVENT_TYPE_GRAPH_ERROR:
		s.status = RunFailed
	}
	if r.FullState && (!batch || dashstreampb.EventType(event) == dashstreampb.EventType_EVENT_TYPE_GRAPH_START) {
		s.full, s.fullRef = r, Ref{Sequence: seq, Partition: r.Partition, Offset: r.Offset}
	}
}

// forget accounts for r leaving the tier (its entries are removed next).
func (s *runState) forget(r *Record) {
	s.records--
	if s.full == r {
		s.full = nil
	}
}

// Runs answers the run index: the threads the memory tier holds records
// of (so the index is bounded by the records held and follows their
// eviction), selected by q, in thread id order, at most q.Limit of them;
// more reports that further runs match after the last one. Threads with an
// empty id are not runs and are not listed.
func (m *Memory) Runs(q RunQuery) (runs []Run, more bool) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	var ids []string
	for id, tl := range m.threads {
		if id != "" && id > q.After && q.admits(&tl.run) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if more = len(ids) > limit; more {
		ids = ids[:limit]
	}
	runs = make([]Run, 0, len(ids))
	for _, id := range ids {
		runs = append(runs, m.threads[id].runLocked(id))
	}
	return runs, more
}

// RunOf returns the run-index entry of one thread, if memory holds records
// of it: a single look-up (a joining reader's way to the thread's latest
// full-state position).
func (m *Memory) RunOf(thread string) (Run, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	tl := m.threads[thread]
	if tl == nil {
		return Run{}, false
	}
	return tl.runLocked(thread), true
}

func (q *RunQuery) admits(s *runState) bool {
	status := s.status
	if status == "" {
		status = RunRunning
	}
	return (q.Status == "" || q.Status == status) && (q.GraphName == "" || q.GraphName == s.graph) &&
		s.lastUs >= q.SinceUs && (!q.Restricted || (s.tenants == 1 && s.tenant == q.Tenant))
}

func (tl *threadLog) runLocked(id string) Run {
	run := Run{Thread: id, GraphName: tl.run.graph, Status: tl.run.status, LastUs: tl.run.lastUs, Records: tl.run.records}
	if run.Status == "" {
		run.Status = RunRunning
	}
	first := true
	for _, tp := range tl.parts {
		if live := tp.live(); len(live) > 0 && (first || live[0].rec.TimestampUs < run.FirstUs) {
			run.FirstUs, first = live[0].rec.TimestampUs, false
		}
	}
	if tl.run.full != nil {
		ref := tl.run.fullRef
		run.FullState = &ref
	}
	return run
}
