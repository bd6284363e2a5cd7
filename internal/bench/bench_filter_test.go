package bench

import (
	"context"
	"testing"
	"time"
)

// TestRunFilteredPerClient: every client follows one thread with a filter,
// over v1 and v2, and receives exactly that thread's records: none lost,
// none twice, none of another thread.
func TestRunFilteredPerClient(t *testing.T) {
	tg := startGateway(t, 3)
	for _, v2 := range []bool{false, true} {
		cfg := Config{Clients: 12, Rate: 200, Size: 128, Duration: time.Second, Warmup: 200 * time.Millisecond,
			Grace: 5 * time.Second, Threads: 5, FilterPerClient: true, V2: v2}
		res, err := Run(context.Background(), cfg, tg)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("v2 %v: %+v", v2, *res)
		if res.Lost != 0 || res.Duplicated != 0 || res.Foreign != 0 || res.OutOfOrder != 0 || res.ClientErrors != 0 || res.Produced < 150 {
			t.Fatalf("v2 %v: inexact filtered delivery: %+v", v2, *res)
		}
		// Each client gets about a fifth of the records: what its thread had
		// in the measured window.
		if all := int64(cfg.Clients) * int64(res.RateProduced*res.DurationS); res.DeliveredTotal*3 > all || res.DeliveredTotal*8 < all {
			t.Fatalf("v2 %v: delivered %d of %d unfiltered deliveries: not one thread's share", v2, res.DeliveredTotal, all)
		}
	}
}
