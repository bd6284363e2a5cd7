package bench

import (
	"context"
	"testing"
	"time"
)

// TestRunSSE: SSE clients, unfiltered and each filtered to one thread,
// receive every record once through /sse and are accounted like
// WebSocket clients.
func TestRunSSE(t *testing.T) {
	tg := startGateway(t, 4)
	for _, filtered := range []bool{false, true} {
		cfg := Config{Clients: 12, Rate: 200, Size: 256, Duration: 2 * time.Second, SSE: true,
			Warmup: 300 * time.Millisecond, Grace: 5 * time.Second}
		if filtered {
			cfg.Threads, cfg.FilterPerClient = 6, true
		}
		res, err := Run(context.Background(), cfg, tg)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("filtered %v: %+v latency %+v", filtered, *res, res.LatencyMs)
		if res.Lost != 0 || res.Duplicated != 0 || res.OutOfOrder != 0 || res.Foreign != 0 || res.ClientErrors != 0 || res.ProduceErrors != 0 {
			t.Fatalf("inexact SSE delivery: %+v", *res)
		}
		if !res.SSE || res.Produced < 400 || res.DeliveredTotal == 0 {
			t.Fatalf("nothing measured: %+v", *res)
		}
		if want := int64(cfg.Clients) * int64(res.RateProduced*res.DurationS); !filtered && res.DeliveredTotal != want {
			t.Fatalf("delivered %d, want %d", res.DeliveredTotal, want)
		}
	}
}

func TestParseSSERecord(t *testing.T) {
	r, ok := parseSSERecord([]byte(`{"type":"record","partition":3,"offset":"9007199254740993","value":"AAH/"}`), nil)
	if !ok || r.Partition != 3 || r.Offset != 9007199254740993 || string(r.Value) != "\x00\x01\xff" {
		t.Fatalf("%+v %v", r, ok)
	}
	for _, bad := range []string{`{}`, `{"type":"record","partition":x,"offset":"1","value":""}`,
		`{"type":"record","partition":1,"offset":"1","value":"!!"}`, `{"type":"record","partition":1,"offset":"1"}`} {
		if _, ok := parseSSERecord([]byte(bad), nil); ok {
			t.Errorf("%s parsed", bad)
		}
	}
	if got := sseCursor(map[int32]int64{2: 7, 0: -1}); got != "c1~~0:-1,2:7" {
		t.Fatalf("cursor %q", got)
	}
}
