package bench

import (
	"context"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// countingSink reads the floor's connections in this process and counts
// the bytes that arrive.
func countingSink(t *testing.T, got *atomic.Int64) func(context.Context, string, int) (func(), error) {
	return func(ctx context.Context, addr string, n int) (func(), error) {
		var wg sync.WaitGroup
		var conns []net.Conn
		for range n {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Errorf("dial: %v", err)
				break
			}
			conns = append(conns, c)
			wg.Go(func() {
				k, _ := io.Copy(io.Discard, c)
				got.Add(k)
			})
		}
		return func() {
			for _, c := range conns {
				c.Close()
			}
			wg.Wait()
		}, nil
	}
}

func TestFloorWritesWhatItCounts(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("per-thread CPU accounting is Linux's")
	}
	for _, tc := range []struct {
		name     string
		cfg      FloorConfig
		perSec   float64 // deliveries per second the load implies
		frameLen int
	}{
		{"v1 unfiltered", FloorConfig{Clients: 20, Rate: 400, Size: 100}, 20 * 400,
			len(mustFrames(100))},
		{"v2 filtered", FloorConfig{Clients: 40, Rate: 400, Size: 100, Threads: 10, FilterPerClient: true, V2: true}, 400 * 40 / 10,
			wsproto.RecordV2HeaderSize + 2 + 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got atomic.Int64
			cfg := tc.cfg
			cfg.Duration, cfg.Warmup = time.Second, 200*time.Millisecond
			cfg.Sink = countingSink(t, &got)
			res, err := Floor(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			// Rates on a shared machine are loose; the record count is not.
			if res.DeliveriesPerSec < tc.perSec/3 || res.DeliveriesPerSec > tc.perSec*3 {
				t.Errorf("%.0f deliveries/s, the load implies %.0f", res.DeliveriesPerSec, tc.perSec)
			}
			if res.Writes == 0 || res.Writes > res.Deliveries {
				t.Errorf("%d writes for %d deliveries", res.Writes, res.Deliveries)
			}
			if res.WriterCPUCores <= 0 || res.CPUMicrosPerDelivery <= 0 {
				t.Errorf("no CPU measured: %+v", res)
			}
			// Every delivery counted was written in full (the warm-up's
			// writes arrive too, hence at least).
			if want := res.Deliveries * int64(tc.frameLen); got.Load() < want {
				t.Errorf("readers got %d bytes, %d deliveries of %d bytes claimed", got.Load(), res.Deliveries, tc.frameLen)
			}
		})
	}
}

func mustFrames(size int) []byte {
	f, _ := wsproto.RecordFrames(0, 0, make([]byte, size))
	return f
}

func TestFloorRefusesIncompleteShapes(t *testing.T) {
	for _, cfg := range []FloorConfig{
		{Rate: 1, Size: 1, Duration: time.Second},
		{Clients: 1, Rate: 1, Size: 1, Duration: time.Second, FilterPerClient: true},
	} {
		if _, err := Floor(t.Context(), cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

func TestFloorSinkDrainsUntilCancelled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- FloorSink(ctx, ln.Addr().String(), 3) }()
	var server []net.Conn
	for range 3 {
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		server = append(server, c)
	}
	for _, c := range server {
		if _, err := c.Write(make([]byte, 1<<20)); err != nil { // more than socket buffers hold: drained
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	_ = server[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := server[0].Read(buf); err == nil {
		t.Error("the sink left its connection open")
	}
}
