package devbroker

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// maxVisits bounds how often a conditional edge may lead back into a node,
// so every run ends.
const maxVisits = 2

// run is one agent graph run: one thread id. Its messages are generated a
// node at a time into queue, and stamped when they leave it.
type run struct {
	g      *graph
	thread string
	query  string
	seq    uint64 // last sequence stamped
	state  any    // the graph state after the last StateDiff queued
	queue  []queued
	// delivered is the canonical JSON of the state as of the messages
	// already returned by next: what a consumer has reconstructed. The
	// state of queued messages runs ahead of it.
	delivered []byte
	// lastFull is the workload record number of the run's last full-state
	// record returned by next (GRAPH_START, a full_state diff, a Checkpoint).
	lastFull int64

	started bool
	ended   bool
	node    string // node to run next; "" once the graph has finished
	visits  map[string]int
	step    int

	elapsedUs   int64  // synthetic run time so far
	tokens      int64  // LLM tokens used so far
	failures    int    // failed tool calls
	checkpoint  []byte // id of the last checkpoint queued, base of later diffs
	checkpoints int    // checkpoints queued so far
}

func newRun(rng source) (*run, error) {
	g := pick(rng, graphs)
	r := &run{
		g:      g,
		thread: fmt.Sprintf("%s-%s", g.Name, rng.hex(6)),
		query:  pick(rng, g.queries),
		node:   g.EntryPoint,
		visits: map[string]int{},
	}
	if err := r.initState(); err != nil {
		return nil, err
	}
	return r, nil
}

// initState sets the state a run starts from, in the shape JSON decoding
// gives (float64 numbers), so that hashes are computed on what a consumer
// of initial_state_json sees.
func (r *run) initState() error {
	initial := map[string]any{
		"query":     r.query,
		"messages":  []any{map[string]any{"role": "user", "content": r.query}},
		"results":   map[string]any{},
		"step":      0,
		"revisions": 0,
		"status":    "running",
	}
	b, err := json.Marshal(initial)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, &r.state)
}

func (r *run) done() bool { return r.ended && len(r.queue) == 0 }

// queued is a message waiting in a run's queue, with the canonical JSON of
// the state once it is out for the messages that set it (GRAPH_START, a
// StateDiff, a Checkpoint), nil for the others.
type queued struct {
	msg   *pb.DashStreamMessage
	state []byte
}

// next returns the run's next unstamped message; at is the workload's
// record number, resyncEvery how many workload records may pass between two
// of the run's full-state records (see resyncDue).
func (r *run) next(rng source, at, resyncEvery int64) (*pb.DashStreamMessage, error) {
	for len(r.queue) == 0 {
		if err := r.refill(rng); err != nil {
			return nil, err
		}
	}
	if r.resyncDue(at, resyncEvery) {
		r.resync(rng)
	}
	q := r.queue[0]
	r.queue = r.queue[1:]
	if q.state != nil {
		r.delivered = q.state
	}
	if isFullState(q.msg) {
		r.lastFull = at
	}
	return q.msg, nil
}

func (r *run) refill(rng source) error {
	var err error
	switch {
	case !r.started:
		r.started = true
		var start *pb.DashStreamMessage
		var initial []byte
		start, initial, err = r.graphStart()
		r.emitState(start, initial)
	case r.node != "":
		err = r.runNode(rng)
	case !r.ended:
		r.ended = true
		r.emit(r.graphEnd())
	default:
		return fmt.Errorf("run %s has ended", r.thread)
	}
	return err
}

func (r *run) emit(msgs ...*pb.DashStreamMessage) {
	for _, m := range msgs {
		r.queue = append(r.queue, queued{msg: m})
	}
}

// emitState queues msg, which leaves the run's state as the canonical JSON
// state.
func (r *run) emitState(msg *pb.DashStreamMessage, state []byte) {
	r.queue = append(r.queue, queued{msg: msg, state: state})
}

func (r *run) graphStart() (*pb.DashStreamMessage, []byte, error) {
	schema, schemaID, err := r.g.schemaJSON()
	if err != nil {
		return nil, nil, err
	}
	initial, err := CanonicalJSON(r.state)
	if err != nil {
		return nil, nil, err
	}
	return eventMsg(pb.EventType_EVENT_TYPE_GRAPH_START, "", attrs{
		"graph_schema_json":  strAttr(schema),
		"graph_name":         strAttr(r.g.Name),
		"graph_version":      strAttr(r.g.Version),
		"graph_entry_point":  strAttr(r.g.EntryPoint),
		"graph_node_count":   intAttr(int64(len(r.g.Nodes))),
		"graph_edge_count":   intAttr(int64(len(r.g.Edges))),
		"schema_id":          strAttr(schemaID),
		"initial_state_json": strAttr(string(initial)),
		"query":              strAttr(r.query),
	}), initial, nil
}

