package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat
// (100 on every Linux the gateway supports).
const clockTicks = 100

// cpuSeconds reads the user plus system CPU time of pid from /proc; false
// when unavailable.
func cpuSeconds(pid int) (float64, bool) {
	if pid <= 0 {
		return 0, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	return parseStatCPU(b)
}

// parseStatCPU reads fields 14 (utime) and 15 (stime) of a /proc/<pid>/stat
// line; the command name (field 2) may hold spaces and parentheses, so the
// fields are counted after its last ')'.
func parseStatCPU(b []byte) (float64, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return float64(ut+st) / clockTicks, true
}

// metricsURL is the /metrics endpoint beside a ws://host:port/ws URL.
func metricsURL(ws string) (string, error) {
	u, err := url.Parse(ws)
	if err != nil {
		return "", fmt.Errorf("bench: url %q: %w", ws, err)
	}
	u.Scheme = strings.Replace(u.Scheme, "ws", "http", 1)
	u.Path, u.RawQuery = "/metrics", ""
	return u.String(), nil
}

// scrapeTimeout bounds one scrape of the gateway's /metrics.
const scrapeTimeout = 5 * time.Second

// scrapeClient is the bench's own HTTP client for /metrics: no proxy from
// the environment, no connection kept between the two readings of a
// window, no compression.
var scrapeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}

// scrapeCounter reads one unlabelled counter from a Prometheus text
// exposition, and when the reply came.
func scrapeCounter(ctx context.Context, endpoint, name string) (float64, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("bench: scrape %s: %w", endpoint, err)
	}
	resp, err := scrapeClient.Do(req)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("bench: scrape %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	at := time.Now()
	if resp.StatusCode != http.StatusOK {
		return 0, at, fmt.Errorf("bench: scrape %s: %s", endpoint, resp.Status)
	}
	v, ok := findCounter(resp.Body, name)
	if !ok {
		return 0, at, fmt.Errorf("bench: scrape %s: no counter %s", endpoint, name)
	}
	return v, at, nil
}

// findCounter scans an exposition for "name value".
func findCounter(r io.Reader, name string) (float64, bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || !strings.HasPrefix(rest, " ") {
			continue
		}
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[0], 64)
		return v, err == nil
	}
	return 0, false
}

// gauges are the readings at one instant: the gateway's CPU and JSON
// encodes, and this process's CPU (the load generator's, when the gateway
// runs apart).
type gauges struct {
	cpu, loadCPU, jsonEncodes      float64
	cpuOK, loadCPUOK, jsonEncodeOK bool
	encodesAt                      time.Time // when the scrape's reply came
	scrapeErr                      error     // why jsonEncodes is missing
}

// scrapeAttempts is how often a failed scrape is tried again: a gateway
// under full load may miss one; the rate is taken over the instants the
// replies came, so a late reading is still exact.
const scrapeAttempts = 3

func readGauges(ctx context.Context, t Target, metrics string) gauges {
	var g gauges
	g.cpu, g.cpuOK = cpuSeconds(t.PID)
	if !t.InProcess {
		g.loadCPU, g.loadCPUOK = cpuSeconds(os.Getpid())
	}
	if metrics == "" {
		return g
	}
	for range scrapeAttempts {
		g.jsonEncodes, g.encodesAt, g.scrapeErr = scrapeCounter(ctx, metrics, "websocket_json_encodes_total")
		if g.scrapeErr == nil || ctx.Err() != nil {
			break
		}
	}
	g.jsonEncodeOK = g.scrapeErr == nil
	return g
}

// windowGauges reads the gauges at the start and at the end of the
// measured window; the result arrives on the channel after the window.
func windowGauges(ctx context.Context, t Target, from, to time.Time) <-chan [2]gauges {
	out := make(chan [2]gauges, 1)
	metrics, err := metricsURL(t.URL)
	if err != nil {
		metrics = ""
	}
	go func() {
		var g [2]gauges
		for i, at := range []time.Time{from, to} {
			select {
			case <-ctx.Done():
				out <- g
				return
			case <-time.After(time.Until(at)):
			}
			g[i] = readGauges(ctx, t, metrics)
		}
		out <- g
	}()
	return out
}

// setGauges fills the CPU and JSON encode figures of the window.
func (r *Result) setGauges(g [2]gauges, inProcess bool) {
	if g[0].cpuOK && g[1].cpuOK && r.DurationS > 0 {
		cores := (g[1].cpu - g[0].cpu) / r.DurationS
		r.GatewayCPUCores = &cores
		r.CPUIncludesLoad = inProcess
		if r.DeliveredTotal > 0 {
			us := (g[1].cpu - g[0].cpu) * 1e6 / float64(r.DeliveredTotal)
			r.CPUMicrosPerDelivery = &us
		}
	}
	if g[0].loadCPUOK && g[1].loadCPUOK && r.DurationS > 0 {
		cores := (g[1].loadCPU - g[0].loadCPU) / r.DurationS
		r.LoadCPUCores = &cores
	}
	span := g[1].encodesAt.Sub(g[0].encodesAt).Seconds()
	switch {
	case g[0].jsonEncodeOK && g[1].jsonEncodeOK && span > 0:
		eps := (g[1].jsonEncodes - g[0].jsonEncodes) / span
		r.JSONEncodesPerSec = &eps
	case g[0].scrapeErr != nil:
		r.JSONEncodesError = g[0].scrapeErr.Error()
	case g[1].scrapeErr != nil:
		r.JSONEncodesError = g[1].scrapeErr.Error()
	}
}
