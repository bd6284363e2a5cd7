package client

import (
	"testing"
	"time"
)

// TestBackoff: each delay lies in the upper half of its step, the steps
// double from MinBackoff and stop at MaxBackoff.
func TestBackoff(t *testing.T) {
	o := Options{MinBackoff: 100 * time.Millisecond, MaxBackoff: 3 * time.Second}
	for n := range 40 {
		step := min(100*time.Millisecond<<min(n, 20), 3*time.Second)
		lo, hi := o.backoff(n, func() float64 { return 0 }), o.backoff(n, func() float64 { return 0.999999 })
		if lo != step/2 || hi > step || hi < step-step/1000 {
			t.Fatalf("attempt %d: delays %s..%s, want %s..%s", n, lo, hi, step/2, step)
		}
	}
	var zero Options
	if d := zero.backoff(0, func() float64 { return 1 }); d != 250*time.Millisecond {
		t.Fatalf("default first step %s", d)
	}
	if d := zero.backoff(100, func() float64 { return 1 }); d != 10*time.Second {
		t.Fatalf("default cap %s", d)
	}
}
