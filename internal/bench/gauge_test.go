package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	line := []byte("4242 (dash stream (x)) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 12 0 100 1000000 500\n")
	if got, ok := parseStatCPU(line); !ok || got != 3.25 {
		t.Fatalf("parseStatCPU = %v %v, want 3.25 (325 ticks)", got, ok)
	}
	for _, bad := range []string{"", "4242 (x) S 1 2", "4242 (x) S 1 2 3 4 5 6 7 8 9 10 ten 12"} {
		if _, ok := parseStatCPU([]byte(bad)); ok {
			t.Errorf("parseStatCPU(%q) accepted", bad)
		}
	}
	if _, ok := cpuSeconds(0); ok {
		t.Error("cpuSeconds(0) measured something")
	}
}

func TestFindCounter(t *testing.T) {
	expo := `# HELP websocket_json_encodes_total_x other
websocket_json_encodes_total_x 7
websocket_json_encodes_total{a="b"} 9
websocket_json_encodes_total 1.5e+06
`
	if got, ok := findCounter(strings.NewReader(expo), "websocket_json_encodes_total"); !ok || got != 1.5e6 {
		t.Fatalf("findCounter = %v %v", got, ok)
	}
	if _, ok := findCounter(strings.NewReader("other 1\n"), "websocket_json_encodes_total"); ok {
		t.Fatal("found a counter that is not there")
	}
	if u, err := metricsURL("ws://127.0.0.1:3002/ws?x=1"); err != nil || u != "http://127.0.0.1:3002/metrics" {
		t.Fatalf("metricsURL = %q %v", u, err)
	}
	if u, _ := metricsURL("wss://localhost:1/ws"); u != "https://localhost:1/metrics" {
		t.Fatalf("metricsURL = %q", u)
	}
}

// TestSetGauges: CPU per delivery and JSON encodes per second are the
// window's differences (the encodes over the instants the scrapes were
// answered); a missing reading leaves them unreported, with the scrape's
// error.
func TestSetGauges(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := &Result{DurationS: 10, DeliveredTotal: 200_000}
	r.setGauges([2]gauges{{cpu: 5, cpuOK: true, loadCPU: 1, loadCPUOK: true, jsonEncodes: 100, jsonEncodeOK: true, encodesAt: t0},
		{cpu: 7, cpuOK: true, loadCPU: 6, loadCPUOK: true, jsonEncodes: 12_100, jsonEncodeOK: true, encodesAt: t0.Add(12 * time.Second)}}, false)
	if r.GatewayCPUCores == nil || *r.GatewayCPUCores != 0.2 || r.CPUMicrosPerDelivery == nil || *r.CPUMicrosPerDelivery != 10 {
		t.Fatalf("cpu %v per delivery %v", r.GatewayCPUCores, r.CPUMicrosPerDelivery)
	}
	if r.LoadCPUCores == nil || *r.LoadCPUCores != 0.5 {
		t.Fatalf("load cpu %v", r.LoadCPUCores)
	}
	if r.JSONEncodesPerSec == nil || *r.JSONEncodesPerSec != 1000 {
		t.Fatalf("json encodes/s %v", r.JSONEncodesPerSec)
	}
	r = &Result{DurationS: 10}
	r.setGauges([2]gauges{{cpu: 5, cpuOK: true, jsonEncodeOK: true, encodesAt: t0},
		{scrapeErr: errors.New("bench: scrape: 503 Service Unavailable")}}, true)
	if r.GatewayCPUCores != nil || r.CPUMicrosPerDelivery != nil || r.JSONEncodesPerSec != nil || r.LoadCPUCores != nil {
		t.Fatalf("reported without readings: %+v", r)
	}
	if !strings.Contains(r.JSONEncodesError, "503") {
		t.Fatalf("scrape error %q", r.JSONEncodesError)
	}
}

// TestScrapeCounter: the counter is read from a real exposition, and a
// failed scrape says why.
func TestScrapeCounter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "# TYPE websocket_json_encodes_total counter\nwebsocket_json_encodes_total 42\n")
	}))
	defer srv.Close()
	before := time.Now()
	v, at, err := scrapeCounter(context.Background(), srv.URL+"/metrics", "websocket_json_encodes_total")
	if err != nil || v != 42 || at.Before(before) {
		t.Fatalf("scrape = %v %v %v", v, at, err)
	}
	if _, _, err := scrapeCounter(context.Background(), srv.URL+"/other", "websocket_json_encodes_total"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("failed scrape: %v", err)
	}
	if _, _, err := scrapeCounter(context.Background(), srv.URL+"/metrics", "absent_total"); err == nil {
		t.Fatal("a missing counter read")
	}
}

// TestReadGaugesRetries: a scrape the gateway fails once (as a gateway
// under full load may) is tried again; one that keeps failing leaves the
// error for the report.
func TestReadGaugesRetries(t *testing.T) {
	var calls, fail atomic.Int32
	fail.Store(1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= fail.Load() {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "websocket_json_encodes_total 7\n")
	}))
	defer srv.Close()
	tg := Target{PID: os.Getpid()}
	g := readGauges(context.Background(), tg, srv.URL+"/metrics")
	if !g.jsonEncodeOK || g.jsonEncodes != 7 || calls.Load() != 2 || !g.cpuOK || !g.loadCPUOK {
		t.Fatalf("after one failure: %+v, %d calls", g, calls.Load())
	}
	calls.Store(0)
	fail.Store(scrapeAttempts)
	g = readGauges(context.Background(), tg, srv.URL+"/metrics")
	if g.jsonEncodeOK || g.scrapeErr == nil || calls.Load() != scrapeAttempts {
		t.Fatalf("always failing: %+v, %d calls", g, calls.Load())
	}
}

func TestCompare(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	v1 := &Result{CPUMicrosPerDelivery: f(10), LatencyMs: Latency{P99: 20}}
	v2 := &Result{V2: true, CPUMicrosPerDelivery: f(7), LatencyMs: Latency{P99: 10}, Lost: 3}
	c := Compare(v1, v2)
	if c.CPURatio == nil || *c.CPURatio != 0.7 || c.P99Ratio == nil || *c.P99Ratio != 0.5 {
		t.Fatalf("ratios %v %v", c.CPURatio, c.P99Ratio)
	}
	var out bytes.Buffer
	if err := c.WriteText(&out); err != nil || !strings.Contains(out.String(), "v2/v1 0.70") || !strings.Contains(out.String(), "lost 0 vs 3") {
		t.Fatalf("%v: %s", err, out.String())
	}
	if c := Compare(&Result{}, v2); c.CPURatio != nil || c.P99Ratio != nil {
		t.Fatalf("ratios without v1 figures: %v %v", c.CPURatio, c.P99Ratio)
	}
}
