package httpserver

import (
	"encoding/json"
	"maps"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/metrics"
)

// specHealth is the /health shape the DashFlow dashboard reads: the example
// of docs/PROTOCOL.md §5 without the healthExtensions below.
const specHealth = `{"status":"healthy",
 "metrics":{"kafka_messages_received":1200,"kafka_errors":0,"infrastructure_errors":0,"connected_clients":3,
  "uptime_seconds":812,"last_kafka_message_ago_seconds":0,"dropped_messages":0,"dropped_messages_last_120s":0,
  "last_drop_ago_seconds":null,"decode_errors":0,"old_data_decode_errors":0,"payload_missing":0,
  "last_infrastructure_error_ago_seconds":null,"decode_errors_last_120s":0,"messages_last_120s":240,
  "send_failed":0,"send_timeout":0,"send_failed_last_120s":0,"send_timeout_last_120s":0},
 "replay_buffer":{"redis_enabled":true,"memory_hits":10,"redis_hits":2,"redis_misses":0,"redis_write_dropped":0,
  "redis_write_failures":0,"memory_buffer_size":1000,"max_memory_size":1000,"redis_message_ttl_secs":3600,
  "redis_max_sequences":10000},
 "kafka_status":"connected","websocket_status":"3_clients_connected"}`

// healthExtensions are the key paths /health carries beyond the example:
// circuit_breaker (always present; without Redis: healthy, not configured)
// and the byte bound of the memory tier.
var healthExtensions = map[string]string{
	".circuit_breaker.state":                "string",
	".circuit_breaker.redis_configured":     "bool",
	".circuit_breaker.consecutive_failures": "number",
	".circuit_breaker.failure_threshold":    "number",
	".circuit_breaker.times_opened":         "number",
	".circuit_breaker.opened_ago_seconds":   "null",
	".circuit_breaker.probe_interval_ms":    "number",
	".replay_buffer.memory_buffer_bytes":    "number",
	".replay_buffer.max_memory_bytes":       "number",
}

// shape maps every key path of a JSON value to its JSON kind.
func shape(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, vv := range x {
			shape(prefix+"."+k, vv, out)
		}
	case float64:
		out[prefix] = "number"
	case string:
		out[prefix] = "string"
	case bool:
		out[prefix] = "bool"
	case nil:
		out[prefix] = "null"
	default:
		out[prefix] = "other"
	}
}

func shapeOf(t *testing.T, data []byte) map[string]string {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	shape("", v, out)
	return out
}

func TestHealthMatchesSpecShape(t *testing.T) {
	f := newFixture(t, nil)
	f.setStatus(Status{KafkaReachable: true, KafkaState: KafkaConnected, Replay: ReplayStatus{
		RedisEnabled: true, MemoryHits: 10, RedisHits: 2, MemoryBufferSize: 1000, MaxMemorySize: 1000,
		RedisMessageTTLSecs: 3600, RedisMaxSequences: 10000,
	}})
	for range 3 {
		f.m.ClientConnected()
	}
	f.m.KafkaMessage()
	w := f.do(t, "GET", "/health", "", nil)
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("code %d type %q", w.Code, w.Header().Get("Content-Type"))
	}
	got, want := shapeOf(t, w.Body.Bytes()), shapeOf(t, []byte(specHealth))
	maps.Copy(want, healthExtensions)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("shape differs:\n got %v\nwant %v", sortedDiff(got, want), sortedDiff(want, got))
	}
	var body map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	if body["status"] != "healthy" || body["websocket_status"] != "3_clients_connected" {
		t.Fatalf("body %s", w.Body)
	}
}

