package bench

import (
	"fmt"
	"io"
)

// Comparison is the same load run with v1 clients, then with v2 clients.
type Comparison struct {
	V1 *Result `json:"v1"`
	V2 *Result `json:"v2"`
	// CPURatio is v2's gateway CPU per delivery over v1's; nil when either
	// was not measured.
	CPURatio *float64 `json:"cpu_per_delivery_ratio_v2_v1,omitempty"`
	// P99Ratio is v2's p99 latency over v1's; nil when v1's is 0.
	P99Ratio *float64 `json:"p99_ratio_v2_v1,omitempty"`
}

// Compare relates two runs of the same load.
func Compare(v1, v2 *Result) *Comparison {
	c := &Comparison{V1: v1, V2: v2}
	if v1.CPUMicrosPerDelivery != nil && v2.CPUMicrosPerDelivery != nil && *v1.CPUMicrosPerDelivery > 0 {
		r := *v2.CPUMicrosPerDelivery / *v1.CPUMicrosPerDelivery
		c.CPURatio = &r
	}
	if v1.LatencyMs.P99 > 0 {
		r := v2.LatencyMs.P99 / v1.LatencyMs.P99
		c.P99Ratio = &r
	}
	return c
}

// WriteText prints both runs and the comparison.
func (c *Comparison) WriteText(w io.Writer) error {
	for _, r := range []*Result{c.V1, c.V2} {
		if err := r.WriteText(w); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "v1 vs v2: cpu per delivery %s µs vs %s µs (v2/v1 %s), p99 %.3f ms vs %.3f ms (v2/v1 %s), lost %d vs %d, duplicated %d vs %d\n",
		optf(c.V1.CPUMicrosPerDelivery, "%.2f"), optf(c.V2.CPUMicrosPerDelivery, "%.2f"), optf(c.CPURatio, "%.2f"),
		c.V1.LatencyMs.P99, c.V2.LatencyMs.P99, optf(c.P99Ratio, "%.2f"),
		c.V1.Lost, c.V2.Lost, c.V1.Duplicated, c.V2.Duplicated)
	return err
}

// optf formats *v, or "n/a" when nil.
func optf(v *float64, format string) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf(format, *v)
}
