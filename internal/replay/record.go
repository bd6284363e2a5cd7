// Package replay holds the records a client may ask for again: the Record
// type shared by the consumer, the hub and every storage tier, the Store
// interface, and the in-memory tier.
//
// All types here are safe for concurrent use unless their comment says
// otherwise. A *Record is immutable once it has been appended to a store:
// readers share it (and its pre-encoded Frame) without copying.
package replay

import "sync/atomic"

// ThreadSeq is one (thread id, sequence) pair read from a record's header, or
// from each inner event of an EventBatch. Sequence 0 means absent.
type ThreadSeq struct {
	Thread   string
	Sequence uint64
}

// Record is one Kafka record of the DashStream topic as the gateway keeps it.
type Record struct {
	Partition int32
	Offset    int64
	// Prev is the offset of the previous record consumed from this partition,
	// so that readers can tell offsets the broker never returns (transaction
	// markers, compacted records) from records that are missing from a tier.
	// -1 when unknown.
	Prev int64
	// Value is the Kafka record value, byte for byte. Nil for a skipped record.
	Value []byte
	// Skipped is the decode-failure kind of a dead-lettered record (its
	// offset is announced to clients with a "skipped" frame). Empty for a
	// valid record.
	Skipped string
	// TimestampUs is the producer timestamp of the record's first header
	// (µs since the epoch), 0 when absent.
	TimestampUs int64
	// Threads lists the (thread, sequence) pairs the record carries.
	Threads []ThreadSeq
	// Tenant is the header tenant_id the record belongs to; a client
	// restricted to a tenant receives only that tenant's records. Empty when
	// the record names none (or, for a batch, names several), and for a
	// skipped record.
	Tenant string
	// Type is the DashStream message type: the envelope's oneof field number
	// (1 event, 2 state_diff, … 8 event_batch, 9 execution_trace, as the
	// header's MessageType). 0 when unknown: a skipped record or a message
	// without a body. Every tier keeps it (Redis in its entry's facts).
	Type uint8
	// EventTypes are the EventType values a filter matches on: one for an
	// Event; for an EventBatch one per inner event, in wire order, lined up
	// with Threads (Threads[i] and EventTypes[i] are the same inner event);
	// nil for every other type.
	EventTypes []int32
	// GraphName and FullState feed the run index (dashstream's
	// Decoded.RunFacts): the graph_name of a GRAPH_START the record
	// carries, and whether the record restates its thread's whole state (a
	// Checkpoint, a StateDiff with full_state, a GRAPH_START with
	// initial_state_json; in an EventBatch, of its GRAPH_START's thread).
	// Zero for a record read from a tier that does not keep them (Redis).
	GraphName string
	FullState bool
	// Frame is the record's pre-encoded WebSocket bytes (cursor text frame
	// followed by the binary frame, or the "skipped" text frame), written to
	// every client as is. Set once before the record is shared.
	Frame []byte
	// The protocol v2 encodings, made on first use and then shared by
	// every v2 client (frames_v2.go).
	v2Head atomic.Pointer[[]byte]
	json   atomic.Pointer[lazyFrame]
	// The SSE encoding of the value (frames_sse.go), shared likewise.
	b64 atomic.Pointer[lazyFrame]
}

// Size is the number of bytes the record accounts for in byte-bounded tiers.
func (r *Record) Size() int {
	n := len(r.Frame) + len(r.Tenant) + len(r.GraphName) + 64
	if len(r.Frame) == 0 {
		n += len(r.Value)
	}
	for _, t := range r.Threads {
		n += len(t.Thread) + 24
	}
	return n
}