// TestHealthCircuitBreaker: circuit_breaker is always present, with the
// breaker's state and, while Redis is down, how long it has been (a JSON
// number computed from the server's clock); healthy and not configured
// without Redis.
func TestHealthCircuitBreaker(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name    string
		breaker CircuitBreakerStatus
		want    string // the circuit_breaker object, exactly
	}{
		{"no redis", CircuitBreakerStatus{},
			`{"state":"healthy","redis_configured":false,"consecutive_failures":0,"failure_threshold":0,"times_opened":0,"opened_ago_seconds":null,"probe_interval_ms":0}`},
		{"healthy", CircuitBreakerStatus{State: BreakerHealthy, RedisConfigured: true, FailureThreshold: 5, TimesOpened: 2, ProbeIntervalMs: 1000},
			`{"state":"healthy","redis_configured":true,"consecutive_failures":0,"failure_threshold":5,"times_opened":2,"opened_ago_seconds":null,"probe_interval_ms":1000}`},
		{"open", CircuitBreakerStatus{State: BreakerOpen, RedisConfigured: true, ConsecutiveFailures: 7, FailureThreshold: 5,
			TimesOpened: 3, DownSince: now.Add(-42 * time.Second), ProbeIntervalMs: 1000},
			`{"state":"open","redis_configured":true,"consecutive_failures":7,"failure_threshold":5,"times_opened":3,"opened_ago_seconds":42,"probe_interval_ms":1000}`},
		{"half open at start", CircuitBreakerStatus{State: BreakerHalfOpen, RedisConfigured: true, FailureThreshold: 5,
			DownSince: now.Add(-1500 * time.Millisecond), ProbeIntervalMs: 1000},
			`{"state":"half_open","redis_configured":true,"consecutive_failures":0,"failure_threshold":5,"times_opened":0,"opened_ago_seconds":1,"probe_interval_ms":1000}`},
		{"clock behind down time", CircuitBreakerStatus{State: BreakerOpen, RedisConfigured: true, DownSince: now.Add(time.Second)},
			`{"state":"open","redis_configured":true,"consecutive_failures":0,"failure_threshold":0,"times_opened":0,"opened_ago_seconds":0,"probe_interval_ms":0}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(d *Deps) { d.Now = func() time.Time { return now } })
			f.setStatus(Status{KafkaReachable: true, KafkaState: KafkaConnected, Breaker: tc.breaker})
			var body struct {
				CircuitBreaker json.RawMessage `json:"circuit_breaker"`
			}
			if err := json.Unmarshal(f.do(t, "GET", "/health", "", nil).Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if string(body.CircuitBreaker) != tc.want {
				t.Fatalf("circuit_breaker\n got %s\nwant %s", body.CircuitBreaker, tc.want)
			}
		})
	}
}

func sortedDiff(a, b map[string]string) []string {
	var d []string
	for k, v := range a {
		if b[k] != v {
			d = append(d, k+"="+v)
		}
	}
	sort.Strings(d)
	return d
}

func TestHealthStatuses(t *testing.T) {
	cases := []struct {
		name     string
		status   Status
		events   func(m *metrics.Metrics)
		want     string
		kafka    string
		alertHas string
		wsStatus string
	}{
		{"waiting for first message", Status{KafkaReachable: true}, nil, "waiting", KafkaWaiting, "", "no_clients"},
		{"starting", Status{Starting: true, KafkaState: KafkaConnected}, nil, "waiting", KafkaConnected, "", "no_clients"},
		{"healthy", Status{KafkaReachable: true}, func(m *metrics.Metrics) { m.KafkaMessage(); m.ClientConnected() }, "healthy", KafkaConnected, "", "1_clients_connected"},
		{"idle topic is healthy", Status{KafkaReachable: true, KafkaState: KafkaNoRecentMessages}, nil, "healthy", KafkaNoRecentMessages, "", "no_clients"},
		{"old data decode errors are fine", Status{KafkaReachable: true}, func(m *metrics.Metrics) { m.KafkaMessage(); m.DecodeError(metrics.KindBadZstd, true) }, "healthy", KafkaConnected, "", "no_clients"},
		{"new decode errors", Status{KafkaReachable: true}, func(m *metrics.Metrics) { m.KafkaMessage(); m.DecodeError(metrics.KindBadZstd, false) }, "degraded", KafkaConnected, "decode errors", "no_clients"},
		{"paused partitions", Status{KafkaReachable: true, KafkaState: KafkaConnected, PausedPartitions: []int32{0, 3}}, nil, "degraded", KafkaConnected, "paused after decode errors: 0, 3", "no_clients"},
		{"infra error", Status{KafkaReachable: true, KafkaState: KafkaConnected}, func(m *metrics.Metrics) { m.InfraError() }, "degraded", KafkaConnected, "infrastructure error", "no_clients"},
		{"drops", Status{KafkaReachable: true, KafkaState: KafkaConnected}, func(m *metrics.Metrics) { m.Dropped("queue_full", 2) }, "degraded", KafkaConnected, "2 messages dropped", "no_clients"},
		{"app alert", Status{KafkaReachable: true, KafkaState: KafkaConnected, Alerts: []string{"redis unavailable"}}, nil, "degraded", KafkaConnected, "redis unavailable", "no_clients"},
		{"wedged", Status{KafkaReachable: true, KafkaState: KafkaConnected, Wedged: true}, nil, "degraded", KafkaConnected, "stuck", "no_clients"},
		{"reconnecting", Status{KafkaState: KafkaReconnecting}, func(m *metrics.Metrics) { m.DecodeError(metrics.KindBadZstd, false) }, "reconnecting", KafkaReconnecting, "reconnecting | ", "no_clients"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.setStatus(tc.status)
			if tc.events != nil {
				tc.events(f.m)
			}
			b := decode(t, f.do(t, "GET", "/health", "", nil))
			alert, hasAlert := b["alert"].(string)
			if b["status"] != tc.want || b["kafka_status"] != tc.kafka || b["websocket_status"] != tc.wsStatus {
				t.Fatalf("got %v / %v / %v", b["status"], b["kafka_status"], b["websocket_status"])
			}
			if tc.alertHas == "" && hasAlert {
				t.Fatalf("unexpected alert %q", alert)
			}
			if tc.alertHas != "" && !strings.Contains(alert, tc.alertHas) {
				t.Fatalf("alert %q lacks %q", alert, tc.alertHas)
			}
		})
	}
}

func TestHealthWithoutMetricsOrStatus(t *testing.T) {
	f := newFixture(t, func(d *Deps) { d.Metrics = nil; d.Status = nil })
	b := decode(t, f.do(t, "GET", "/health", "", nil))
	if b["status"] != "waiting" || b["websocket_status"] != "no_clients" {
		t.Fatalf("body %v", b)
	}
	if w := f.do(t, "GET", "/readyz", "", nil); w.Code != http.StatusServiceUnavailable || decode(t, w)["reason"] != "starting" {
		t.Fatalf("readyz %d", w.Code)
	}
}

func TestHealthzAndReadyz(t *testing.T) {
	cases := []struct {
		name            string
		status          Status
		healthz, readyz int
		reason          string
	}{
		{"ready", Status{KafkaReachable: true}, 200, 200, ""},
		{"starting", Status{Starting: true, KafkaReachable: true}, 200, 503, "starting"},
		{"no kafka", Status{}, 200, 503, "kafka_unreachable"},
		{"shutting down", Status{KafkaReachable: true, ShuttingDown: true}, 200, 503, "shutting_down"},
		{"wedged", Status{KafkaReachable: true, Wedged: true}, 503, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.setStatus(tc.status)
			if w := f.do(t, "GET", "/healthz", "", nil); w.Code != tc.healthz {
				t.Fatalf("healthz %d", w.Code)
			}
			w := f.do(t, "GET", "/readyz", "", nil)
			if w.Code != tc.readyz {
				t.Fatalf("readyz %d", w.Code)
			}
			if tc.reason != "" && decode(t, w)["reason"] != tc.reason {
				t.Fatalf("reason %s", w.Body)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	f := newFixture(t, func(d *Deps) {
		d.Version = func() VersionInfo {
			return VersionInfo{GitSHA: "abc", BuildDate: "2026-01-01", ResumeNamespace: "ns", KafkaTopic: "t",
				KafkaGroupID: "g", MaxPayloadBytes: 10 << 20, DecodeErrorPolicy: "skip"}
		}
	})
	w := f.do(t, "GET", "/version", "", nil)
	got := shapeOf(t, w.Body.Bytes())
	want := map[string]string{".git_sha": "string", ".build_date": "string", ".schema_version": "number",
		".component": "string", ".resume_namespace": "string", ".kafka_topic": "string", ".kafka_group_id": "string",
		".max_payload_bytes": "number", ".decode_error_policy": "string"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("shape %v", got)
	}
	b := decode(t, w)
	if b["component"] != "websocket-server" || b["schema_version"] != 1.0 || b["resume_namespace"] != "ns" {
		t.Fatalf("body %v", b)
	}
}
