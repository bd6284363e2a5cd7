package devbroker

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// llmCall queues LLM_START, the streamed token chunks and LLM_END, and
// returns the node's duration and the generated text.
func (r *run) llmCall(rng source, node, text string) (int64, string) {
	reqID := "req_" + rng.hex(8)
	prompt := rng.between(250, 2400)
	chunks := chunkText(rng, text)
	completion := int64(len(strings.Fields(text)))*4/3 + 1
	start := newEvent(pb.EventType_EVENT_TYPE_LLM_START, node, attrs{
		"model": strAttr(r.g.model), "temperature": floatAttr(0.2), "prompt_tokens": intAttr(prompt),
	})
	start.LlmRequestId = reqID
	r.emit(wrapEvent(start))
	for i, c := range chunks {
		r.emit(r.tokenChunk(rng, reqID, c, i, len(chunks), prompt, completion))
	}
	durationUs := rng.between(350_000, 3_500_000)
	end := newEvent(pb.EventType_EVENT_TYPE_LLM_END, node, attrs{
		"model": strAttr(r.g.model), "prompt_tokens": intAttr(prompt),
		"completion_tokens": intAttr(completion), "total_tokens": intAttr(prompt + completion),
		"cost_usd": floatAttr(roundTo(float64(prompt+3*completion)*2e-7, 6)),
	})
	end.DurationUs, end.LlmRequestId = durationUs, reqID
	r.emit(wrapEvent(end))
	r.tokens += prompt + completion
	return durationUs + rng.between(2_000, 30_000), text
}

// tokenChunk builds chunk i of n; stats count completion tokens so far.
func (r *run) tokenChunk(rng source, reqID, text string, i, n int, prompt, completion int64) *pb.DashStreamMessage {
	done := uint32(completion) * uint32(i+1) / uint32(n)
	c := &pb.TokenChunk{
		RequestId:  reqID,
		Text:       text,
		TokenIds:   []uint32{uint32(rng.between(100, 100_000)), uint32(rng.between(100, 100_000))},
		ChunkIndex: uint32(i),
		Model:      r.g.model,
		Stats:      &pb.TokenStats{PromptTokens: uint32(prompt), CompletionTokens: done, TotalTokens: uint32(prompt) + done},
	}
	if i == n-1 {
		c.IsFinal, c.FinishReason = true, pb.FinishReason_FINISH_REASON_STOP
	}
	return tokenMsg(c)
}

// chunkText splits text into pieces of one to four words whose
// concatenation is text again.
func chunkText(rng source, text string) []string {
	words := strings.Fields(text)
	var chunks []string
	for len(words) > 0 {
		k := min(int(rng.between(1, 4)), len(words))
		piece := strings.Join(words[:k], " ")
		if len(chunks) > 0 {
			piece = " " + piece
		}
		chunks = append(chunks, piece)
		words = words[k:]
	}
	return chunks
}

// toolCall queues a tool execution REQUESTED → STARTED → COMPLETED, or
// FAILED followed by an Error message, and returns duration and outcome.
func (r *run) toolCall(rng source, n graphNode) (int64, string) {
	call := &pb.ToolExecution{CallId: "call_" + rng.hex(8), ToolName: n.Tool}
	args, _ := json.Marshal(map[string]any{"query": r.query, "limit": rng.between(5, 20)})
	r.emit(toolMsg(&pb.ToolExecution{CallId: call.CallId, ToolName: n.Tool, Stage: pb.ToolStage_TOOL_STAGE_REQUESTED, Arguments: args}))
	r.emit(toolMsg(&pb.ToolExecution{CallId: call.CallId, ToolName: n.Tool, Stage: pb.ToolStage_TOOL_STAGE_STARTED}))
	call.DurationUs = rng.between(40_000, 1_500_000)
	if rng.chance(0.12) {
		return call.DurationUs, r.toolFailed(rng, n, call)
	}
	items := rng.between(1, 12)
	call.Stage = pb.ToolStage_TOOL_STAGE_COMPLETED
	call.Result, _ = json.Marshal(map[string]any{"status": "ok", "items": items, "source": n.Tool})
	r.emit(toolMsg(call))
	return call.DurationUs, fmt.Sprintf("%s returned %d items", n.Tool, items)
}

