package replay_test

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/replay/replaytest"
)

// TestMemoryConformance runs the shared suite against the memory tier.
// Memory does not implement replay.Store yet (its Append returns a count and
// it has no thread index), so memoryStore adapts it; once it does, pass
// replay.NewMemory directly and delete the adapter.
func TestMemoryConformance(t *testing.T) {
	replaytest.Run(t, func(t *testing.T) replay.Store {
		return &memoryStore{m: replay.NewMemory(replay.MemoryConfig{PerPartition: 64}), parts: map[int32]bool{}}
	}, replaytest.Options{PerPartition: 64})
}

// memoryStore is replay.Memory behind the Store interface, with a thread
// index computed by scanning what memory holds.
type memoryStore struct {
	m     *replay.Memory
	mu    sync.Mutex
	parts map[int32]bool // partitions ever appended to
}

func (s *memoryStore) Append(_ context.Context, recs []*replay.Record) error {
	s.m.Append(recs)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		s.parts[r.Partition] = true
	}
	return nil
}

func (s *memoryStore) Read(_ context.Context, p int32, after int64, lim replay.Limit) ([]*replay.Record, bool, error) {
	recs, covered := s.m.Read(p, after, lim.Records, lim.Bytes)
	return recs, covered, nil
}

func (s *memoryStore) Bounds(_ context.Context, p int32) (int64, int64, bool, error) {
	o, n, ok := s.m.Bounds(p)
	return o, n, ok, nil
}

func (s *memoryStore) ThreadRefs(_ context.Context, thread string, after uint64, limit int) ([]replay.Ref, error) {
	var refs []replay.Ref
	for _, p := range s.partitions() {
		for off := int64(-1); ; {
			recs, _ := s.m.Read(p, off, math.MaxInt, math.MaxInt)
			if len(recs) == 0 {
				break
			}
			for _, r := range recs {
				refs = appendRefs(refs, r, thread, after)
			}
			off = recs[len(recs)-1].Offset
		}
	}
	slices.SortFunc(refs, func(a, b replay.Ref) int {
		return cmp.Or(cmp.Compare(a.Sequence, b.Sequence), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return refs[:min(len(refs), limit)], nil
}

func appendRefs(refs []replay.Ref, r *replay.Record, thread string, after uint64) []replay.Ref {
	for _, ts := range r.Threads {
		if ts.Thread == thread && ts.Sequence > after {
			refs = append(refs, replay.Ref{Sequence: ts.Sequence, Partition: r.Partition, Offset: r.Offset})
		}
	}
	return refs
}

func (s *memoryStore) partitions() []int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ps []int32
	for p := range s.parts {
		ps = append(ps, p)
	}
	return ps
}

func (s *memoryStore) Clear(context.Context) error {
	s.m.Clear()
	return nil
}
