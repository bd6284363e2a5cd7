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

// TestRunFilteredTypes: every client is filtered to checkpoints, over v1,
// v2 and v2 JSON, with the gateway's indexes and scanning, and receives
// exactly the checkpoints produced: none lost, none twice, no other type.
func TestRunFilteredTypes(t *testing.T) {
	for _, scan := range []bool{false, true} {
		tg := startGatewayWith(t, 3, scan)
		for _, mode := range []struct {
			v2     bool
			format string
		}{{false, ""}, {true, ""}, {true, "json"}} {
			cfg := Config{Clients: 8, Rate: 300, Size: 128, Duration: time.Second, Warmup: 200 * time.Millisecond,
				Grace: 5 * time.Second, Threads: 6, FilterTypes: []string{"checkpoint"}, FullStateEvery: 10,
				V2: mode.v2, Format: mode.format}
			res, err := Run(context.Background(), cfg, tg)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("scan %v %+v: %+v", scan, mode, *res)
			if res.Lost != 0 || res.Duplicated != 0 || res.Foreign != 0 || res.OutOfOrder != 0 || res.ClientErrors != 0 || res.Produced < 250 {
				t.Fatalf("scan %v %+v: inexact types-filtered delivery: %+v", scan, mode, *res)
			}
			// A tenth of the records are checkpoints.
			if all := int64(cfg.Clients) * int64(res.RateProduced*res.DurationS); res.DeliveredTotal == 0 || res.DeliveredTotal*5 > all || res.DeliveredTotal*20 < all {
				t.Fatalf("scan %v %+v: delivered %d of %d unfiltered deliveries: not the checkpoints' share", scan, mode, res.DeliveredTotal, all)
			}
			if res.FullStateEvery != 10 || len(res.FilterTypes) != 1 {
				t.Fatalf("result %+v", *res)
			}
		}
	}
}
