package hub

import (
	"os"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// TestIdleFootprintReport reports the goroutine stack memory of idle
// sessions (the clients here run no goroutines, so the growth is the
// server's). Set DASHSTREAM_REPORT=1; not meaningful under -race.
func TestIdleFootprintReport(t *testing.T) {
	if os.Getenv("DASHSTREAM_REPORT") == "" {
		t.Skip("DASHSTREAM_REPORT not set")
	}
	const n = 1000
	th := newTestHub(t, Config{}, replay.MemoryConfig{})
	th.publish(0, 0, 10)
	stack := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.StackInuse
	}
	before := stack()
	g0 := runtime.NumGoroutine()
	for range n {
		c := th.dialRaw(t, 0)
		c.writeJSON(map[string]any{"type": "resume", "from": "latest"})
		c.readJSON("replay_complete")
	}
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine()-g0 > n && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond) // idle writers park after a sweep or two
	}
	after := stack()
	sample := []metrics.Sample{{Name: "/gc/stack/starting-size:bytes"}}
	metrics.Read(sample)
	t.Logf("starting stack size %d", sample[0].Value.Uint64())
	t.Logf("%d idle sessions: %d goroutines each, %.0f B of stack each",
		n, (runtime.NumGoroutine()-g0)/n, float64(after-before)/n)
}
