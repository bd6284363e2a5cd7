package replay

import "context"

// Store is a writable replay tier (memory, Redis). Every implementation
// passes the shared conformance suite in replaytest.
//
// Offsets are exact int64s end to end (no float anywhere); thread sequences
// exact uint64s. Implementations are safe for concurrent use.
type Store interface {
	// Append stores records (ascending offsets per partition). Writing a
	// record that is already stored is a no-op, so two instances writing
	// the same record, or a consumer re-delivering after a restart, is
	// harmless. A record below the partition's newest stored offset may be
	// dropped (it will read as a hole, filled from a lower tier).
	Append(ctx context.Context, recs []*Record) error
	// Read returns up to lim records of partition p with offset > after, in
	// offset order. covered is false when records between after and the
	// first returned one (by its Prev) are not held by this store; with no
	// record returned, covered is true (nothing newer is held).
	Read(ctx context.Context, p int32, after int64, lim Limit) (recs []*Record, covered bool, err error)
	// Bounds returns the oldest and newest offsets held for p.
	Bounds(ctx context.Context, p int32) (oldest, newest int64, ok bool, err error)
	// ThreadRefs returns, in ascending sequence order, up to max references
	// to records holding an event of thread with a sequence > after.
	ThreadRefs(ctx context.Context, thread string, after uint64, limit int) ([]Ref, error)
	// Clear drops everything this store holds (admin operation).
	Clear(ctx context.Context) error
}

// Ref points at a stored record from the thread index.
type Ref struct {
	Sequence  uint64
	Partition int32
	Offset    int64
}