func (r *run) toolFailed(rng source, n graphNode, call *pb.ToolExecution) string {
	f := pick(rng, toolFailures)
	r.failures++
	call.Stage = pb.ToolStage_TOOL_STAGE_FAILED
	call.Error = f.message
	call.ErrorDetails = &pb.Error{ErrorCode: f.code, Message: f.message, Severity: pb.ErrorSeverity_ERROR_SEVERITY_ERROR, ExceptionType: f.exception}
	r.emit(toolMsg(call))
	severity := pb.ErrorSeverity_ERROR_SEVERITY_WARNING
	if rng.chance(0.3) {
		severity = pb.ErrorSeverity_ERROR_SEVERITY_ERROR
	}
	r.emit(errorMsg(&pb.Error{
		ErrorCode: f.code, Message: fmt.Sprintf("%s: %s", n.Tool, f.message), Severity: severity,
		ExceptionType: f.exception, Suggestions: []string{f.suggestion},
		Context: map[string]string{"node": n.Name, "tool": n.Tool, "call_id": call.CallId},
	}))
	return failedPrefix + f.message
}

// failedPrefix starts the outcome of a node whose tool call failed.
const failedPrefix = "failed: "

func succeeded(outcome string) bool { return !strings.HasPrefix(outcome, failedPrefix) }

// progressBatch is an EventBatch of two to four progress events.
func (r *run) progressBatch(rng source, node string) *pb.DashStreamMessage {
	n := int(rng.between(2, 4))
	events := make([]*pb.Event, n)
	for i := range events {
		switch rng.IntN(3) {
		case 0:
			progress := roundTo(float64(i+1)/float64(n+1), 2)
			events[i] = newEvent(pb.EventType_EVENT_TYPE_NODE_PROGRESS, node, attrs{"progress": floatAttr(progress)})
		case 1:
			events[i] = newEvent(pb.EventType_EVENT_TYPE_NODE_THINKING, node, attrs{"thought": strAttr(pick(rng, thoughts))})
		default:
			events[i] = newEvent(pb.EventType_EVENT_TYPE_NODE_SUBSTEP, node, attrs{
				"substep": strAttr(pick(rng, substeps)), "index": intAttr(int64(i)),
			})
		}
	}
	return batchMsg(events)
}

// emitDiff queues the StateDiff of a node: JSON-patch operations applied to
// the run's state, whose canonical SHA-256 is the state_hash; sometimes the
// full state instead of operations.
func (r *run) emitDiff(rng source, n graphNode, outcome string, edge graphEdge, hasNext bool) error {
	ops, err := r.diffOps(rng, n, outcome, edge, hasNext)
	if err != nil {
		return err
	}
	diff := &pb.StateDiff{Operations: ops, BaseCheckpointId: r.checkpoint}
	if r.state, err = applyDiff(r.state, diff); err != nil {
		return err
	}
	canon, err := CanonicalJSON(r.state)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(canon)
	diff.StateHash = sum[:]
	if rng.chance(0.12) {
		diff.Operations, diff.FullState = nil, canon
	}
	r.emitState(diffMsg(diff), canon)
	return nil
}

func (r *run) diffOps(rng source, n graphNode, outcome string, edge graphEdge, hasNext bool) ([]*pb.DiffOperation, error) {
	var p patchBuilder
	role := "assistant"
	if n.NodeType == nodeTool {
		role = "tool"
	}
	p.add(pb.DiffOperation_OP_TYPE_ADD, "/messages/-", map[string]any{"role": role, "name": n.Name, "content": outcome})
	p.add(pb.DiffOperation_OP_TYPE_ADD, "/results/"+pointerToken(n.Name), map[string]any{
		"step": r.step, "ok": succeeded(outcome), "summary": firstWords(outcome, 8),
	})
	p.add(pb.DiffOperation_OP_TYPE_REPLACE, "/step", r.step)
	if n.NodeType == nodeRouter {
		p.add(pb.DiffOperation_OP_TYPE_ADD, "/route", edge.Label)
	}
	if edge.Label == "revise" {
		p.add(pb.DiffOperation_OP_TYPE_REPLACE, "/revisions", r.visits["writer"])
	}
	r.scratchpadOps(rng, &p)
	if !hasNext {
		p.add(pb.DiffOperation_OP_TYPE_REPLACE, "/status", "completed")
	}
	return p.ops, p.err
}

