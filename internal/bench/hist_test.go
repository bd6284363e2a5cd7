package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestHistogramBuckets(t *testing.T) {
	prev := -1
	for v := int64(0); v < 1<<20; v++ {
		b := bucketOf(v)
		if b < prev || b > prev+1 {
			t.Fatalf("bucket(%d) = %d after %d", v, b, prev)
		}
		if mid := bucketValue(b); math.Abs(mid-float64(v)) > float64(v)/64+0.5 {
			t.Fatalf("value %d in bucket %d with middle %v", v, b, mid)
		}
		prev = b
	}
	if b := bucketOf(math.MaxInt64); b != histBuckets-1 {
		t.Fatalf("bucket(max) = %d, want %d", b, histBuckets-1)
	}
	if bucketOf(-5) != 0 {
		t.Fatal("negative values must clamp to 0")
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h, a, b Histogram
	vals := make([]int64, 100000)
	for i := range vals {
		vals[i] = int64(rand.ExpFloat64() * 2000)
		h.Record(vals[i])
		if i%2 == 0 {
			a.Record(vals[i])
		} else {
			b.Record(vals[i])
		}
	}
	a.Merge(&b)
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := float64(vals[int(math.Ceil(q*float64(len(vals))))-1])
		for _, hh := range []*Histogram{&h, &a} {
			if got := hh.Quantile(q); math.Abs(got-exact) > exact/50+1 {
				t.Errorf("q%v = %v, exact %v", q, got, exact)
			}
		}
	}
	if h.Max() != vals[len(vals)-1] || h.Count() != uint64(len(vals)) {
		t.Fatalf("max %d count %d", h.Max(), h.Count())
	}
	var empty Histogram
	if !math.IsNaN(empty.Quantile(0.5)) {
		t.Fatal("empty quantile")
	}
}
