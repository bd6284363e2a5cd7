package kafka

import (
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dashflow/dashstream-gateway/internal/metrics"
)

func newTestTracker(limit int) (*sequenceTracker, *metrics.Metrics) {
	m := metrics.New(nil)
	return newSequenceTracker(limit, seqCounters{
		gaps: m.SequenceGaps, duplicates: m.SequenceDuplicates, reorders: m.SequenceReorders, gapSize: m.SequenceGapSize,
	}), m
}

func TestSequenceTracker(t *testing.T) {
	type obs struct {
		thread string
		seq    uint64
		want   seqOutcome
	}
	const maxU64 = ^uint64(0)
	tests := []struct {
		name                 string
		obs                  []obs
		gaps, dups, reorders float64
	}{
		{"in order", []obs{{"a", 1, seqFirst}, {"a", 2, seqInOrder}, {"a", 3, seqInOrder}}, 0, 0, 0},
		{"zero ignored", []obs{{"a", 0, seqIgnored}, {"a", 5, seqFirst}, {"a", 0, seqIgnored}, {"a", 6, seqInOrder}}, 0, 0, 0},
		{"duplicate", []obs{{"a", 1, seqFirst}, {"a", 1, seqDuplicate}, {"a", 2, seqInOrder}}, 0, 1, 0},
		{"gap then late arrival", []obs{{"a", 1, seqFirst}, {"a", 4, seqGap}, {"a", 2, seqReorder}, {"a", 5, seqInOrder}}, 1, 0, 1},
		{"threads independent", []obs{{"a", 21, seqFirst}, {"b", 7, seqFirst}, {"a", 22, seqInOrder}, {"b", 8, seqInOrder}}, 0, 0, 0},
		{"first sighting mid-stream is no gap", []obs{{"a", 1000, seqFirst}}, 0, 0, 0},
		{"max uint64", []obs{{"a", maxU64 - 1, seqFirst}, {"a", maxU64, seqInOrder}, {"a", maxU64, seqDuplicate}, {"a", 1, seqReorder}}, 0, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, m := newTestTracker(10)
			for i, o := range tc.obs {
				if got := tr.observe(o.thread, o.seq); got != o.want {
					t.Fatalf("observation %d (%s,%d) = %d, want %d", i, o.thread, o.seq, got, o.want)
				}
			}
			got := [3]float64{testutil.ToFloat64(m.SequenceGaps), testutil.ToFloat64(m.SequenceDuplicates), testutil.ToFloat64(m.SequenceReorders)}
			if got != [3]float64{tc.gaps, tc.dups, tc.reorders} {
				t.Fatalf("gaps/dups/reorders = %v, want %v", got, [3]float64{tc.gaps, tc.dups, tc.reorders})
			}
		})
	}
}

// observations records what a tracker observes into its gap histogram.
type observations []float64

func (o *observations) Observe(v float64) { *o = append(*o, v) }

func TestSequenceGapSize(t *testing.T) {
	m := metrics.New(nil)
	var sizes observations
	tr := newSequenceTracker(10, seqCounters{
		gaps: m.SequenceGaps, duplicates: m.SequenceDuplicates, reorders: m.SequenceReorders, gapSize: &sizes,
	})
	tr.observe("a", 1)
	tr.observe("a", 11) // 2..10 missing
	tr.observe("a", 13) // 12 missing
	if len(sizes) != 2 || sizes[0] != 9 || sizes[1] != 1 {
		t.Fatalf("gap sizes %v, want [9 1]", sizes)
	}
}

func TestSequenceTrackerLRUBound(t *testing.T) {
	tr, _ := newTestTracker(3)
	for _, th := range []string{"a", "b", "c"} {
		tr.observe(th, 1)
	}
	tr.observe("a", 2) // a is now the most recent; b the least
	tr.observe("d", 1) // evicts b
	if tr.len() != 3 {
		t.Fatalf("%d threads tracked, bound 3", tr.len())
	}
	for th, want := range map[string]seqOutcome{"a": seqInOrder, "c": seqInOrder, "d": seqInOrder} {
		seq := uint64(2)
		if th == "a" {
			seq = 3
		}
		if got := tr.observe(th, seq); got != want {
			t.Fatalf("kept thread %s seen as %d, want %d", th, got, want)
		}
	}
	if got := tr.observe("b", 2); got != seqFirst {
		t.Fatalf("evicted thread seen as %d, want first", got)
	}
	for i := range 1000 {
		tr.observe("x"+strconv.Itoa(i), 1)
	}
	if tr.len() != 3 || len(tr.nodes) != 3 {
		t.Fatalf("tracker grew to %d threads, %d nodes", tr.len(), len(tr.nodes))
	}
}

func TestSequenceTrackerHitDoesNotAllocate(t *testing.T) {
	tr, _ := newTestTracker(100)
	tr.observe("thread-a", 1)
	tr.observe("thread-b", 1)
	seq := uint64(1)
	allocs := testing.AllocsPerRun(1000, func() {
		seq++
		tr.observe("thread-a", seq)
		tr.observe("thread-b", seq)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per observation", allocs)
	}
}

func BenchmarkSequenceTracker(b *testing.B) {
	tr, _ := newTestTracker(DefaultSequenceTrackerSize)
	threads := make([]string, 1000)
	for i := range threads {
		threads[i] = "thread-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tr.observe(threads[i%len(threads)], uint64(i/len(threads)+1))
	}
}
