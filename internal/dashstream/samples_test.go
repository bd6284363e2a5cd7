package dashstream

import (
	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

func sampleHeader(seq uint64, typ pb.MessageType) *pb.Header {
	return &pb.Header{
		MessageId:     []byte{0x0a, 0x0a, 0xc9, 0xee, 0x2c, 0xa6, 0x44, 0x55, 0xa6, 0x1a, 0x56, 0xa0, 0xdb, 0xef, 0xca, 0x77},
		TimestampUs:   1764158400000123,
		TenantId:      "demo-tenant",
		ThreadId:      "thread-ü-✓-🚀",
		Sequence:      seq,
		Type:          typ,
		SchemaVersion: 1,
	}
}

func sampleEvent(seq uint64) *pb.Event {
	return &pb.Event{
		Header:    sampleHeader(seq, pb.MessageType_MESSAGE_TYPE_EVENT),
		EventType: pb.EventType_EVENT_TYPE_NODE_START,
		NodeId:    "planner",
		Attributes: map[string]*pb.AttributeValue{
			"s":   {Value: &pb.AttributeValue_StringValue{StringValue: "x"}},
			"i":   {Value: &pb.AttributeValue_IntValue{IntValue: 0}},
			"f":   {Value: &pb.AttributeValue_FloatValue{FloatValue: -1.5}},
			"b":   {Value: &pb.AttributeValue_BoolValue{BoolValue: false}},
			"raw": {Value: &pb.AttributeValue_BytesValue{BytesValue: []byte{0, 1}}},
			"arr": {Value: &pb.AttributeValue_ArrayValue{ArrayValue: &pb.AttributeArray{Values: []*pb.AttributeValue{
				{Value: &pb.AttributeValue_IntValue{IntValue: 7}}}}}},
			"map": {Value: &pb.AttributeValue_MapValue{MapValue: &pb.AttributeMap{Values: map[string]*pb.AttributeValue{
				"k": {Value: &pb.AttributeValue_StringValue{StringValue: "v"}}}}}},
		},
		DurationUs:   1234,
		LlmRequestId: "req-1",
	}
}

// sampleMessages returns one message per envelope type, keyed by oneof name,
// plus "none" (the empty message).
func sampleMessages() map[string]*pb.DashStreamMessage {
	errBody := &pb.Error{
		Header: sampleHeader(7, pb.MessageType_MESSAGE_TYPE_ERROR), ErrorCode: "E1", Message: "boom",
		StackTrace: "at x", Context: map[string]string{"node": "tool"},
		Severity: pb.ErrorSeverity_ERROR_SEVERITY_ERROR, ExceptionType: "ValueError", Suggestions: []string{"retry"},
	}
	return map[string]*pb.DashStreamMessage{
		"none":  {},
		"event": {Message: &pb.DashStreamMessage_Event{Event: sampleEvent(1)}},
		"state_diff": {Message: &pb.DashStreamMessage_StateDiff{StateDiff: &pb.StateDiff{
			Header: sampleHeader(2, pb.MessageType_MESSAGE_TYPE_STATE_DIFF), BaseCheckpointId: []byte{1, 2},
			Operations: []*pb.DiffOperation{
				{Op: pb.DiffOperation_OP_TYPE_ADD.Enum(), Path: "/a", Value: []byte("1"), Encoding: pb.DiffOperation_VALUE_ENCODING_JSON.Enum()},
				{Op: pb.DiffOperation_OP_TYPE_MOVE.Enum(), Path: "/b", From: "/a"},
			},
			StateHash: []byte{0xee}, FullState: []byte(`{"a":1}`),
		}}},
		"token_chunk": {Message: &pb.DashStreamMessage_TokenChunk{TokenChunk: &pb.TokenChunk{
			Header: sampleHeader(3, pb.MessageType_MESSAGE_TYPE_TOKEN_CHUNK), RequestId: "r", Text: "hé",
			TokenIds: []uint32{1, 300000}, Logprobs: []float32{-0.25, 0.1}, ChunkIndex: 2, IsFinal: true,
			FinishReason: pb.FinishReason_FINISH_REASON_STOP, Model: "m",
			Stats: &pb.TokenStats{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3},
		}}},
		"tool_execution": {Message: &pb.DashStreamMessage_ToolExecution{ToolExecution: &pb.ToolExecution{
			Header: sampleHeader(4, pb.MessageType_MESSAGE_TYPE_TOOL_EXECUTION), CallId: "c", ToolName: "search",
			Stage: pb.ToolStage_TOOL_STAGE_FAILED, Arguments: []byte(`{}`), Result: []byte("r"), Error: "e",
			ErrorDetails: errBody, DurationUs: 9, RetryCount: 1,
		}}},
		"checkpoint": {Message: &pb.DashStreamMessage_Checkpoint{Checkpoint: &pb.Checkpoint{
			Header: sampleHeader(5, pb.MessageType_MESSAGE_TYPE_CHECKPOINT), CheckpointId: []byte{9}, State: []byte("s"),
			StateType: "json", Checksum: []byte{1}, StorageUri: "s3://x",
			CompressionInfo: &pb.CompressionInfo{Type: pb.Compression_COMPRESSION_ZSTD, CompressedSize: 1, UncompressedSize: 2, CompressionRatio: 0.5},
			Metadata:        map[string]string{"k": "v"},
		}}},
		"metrics": {Message: &pb.DashStreamMessage_Metrics{Metrics: &pb.Metrics{
			Header: sampleHeader(6, pb.MessageType_MESSAGE_TYPE_METRICS), Scope: "quality", ScopeId: "t",
			Metrics: map[string]*pb.MetricValue{
				"n": {Value: &pb.MetricValue_IntValue{IntValue: 0}, Type: pb.MetricType_METRIC_TYPE_COUNTER},
				"u": {Value: &pb.MetricValue_FloatValue{FloatValue: 0.875}, Unit: "ratio"},
			},
			Tags: map[string]string{"a": "b"},
		}}},
		"error": {Message: &pb.DashStreamMessage_Error{Error: errBody}},
		"event_batch": {Message: &pb.DashStreamMessage_EventBatch{EventBatch: &pb.EventBatch{
			Header: sampleHeader(0, pb.MessageType_MESSAGE_TYPE_EVENT_BATCH),
			Events: []*pb.Event{sampleEvent(21), sampleEvent(22)},
		}}},
		"execution_trace": {Message: &pb.DashStreamMessage_ExecutionTrace{ExecutionTrace: &pb.ExecutionTrace{
			Header: sampleHeader(9, pb.MessageType_MESSAGE_TYPE_EXECUTION_TRACE), ThreadId: "t", ExecutionId: "x",
			NodesExecuted: []*pb.NodeExecutionRecord{{Node: "n", DurationMs: 1, Succeeded: true, Input: []byte("i"),
				Metadata: map[string]string{"k": "v"}}},
			TotalDurationMs: 10, TotalTokens: 20,
			Errors:    []*pb.ErrorRecord{{Node: "n", Message: "m", Recovered: true}},
			Completed: true, StartedAt: "2025-11-26T12:00:00Z", FinalState: []byte("{}"),
			Metadata: map[string][]byte{"k": {0xff}},
		}}},
	}
}