func (r *run) graphEnd() *pb.DashStreamMessage {
	status := "completed"
	if r.failures > 0 {
		status = "completed_with_errors"
	}
	hash := ""
	if canon, err := CanonicalJSON(r.state); err == nil {
		sum := sha256.Sum256(canon)
		hash = hex.EncodeToString(sum[:])
	}
	ev := newEvent(pb.EventType_EVENT_TYPE_GRAPH_END, "", attrs{
		"status":           strAttr(status),
		"graph_name":       strAttr(r.g.Name),
		"nodes_executed":   intAttr(int64(r.step)),
		"total_tokens":     intAttr(r.tokens),
		"final_state_hash": strAttr(hash),
	})
	ev.DurationUs = r.elapsedUs
	return wrapEvent(ev)
}

// runNode queues everything the current node emits, from NODE_START to the
// edge taken out of it, and moves the run to the next node.
func (r *run) runNode(rng source) error {
	n := r.g.node(r.node)
	edge, hasNext := r.nextEdge(rng)
	r.step++
	r.visits[n.Name]++
	r.emit(eventMsg(pb.EventType_EVENT_TYPE_NODE_START, n.Name, attrs{
		"node_type": strAttr(n.NodeType), "step": intAttr(int64(r.step)),
	}))
	tokensBefore := r.tokens
	durationUs, outcome := r.nodeWork(rng, n, edge)
	if rng.chance(0.35) {
		r.emit(r.progressBatch(rng, n.Name))
	}
	if err := r.emitDiff(rng, n, outcome, edge, hasNext); err != nil {
		return err
	}
	r.emit(r.nodeMetrics(rng, n, durationUs, r.tokens-tokensBefore))
	if rng.chance(0.3) {
		if err := r.emitCheckpoint(rng, n.Name); err != nil {
			return err
		}
	}
	r.emitNodeEnd(n, durationUs, succeeded(outcome))
	r.node = ""
	if hasNext {
		r.emit(edgeEvent(edge))
		r.node = edge.To
	}
	return nil
}

// nodeWork queues the node's LLM or tool activity and returns its duration
// and a short description of its outcome for the state.
func (r *run) nodeWork(rng source, n graphNode, edge graphEdge) (int64, string) {
	switch n.NodeType {
	case nodeLLM:
		return r.llmCall(rng, n.Name, responseFor(rng, n.Name))
	case nodeRouter:
		d, _ := r.llmCall(rng, n.Name, "Decision: "+edge.Label+". "+pick(rng, routerReasons))
		return d, edge.Label
	case nodeTool:
		return r.toolCall(rng, n)
	}
	return rng.between(5_000, 50_000), "ok"
}

func (r *run) emitNodeEnd(n graphNode, durationUs int64, success bool) {
	r.elapsedUs += durationUs
	ev := newEvent(pb.EventType_EVENT_TYPE_NODE_END, n.Name, attrs{
		"node_type": strAttr(n.NodeType), "step": intAttr(int64(r.step)), "success": boolAttr(success),
	})
	ev.DurationUs = durationUs
	r.emit(wrapEvent(ev))
}

// nextEdge chooses the edge out of the current node: the direct one, or a
// conditional one, skipping targets already visited maxVisits times. No
// edge left means the graph has finished.
func (r *run) nextEdge(rng source) (graphEdge, bool) {
	var open []graphEdge
	for _, e := range r.g.outgoing(r.node) {
		if r.visits[e.To] < maxVisits {
			open = append(open, e)
		}
	}
	if len(open) == 0 {
		return graphEdge{}, false
	}
	return pick(rng, open), true
}

func edgeEvent(e graphEdge) *pb.DashStreamMessage {
	t := pb.EventType_EVENT_TYPE_EDGE_TRAVERSAL
	a := attrs{"from": strAttr(e.From), "to": strAttr(e.To), "edge_type": strAttr(e.EdgeType)}
	if e.EdgeType == "conditional" {
		t = pb.EventType_EVENT_TYPE_CONDITIONAL_BRANCH
		a["label"] = strAttr(e.Label)
	}
	return eventMsg(t, e.From, a)
}
