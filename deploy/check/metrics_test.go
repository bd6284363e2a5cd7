package check

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"sigs.k8s.io/yaml"
)

const (
	dashboardFile = "../grafana/dashstream.json"
	rulesFile     = "../prometheus/dashstream-rules.yaml"
)

// notFromGateway and needsAnEvent are the referenced metrics the running
// gateway of TestReferencedMetricsExported cannot show, each with the reason.
// Everything else the dashboard and the rules name must be on /metrics.
var (
	notFromGateway = map[string]string{
		"kube_pod_status_ready": "exported by kube-state-metrics, not by the gateway",
	}
	needsAnEvent = map[string]string{
		"websocket_dlq_send_failures_total":     "only after a dead-letter write fails; the embedded broker accepts every write",
		"websocket_client_lag_events_total":     "only after a client falls SLOW_CLIENT_DISCONNECT_THRESHOLD records behind",
		"websocket_replay_gaps_total":           "only when a cursor points at records no tier holds any more; the embedded broker deletes nothing",
		"dashstream_websocket_redis_latency_ms": "only after Redis operations; the check runs without Redis",
	}
)

// referencedMetrics maps every metric name in the dashboard and the rules to
// the first place it is used.
func referencedMetrics(t *testing.T) map[string]string {
	t.Helper()
	refs := map[string]string{}
	add := func(where, expr string) {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric in %q", where, expr)
		}
		for _, n := range names {
			if _, ok := refs[n]; !ok {
				refs[n] = where
			}
		}
	}

	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	labelValues := regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)
	walkJSON(dash, func(key, value string) {
		switch key {
		case "expr":
			add(dashboardFile, value)
		case "query", "definition":
			for _, m := range labelValues.FindAllStringSubmatch(value, -1) {
				add(dashboardFile+" variable", m[1])
			}
		}
	})

	b, err = os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert  string `json:"alert"`
				Record string `json:"record"`
				Expr   string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			add(rulesFile+" "+r.Alert+r.Record, r.Expr)
		}
	}
	return refs
}

// walkJSON calls fn for every string value in v with its key.
func walkJSON(v any, fn func(key, value string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok {
				fn(k, s)
			} else {
				walkJSON(e, fn)
			}
		}
	case []any:
		for _, e := range v {
			walkJSON(e, fn)
		}
	}
}

func TestDashboardAndRulesReferenceMetrics(t *testing.T) {
	refs := referencedMetrics(t)
	for _, want := range []string{"websocket_kafka_consumer_lag", "websocket_e2e_latency_ms_bucket", "websocket_connected_clients",
		"websocket_slow_client_disconnects_total", "websocket_replay_tier_hits_total", "websocket_dlq_sends_total",
		"replay_buffer_redis_write_dropped_total", "websocket_kafka_messages_total"} {
		if _, ok := refs[want]; !ok {
			t.Errorf("%s is not on the dashboard or in the rules", want)
		}
	}
	used := map[string]bool{}
	for name := range refs {
		if family, ok := exception(name); ok {
			used[family] = true
		}
	}
	for name := range needsAnEvent {
		if !used[name] {
			t.Errorf("exception %s is no longer referenced: drop it", name)
		}
	}
}

