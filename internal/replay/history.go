package replay

import (
	"context"
	"fmt"
	"slices"
)

// ThreadRecord is one record of a thread's history.
type ThreadRecord struct {
	Record *Record
	// Sequences are the thread's sequences the record carries, ascending
	// (one, or several for an EventBatch with several of its events).
	Sequences []uint64
}

// History is one page of a thread's records in sequence order.
type History struct {
	Records []ThreadRecord
	// Next is the sequence to read after for the next page (the highest
	// sequence this page covered); More reports that references beyond it
	// exist. Next is the page's 'after' when nothing was covered.
	Next uint64
	More bool
}

// historyPageBytes bounds the bytes of one partition read of a history page.
const historyPageBytes = 8 << 20

// ThreadHistory returns up to limit records of thread holding an event with
// a sequence > after, in sequence order, from every tier: the references
// come from the thread indexes of memory and Redis (the Redis index keeps a
// thread's newest REDIS_MAX_SEQUENCES references, under the key TTL), the
// records from the partition logs through Page (memory, then Redis, then a
// Kafka deep read). A referenced record no tier holds any more (older than
// Kafka's retention) is left out. An error wraps ErrUnavailable when Redis
// or Kafka cannot answer: a page must not silently lose the part they hold.
func (t *Tiers) ThreadHistory(ctx context.Context, thread string, after uint64, limit int) (History, error) {
	limit = max(limit, 1)
	refs, err := t.threadRefs(ctx, thread, after, limit+1)
	if err != nil {
		return History{}, err
	}
	h := History{Next: after}
	used := refsForRecords(refs, limit)
	h.More = used < len(refs)
	if used == 0 {
		return h, nil
	}
	recs, err := t.fetchRefs(ctx, refs[:used])
	if err != nil {
		return History{}, err
	}
	byPos := map[Ref]int{} // (partition, offset) → index in h.Records
	for _, ref := range refs[:used] {
		h.Next = max(h.Next, ref.Sequence)
		pos := Ref{Partition: ref.Partition, Offset: ref.Offset}
		r := recs[pos]
		if r == nil {
			continue // gone from every tier
		}
		if i, ok := byPos[pos]; ok {
			h.Records[i].Sequences = append(h.Records[i].Sequences, ref.Sequence)
			continue
		}
		byPos[pos] = len(h.Records)
		h.Records = append(h.Records, ThreadRecord{Record: r, Sequences: []uint64{ref.Sequence}})
	}
	return h, nil
}

// threadRefs merges the references of memory and Redis (sorted, each once),
// at most limit of them.
func (t *Tiers) threadRefs(ctx context.Context, thread string, after uint64, limit int) ([]Ref, error) {
	refs, _ := t.memory.ThreadRefs(ctx, thread, after, limit) // never fails
	if r := t.redisStore(); r != nil {
		more, err := r.ThreadRefs(ctx, thread, after, limit)
		if err != nil {
			return nil, fmt.Errorf("replay: thread history: %w: %w", ErrUnavailable, err)
		}
		refs = append(refs, more...)
		slices.SortFunc(refs, compareRefs)
		refs = slices.Compact(refs)
	}
	return refs[:min(len(refs), limit)], nil
}

// refsForRecords is how many of refs (sorted by sequence) make up at most
// limit distinct records.
func refsForRecords(refs []Ref, limit int) int {
	seen := map[Ref]bool{}
	for i, ref := range refs {
		pos := Ref{Partition: ref.Partition, Offset: ref.Offset}
		if !seen[pos] && len(seen) == limit {
			return i
		}
		seen[pos] = true
	}
	return len(refs)
}

// fetchRefs reads the records refs point at, by partition in offset order:
// one Page per run of offsets, so a thread's records that lie close
// together (the usual case) cost one read. Records no tier holds are
// missing from the answer.
func (t *Tiers) fetchRefs(ctx context.Context, refs []Ref) (map[Ref]*Record, error) {
	want := map[int32][]int64{}
	for _, ref := range refs {
		want[ref.Partition] = append(want[ref.Partition], ref.Offset)
	}
	out := make(map[Ref]*Record, len(refs))
	for p, offsets := range want {
		slices.Sort(offsets)
		offsets = slices.Compact(offsets)
		if err := t.fetchOffsets(ctx, p, offsets, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fetchOffsets reads the records of p at offsets (ascending) into out.
func (t *Tiers) fetchOffsets(ctx context.Context, p int32, offsets []int64, out map[Ref]*Record) error {
	for i := 0; i < len(offsets); {
		o := offsets[i]
		page, err := t.Page(ctx, p, o-1, Limit{Records: runSpan(offsets[i:]), Bytes: historyPageBytes}, nil)
		if err != nil {
			return fmt.Errorf("replay: thread history p%d at %d: %w", p, o, err)
		}
		reached := o // the page answers up to here: a gap, or its last record
		if page.Gap != nil {
			reached = max(reached, page.Gap.To)
		}
		for _, r := range page.Records {
			out[Ref{Partition: p, Offset: r.Offset}] = r
			reached = max(reached, r.Offset)
		}
		for i < len(offsets) && offsets[i] <= reached {
			i++ // held (in out) or gone (in the gap, or an offset Kafka skipped)
		}
	}
	return nil
}

// runSpan is how many records to read from offsets[0] to reach the end of
// its run: the following offsets that lie close together (a thread's
// records interleaved with a few others'). A lone offset is one record, so
// a sparse thread costs a read per record, not a scan of the partition.
func runSpan(offsets []int64) int {
	end := 0
	for end+1 < len(offsets) && offsets[end+1]-offsets[end] <= 4 && offsets[end+1]-offsets[0] < 1000 {
		end++
	}
	return int(offsets[end]-offsets[0]) + 1
}