// scratchpadOps sometimes adds a scratchpad, and sometimes removes it again.
func (r *run) scratchpadOps(rng source, p *patchBuilder) {
	state, _ := r.state.(map[string]any)
	if _, ok := state["scratchpad"]; ok {
		if rng.chance(0.5) {
			p.add(pb.DiffOperation_OP_TYPE_REMOVE, "/scratchpad", nil)
		}
		return
	}
	if rng.chance(0.3) {
		p.add(pb.DiffOperation_OP_TYPE_ADD, "/scratchpad", map[string]any{"notes": []string{pick(rng, thoughts)}})
	}
}

// patchBuilder collects DiffOperations with JSON values, keeping the first
// marshal error.
type patchBuilder struct {
	ops []*pb.DiffOperation
	err error
}

func (p *patchBuilder) add(op pb.DiffOperation_OpType, path string, value any) {
	var raw []byte
	if op != pb.DiffOperation_OP_TYPE_REMOVE {
		b, err := json.Marshal(value)
		if err != nil && p.err == nil {
			p.err = fmt.Errorf("patch %s: %w", path, err)
		}
		raw = b
	}
	p.ops = append(p.ops, diffOp(op, path, raw))
}

func (r *run) nodeMetrics(rng source, n graphNode, durationUs, tokens int64) *pb.DashStreamMessage {
	m := map[string]*pb.MetricValue{
		"duration_ms": floatMetric(roundTo(float64(durationUs)/1000, 3), "ms", pb.MetricType_METRIC_TYPE_GAUGE),
		"memory_mb":   floatMetric(roundTo(40+rng.Float64()*360, 1), "MB", pb.MetricType_METRIC_TYPE_GAUGE),
		"state_keys":  intMetric(int64(stateKeys(r.state)), "keys", pb.MetricType_METRIC_TYPE_GAUGE),
	}
	switch n.NodeType {
	case nodeLLM, nodeRouter:
		m["tokens"] = intMetric(tokens, "tokens", pb.MetricType_METRIC_TYPE_COUNTER)
		m["cost_usd"] = floatMetric(roundTo(float64(tokens)*4e-7, 6), "usd", pb.MetricType_METRIC_TYPE_COUNTER)
	case nodeTool:
		m["tool_calls"] = intMetric(1, "calls", pb.MetricType_METRIC_TYPE_COUNTER)
	}
	return metricsMsg(&pb.Metrics{
		Scope: "node", ScopeId: n.Name, Metrics: m,
		Tags: map[string]string{"graph": r.g.Name, "graph_version": r.g.Version, "node_type": n.NodeType},
	})
}

// emitCheckpoint queues CHECKPOINT_SAVE and the Checkpoint of the current
// state; later diffs name it as their base.
func (r *run) emitCheckpoint(rng source, node string) error {
	state, err := CanonicalJSON(r.state)
	if err != nil {
		return err
	}
	id := rng.uuid()
	save, cp := r.checkpointMsgs(id, state, map[string]string{"graph": r.g.Name, "node": node, "step": strconv.Itoa(r.step)})
	r.emit(save)
	r.emitState(cp, state)
	r.checkpoint = id
	return nil
}

// checkpointMsgs builds CHECKPOINT_SAVE and the Checkpoint of the canonical
// JSON state, whose checksum is its SHA-256 (the state_hash of a diff
// leading to it).
func (r *run) checkpointMsgs(id, state []byte, meta map[string]string) (save, cp *pb.DashStreamMessage) {
	sum := sha256.Sum256(state)
	size := uint64(len(state))
	r.checkpoints++
	save = eventMsg(pb.EventType_EVENT_TYPE_CHECKPOINT_SAVE, meta["node"], attrs{"checkpoint_id": strAttr(hex.EncodeToString(id))})
	cp = checkpointMsg(&pb.Checkpoint{
		CheckpointId: id, State: state, StateType: "json", Checksum: sum[:],
		StorageUri:      fmt.Sprintf("memory://checkpoints/%s/%d", r.thread, r.checkpoints),
		CompressionInfo: &pb.CompressionInfo{Type: pb.Compression_COMPRESSION_NONE, CompressedSize: size, UncompressedSize: size, CompressionRatio: 1},
		Metadata:        meta,
	})
	return save, cp
}

func stateKeys(state any) int {
	m, _ := state.(map[string]any)
	return len(m)
}

func firstWords(s string, n int) string {
	words := strings.Fields(s)
	return strings.Join(words[:min(n, len(words))], " ")
}

func roundTo(f float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(f*p) / p
}