// TestReferencedMetricsExported runs `dashstream demo` (the gateway, its
// embedded broker and a synthetic workload), adds an undecodable record (dead
// letter) and two tail runs (a resume from a cursor file), and scrapes
// /metrics until every referenced metric family is there.
func TestReferencedMetricsExported(t *testing.T) {
	bin := os.Getenv("DASHSTREAM_BIN")
	if bin == "" {
		t.Skip("DASHSTREAM_BIN is not set: run scripts/deploy-check.sh, or set it to a dashstream binary")
	}
	refs := referencedMetrics(t)
	g := startGateway(t, bin, "demo")

	produceUndecodable(t, g.kafkaAddr)
	cursor := filepath.Join(t.TempDir(), "cursor.json")
	for i := range 2 {
		out, err := exec.Command(bin, "tail", "--url", "ws://"+g.httpAddr+"/ws", "--from", "earliest",
			"--cursor-file", cursor, "--save-every", "1", "--max", "5", "--timeout", "20s").CombinedOutput()
		if err != nil {
			t.Fatalf("tail run %d: %v\n%s", i+1, err, out)
		}
	}

	var missing []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		families := scrapeFamilies(t, "http://"+g.httpAddr+"/metrics")
		missing = missing[:0]
		for name := range refs {
			if _, excepted := exception(name); !excepted && !exported(families, name) {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	sort.Strings(missing)
	for _, name := range missing {
		t.Errorf("%s (used in %s) is not exported by the running gateway", name, refs[name])
	}
	for name, why := range needsAnEvent {
		t.Logf("not checked: %s: %s", name, why)
	}
}

// exception returns the family of name (name itself, or without a histogram
// suffix) when it is listed in notFromGateway or needsAnEvent.
func exception(name string) (string, bool) {
	for _, family := range []string{name, strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")} {
		if notFromGateway[family] != "" || needsAnEvent[family] != "" {
			return family, true
		}
	}
	return "", false
}

// exported reports whether name is a family on /metrics, or a series of a
// histogram or summary family (_bucket, _sum, _count).
func exported(families map[string]string, name string) bool {
	if _, ok := families[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if typ := families[base]; ok && (typ == "histogram" || typ == "summary") {
			return true
		}
	}
	return false
}

// scrapeFamilies returns the families of a text-format scrape with their
// types, from the "# TYPE name type" lines (the client library writes one per
// family that has at least one series).
func scrapeFamilies(t *testing.T, url string) map[string]string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	families := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			families[f[2]] = f[3]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return families
}

type gateway struct {
	httpAddr, kafkaAddr string
}

// startGateway runs `bin cmd` on free loopback ports with the embedded broker
// and waits for /readyz; the process is stopped with SIGTERM at cleanup and
// must exit 0.
func startGateway(t *testing.T, bin, cmd string) gateway {
	t.Helper()
	g := gateway{httpAddr: freeAddr(t), kafkaAddr: freeAddr(t)}
	_, httpPort, _ := net.SplitHostPort(g.httpAddr)
	c := exec.Command(bin, cmd)
	c.Env = append(cleanEnv(), "WEBSOCKET_HOST=127.0.0.1", "WEBSOCKET_PORT="+httpPort, "EMBEDDED_KAFKA_ADDR="+g.kafkaAddr,
		"KAFKA_LAG_CHECK_INTERVAL_SECS=1", "EXPECTED_SCHEMAS_PATH="+filepath.Join(t.TempDir(), "schemas.json"))
	logFile, err := os.Create(filepath.Join(t.TempDir(), "gateway.log"))
	if err != nil {
		t.Fatal(err)
	}
	c.Stdout, c.Stderr = logFile, logFile
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	t.Cleanup(func() {
		_ = c.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gateway exit: %v\n%s", err, readFile(logFile.Name()))
			}
		case <-time.After(30 * time.Second):
			_ = c.Process.Kill()
			t.Errorf("gateway did not stop within 30 s of SIGTERM\n%s", readFile(logFile.Name()))
		}
	})
	if err := waitHTTP("http://"+g.httpAddr+"/readyz", 60*time.Second, done); err != nil {
		t.Fatalf("gateway not ready: %v\n%s", err, readFile(logFile.Name()))
	}
	return g
}

// cleanEnv is this process's environment without the settings that would
// point the gateway at real services (make test exports them).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "KAFKA_") || strings.HasPrefix(name, "REDIS_") || strings.HasPrefix(name, "WEBSOCKET_") ||
			name == "INTERNAL_ADDR" || name == "INSTANCE_ID" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func waitHTTP(url string, timeout time.Duration, exited <-chan error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("exited early: %v", err)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s after %s: %v", url, timeout, last)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// produceUndecodable writes a value that is no DashStream record: the gateway
// dead-letters it (websocket_dlq_sends_total) and counts the decode error.
func produceUndecodable(t *testing.T, addr string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := &kgo.Record{Topic: "dashstream-quality", Value: []byte("this is not a DashStream record")}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}
