package bench

import (
	"math"
	"math/bits"
)

// Histogram records non-negative integers (microseconds here) in log-linear
// buckets, HDR style: exact below 64, then 64 sub-buckets per power of two,
// so any quantile is within 1/64 (1.6 %) of the true value. Values above
// 2^36 are clamped. It takes 8 KiB whatever the number of samples.
type Histogram struct {
	counts [histBuckets]uint32
	n      uint64
	max    int64
}

const (
	subBits     = 6
	subCount    = 1 << subBits
	histMaxBits = 36
	histBuckets = subCount + (histMaxBits-subBits)*subCount
)

func bucketOf(v int64) int {
	if v < subCount {
		return int(max(v, 0))
	}
	v = min(v, 1<<histMaxBits-1)
	shift := bits.Len64(uint64(v)) - subBits - 1
	return subCount + shift*subCount + int(v>>shift) - subCount
}

// bucketValue is the middle of bucket i.
func bucketValue(i int) float64 {
	if i < subCount {
		return float64(i)
	}
	shift := (i - subCount) / subCount
	lo := int64(i-subCount*shift) << shift
	return float64(lo) + float64(int64(1)<<shift-1)/2
}

// Record adds one value.
func (h *Histogram) Record(v int64) {
	h.counts[bucketOf(v)]++
	h.n++
	h.max = max(h.max, v)
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest recorded value (exact).
func (h *Histogram) Max() int64 { return h.max }

// Merge adds o's values to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Quantile returns the value below which a fraction q of the values lie
// (NaN when empty).
func (h *Histogram) Quantile(q float64) float64 {
	if h.n == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		if seen += uint64(c); seen >= rank {
			return min(bucketValue(i), float64(h.max))
		}
	}
	return float64(h.max)
}
