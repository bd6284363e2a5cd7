package devbroker

import (
	"encoding/json"
	"testing"

	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// runLog follows one thread through the records and checks its shape.
type runLog struct {
	started, ended bool
	openNodes      map[string]bool
	chunks         map[string]uint32 // request id → next chunk index
	finalChunks    map[string]bool
}

func TestWorkloadRunShape(t *testing.T) {
	runs := map[string]*runLog{}
	kinds := map[string]int{}
	for _, r := range corpus(t) {
		kinds[r.dec.MessageType()]++
		l := runs[r.key]
		if l == nil {
			l = &runLog{openNodes: map[string]bool{}, chunks: map[string]uint32{}, finalChunks: map[string]bool{}}
			runs[r.key] = l
		}
		if l.ended {
			t.Fatalf("thread %s: %s after GRAPH_END", r.key, r.dec.MessageType())
		}
		l.check(t, r)
	}
	ended := 0
	for thread, l := range runs {
		if l.ended {
			ended++
			if len(l.openNodes) > 0 || len(l.chunks) != len(l.finalChunks) {
				t.Errorf("thread %s ended with open nodes %v or unfinished token streams", thread, l.openNodes)
			}
		}
	}
	if ended < 10 {
		t.Errorf("only %d runs ended", ended)
	}
	for _, k := range []string{"event", "state_diff", "token_chunk", "tool_execution", "checkpoint", "metrics", "error", "event_batch"} {
		if kinds[k] == 0 {
			t.Errorf("no %s messages in %v", k, kinds)
		}
	}
}

func (l *runLog) check(t *testing.T, r record) {
	t.Helper()
	m := r.dec.Message
	if !l.started && m.GetEvent().GetEventType() != pb.EventType_EVENT_TYPE_GRAPH_START {
		t.Fatalf("thread %s: first message is %s", r.key, r.dec.MessageType())
	}
	switch {
	case m.GetEvent() != nil:
		l.checkEvent(t, r.key, m.GetEvent())
	case m.GetTokenChunk() != nil:
		l.checkChunk(t, r.key, m.GetTokenChunk())
	case m.GetMetrics() != nil:
		checkMetrics(t, r.key, m.GetMetrics())
	case m.GetError() != nil:
		if e := m.GetError(); e.GetSeverity() == pb.ErrorSeverity_ERROR_SEVERITY_UNSPECIFIED || e.GetMessage() == "" {
			t.Fatalf("thread %s: error without severity or message: %v", r.key, e)
		}
	}
}

func (l *runLog) checkEvent(t *testing.T, thread string, ev *pb.Event) {
	t.Helper()
	switch ev.GetEventType() {
	case pb.EventType_EVENT_TYPE_GRAPH_START:
		l.started = true
		checkGraphStart(t, thread, ev)
	case pb.EventType_EVENT_TYPE_GRAPH_END:
		l.ended = true
		if ev.GetDurationUs() <= 0 {
			t.Fatalf("thread %s: GRAPH_END without duration", thread)
		}
	case pb.EventType_EVENT_TYPE_NODE_START:
		l.openNodes[ev.GetNodeId()] = true
	case pb.EventType_EVENT_TYPE_NODE_END:
		if !l.openNodes[ev.GetNodeId()] || ev.GetDurationUs() <= 0 {
			t.Fatalf("thread %s: NODE_END %s without start or duration", thread, ev.GetNodeId())
		}
		delete(l.openNodes, ev.GetNodeId())
	case pb.EventType_EVENT_TYPE_LLM_END:
		if ev.GetDurationUs() <= 0 || ev.GetLlmRequestId() == "" {
			t.Fatalf("thread %s: LLM_END without duration or request id", thread)
		}
	}
}

func (l *runLog) checkChunk(t *testing.T, thread string, c *pb.TokenChunk) {
	t.Helper()
	id := c.GetRequestId()
	if c.GetChunkIndex() != l.chunks[id] || l.finalChunks[id] || c.GetModel() == "" || c.GetStats() == nil {
		t.Fatalf("thread %s: chunk %d of %s out of order or incomplete", thread, c.GetChunkIndex(), id)
	}
	l.chunks[id]++
	if c.GetIsFinal() {
		l.finalChunks[id] = true
		if c.GetFinishReason() != pb.FinishReason_FINISH_REASON_STOP {
			t.Fatalf("thread %s: final chunk with finish reason %v", thread, c.GetFinishReason())
		}
	}
}

func checkMetrics(t *testing.T, thread string, m *pb.Metrics) {
	t.Helper()
	if m.GetScope() != "node" || m.GetScopeId() == "" || len(m.GetMetrics()) < 3 {
		t.Fatalf("thread %s: metrics %v", thread, m)
	}
	for name, v := range m.GetMetrics() {
		if v.GetUnit() == "" || v.GetValue() == nil {
			t.Fatalf("thread %s: metric %s without unit or value", thread, name)
		}
	}
}

// checkGraphStart verifies the attributes dashboards draw the graph from.
func checkGraphStart(t *testing.T, thread string, ev *pb.Event) {
	t.Helper()
	a := ev.GetAttributes()
	var schema struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Nodes   []struct {
			Name     string `json:"name"`
			NodeType string `json:"node_type"`
		} `json:"nodes"`
		Edges []struct {
			From     string `json:"from"`
			To       string `json:"to"`
			EdgeType string `json:"edge_type"`
		} `json:"edges"`
		EntryPoint string         `json:"entry_point"`
		Metadata   map[string]any `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(a["graph_schema_json"].GetStringValue()), &schema); err != nil {
		t.Fatalf("thread %s: graph_schema_json: %v", thread, err)
	}
	nodes := map[string]bool{}
	for _, n := range schema.Nodes {
		nodes[n.Name] = n.NodeType != ""
	}
	for _, e := range schema.Edges {
		if !nodes[e.From] || !nodes[e.To] || e.EdgeType == "" {
			t.Fatalf("thread %s: edge %v refers to an unknown node", thread, e)
		}
	}
	switch {
	case schema.Name == "" || schema.Version == "" || schema.Metadata == nil || !nodes[schema.EntryPoint]:
		t.Fatalf("thread %s: schema %+v", thread, schema)
	case a["graph_name"].GetStringValue() != schema.Name || a["graph_entry_point"].GetStringValue() != schema.EntryPoint:
		t.Fatalf("thread %s: graph_name/graph_entry_point disagree with the schema", thread)
	case a["graph_node_count"].GetIntValue() != int64(len(schema.Nodes)) || a["graph_edge_count"].GetIntValue() != int64(len(schema.Edges)):
		t.Fatalf("thread %s: node/edge counts disagree with the schema", thread)
	case a["schema_id"].GetStringValue() == "" || a["initial_state_json"].GetStringValue() == "":
		t.Fatalf("thread %s: missing schema_id or initial_state_json", thread)
	}
}

func TestWorkloadToolFailures(t *testing.T) {
	failed := map[string]int{}
	errorsSeen := 0
	for _, r := range corpus(t) {
		if te := r.dec.Message.GetToolExecution(); te.GetStage() == pb.ToolStage_TOOL_STAGE_FAILED {
			if te.GetError() == "" || te.GetErrorDetails().GetSeverity() == pb.ErrorSeverity_ERROR_SEVERITY_UNSPECIFIED {
				t.Fatalf("thread %s: FAILED tool call without error details", r.key)
			}
			failed[r.key]++
		}
		if r.dec.Message.GetError() != nil {
			if failed[r.key] == 0 {
				t.Fatalf("thread %s: Error message without a failed tool call", r.key)
			}
			errorsSeen++
		}
	}
	if errorsSeen == 0 {
		t.Fatal("no tool failures in the corpus")
	}
}
