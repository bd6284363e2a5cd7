package httpserver

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/metrics"
)

// Kafka states reported by Status.KafkaState and /health's kafka_status.
const (
	KafkaConnected        = "connected"
	KafkaWaiting          = "waiting_for_messages"
	KafkaNoRecentMessages = "no_recent_messages"
	KafkaReconnecting     = "reconnecting"
)

// noRecentAfterSecs is when kafka_status becomes no_recent_messages if the
// app does not set KafkaState itself.
const noRecentAfterSecs = 300

// recentSecs is how recent an infrastructure error must be to alert.
const recentSecs = 120

// Status is the gateway state the app reports for /health, /healthz and
// /readyz.
type Status struct {
	// KafkaState is one of the Kafka* constants. Empty: derived from the
	// time of the last record.
	KafkaState string
	// KafkaReachable: broker metadata answered recently. False: /readyz 503.
	KafkaReachable bool
	// Starting: startup not finished. /readyz 503, /health "waiting".
	Starting bool
	// ShuttingDown: shutdown begun. /readyz 503, /ws refused.
	ShuttingDown bool
	// NotReady, when not empty, is another reason for /readyz 503 (the
	// Kafka topic was deleted and is not re-adopted yet); put what it means
	// in Alerts.
	NotReady string
	// Wedged: the consumer loop is stuck while records wait (paused
	// partitions excluded). /healthz 503.
	Wedged bool
	// ConnectedClients is used only when Deps.Metrics is nil; otherwise the
	// metrics tally is the source of truth.
	ConnectedClients int
	// Replay is the "replay_buffer" object of /health.
	Replay ReplayStatus
	// Breaker is the "circuit_breaker" object of /health. Zero: healthy,
	// Redis not configured.
	Breaker CircuitBreakerStatus
	// PausedPartitions are partitions stopped by the pause policy.
	PausedPartitions []int32
	// Alerts are extra conditions needing attention (e.g. "redis unavailable:
	// replay served from memory"); any alert makes /health "degraded".
	Alerts []string
}

// ReplayStatus is the "replay_buffer" object of /health. The counters can be
// filled from metrics.Metrics.Replay().
type ReplayStatus struct {
	RedisEnabled       bool   `json:"redis_enabled"`
	MemoryHits         uint64 `json:"memory_hits"`
	RedisHits          uint64 `json:"redis_hits"`
	RedisMisses        uint64 `json:"redis_misses"`
	RedisWriteDropped  uint64 `json:"redis_write_dropped"`
	RedisWriteFailures uint64 `json:"redis_write_failures"`
	// MemoryBufferSize and MaxMemorySize are records over all partitions:
	// held now, and the per-partition cap times the partitions known, so
	// the first never exceeds the second. The tier is also bounded in
	// bytes over all partitions (MaxMemoryBytes): with large records it
	// holds fewer than MaxMemorySize.
	MemoryBufferSize    int   `json:"memory_buffer_size"`
	MaxMemorySize       int   `json:"max_memory_size"`
	MemoryBufferBytes   int64 `json:"memory_buffer_bytes"`
	MaxMemoryBytes      int64 `json:"max_memory_bytes"`
	RedisMessageTTLSecs int64 `json:"redis_message_ttl_secs"`
	RedisMaxSequences   int   `json:"redis_max_sequences"`
}

// Circuit breaker states of CircuitBreakerStatus.State.
const (
	BreakerHealthy  = "healthy"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half_open"
)

// CircuitBreakerStatus is the "circuit_breaker" object of /health: the
// Redis replay tier's breaker. Without Redis it is healthy with
// redis_configured false. Always present (the dashboard shows its panel
// only then).
type CircuitBreakerStatus struct {
	// State is BreakerHealthy, BreakerOpen or BreakerHalfOpen (a probe is
	// deciding: first connection, or a retry while open). Empty: healthy.
	State           string `json:"state"`
	RedisConfigured bool   `json:"redis_configured"`
	// ConsecutiveFailures counts failed Redis operations and probes since
	// Redis last answered; FailureThreshold of them open the breaker.
	ConsecutiveFailures int    `json:"consecutive_failures"`
	FailureThreshold    int    `json:"failure_threshold"`
	TimesOpened         uint64 `json:"times_opened"`
	// OpenedAgoSeconds is how long Redis has been unavailable (since the
	// breaker opened, or since the first connection attempt); null while
	// healthy. Filled by the server from DownSince.
	OpenedAgoSeconds *int64    `json:"opened_ago_seconds"`
	DownSince        time.Time `json:"-"`
	ProbeIntervalMs  int64     `json:"probe_interval_ms"`
}

// VersionInfo is the /version body.
type VersionInfo struct {
	GitSHA            string `json:"git_sha"`
	BuildDate         string `json:"build_date"`
	SchemaVersion     int    `json:"schema_version"`
	Component         string `json:"component"` // "websocket-server" when empty
	ResumeNamespace   string `json:"resume_namespace"`
	KafkaTopic        string `json:"kafka_topic"`
	KafkaGroupID      string `json:"kafka_group_id"`
	MaxPayloadBytes   int    `json:"max_payload_bytes"`
	DecodeErrorPolicy string `json:"decode_error_policy"`
}

// healthBody is the /health JSON (docs/PROTOCOL.md §5).
type healthBody struct {
	Status           string                 `json:"status"`
	Metrics          metrics.HealthCounters `json:"metrics"`
	ReplayBuffer     ReplayStatus           `json:"replay_buffer"`
	KafkaStatus      string                 `json:"kafka_status"`
	WebsocketStatus  string                 `json:"websocket_status"`
	CircuitBreaker   CircuitBreakerStatus   `json:"circuit_breaker"`
	Alert            string                 `json:"alert,omitempty"`
	PausedPartitions []int32                `json:"paused_partitions,omitempty"`
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.health())
}

func (s *Server) health() healthBody {
	st := s.status()
	var h metrics.HealthCounters
	if s.deps.Metrics != nil {
		h = s.deps.Metrics.Health()
	} else {
		h.ConnectedClients = int64(st.ConnectedClients)
	}
	kafka := kafkaStatus(st, h)
	alerts := healthAlerts(st, h, kafka)
	return healthBody{
		Status:           overallStatus(st, kafka, alerts),
		Metrics:          h,
		ReplayBuffer:     st.Replay,
		KafkaStatus:      kafka,
		WebsocketStatus:  websocketStatus(h.ConnectedClients),
		CircuitBreaker:   s.circuitBreaker(st.Breaker),
		Alert:            strings.Join(alerts, " | "),
		PausedPartitions: st.PausedPartitions,
	}
}

// circuitBreaker completes the breaker object: a state by default and the
// time it has been down.
func (s *Server) circuitBreaker(b CircuitBreakerStatus) CircuitBreakerStatus {
	if b.State == "" {
		b.State = BreakerHealthy
	}
	if b.State != BreakerHealthy && !b.DownSince.IsZero() {
		ago := max(int64(s.deps.Now().Sub(b.DownSince)/time.Second), 0)
		b.OpenedAgoSeconds = &ago
	}
	return b
}

func kafkaStatus(st Status, h metrics.HealthCounters) string {
	switch {
	case st.KafkaState != "":
		return st.KafkaState
	case h.LastKafkaMessageAgoSeconds == nil:
		return KafkaWaiting
	case *h.LastKafkaMessageAgoSeconds > noRecentAfterSecs:
		return KafkaNoRecentMessages
	}
	return KafkaConnected
}

// healthAlerts lists what needs attention. An idle topic is not among them.
func healthAlerts(st Status, h metrics.HealthCounters, kafka string) []string {
	var a []string
	if kafka == KafkaReconnecting {
		a = append(a, "Kafka unreachable: reconnecting")
	}
	if h.DecodeErrorsLast120s > 0 {
		a = append(a, fmt.Sprintf("%d decode errors in new data in the last 120s (records sent to the DLQ)", h.DecodeErrorsLast120s))
	}
	if len(st.PausedPartitions) > 0 {
		a = append(a, "partitions paused after decode errors: "+joinPartitions(st.PausedPartitions)+
			" (resume with POST /api/admin/partitions/{p}/resume)")
	}
	if ago := h.LastInfrastructureErrorAgoSeconds; ago != nil && *ago < recentSecs {
		a = append(a, fmt.Sprintf("infrastructure error %ds ago (%d in total)", *ago, h.InfrastructureErrors))
	}
	if h.DroppedMessagesLast120s > 0 {
		a = append(a, fmt.Sprintf("%d messages dropped in the last 120s", h.DroppedMessagesLast120s))
	}
	if st.Wedged {
		a = append(a, "consumer loop stuck while records are waiting")
	}
	return append(a, st.Alerts...)
}

func overallStatus(st Status, kafka string, alerts []string) string {
	switch {
	case kafka == KafkaReconnecting:
		return "reconnecting"
	case len(alerts) > 0:
		return "degraded"
	case st.Starting || kafka == KafkaWaiting:
		return "waiting"
	}
	return "healthy"
}

func websocketStatus(n int64) string {
	if n <= 0 {
		return "no_clients"
	}
	return strconv.FormatInt(n, 10) + "_clients_connected"
}

func joinPartitions(ps []int32) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ", ")
}

// serveHealthz is liveness: 200 unless the consumer is wedged.
func (s *Server) serveHealthz(w http.ResponseWriter, r *http.Request) {
	if s.status().Wedged {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "wedged"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// serveReadyz is readiness: 503 while starting, shutting down or without
// Kafka metadata. Redis does not matter.
func (s *Server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	st := s.status()
	reason := ""
	switch {
	case st.ShuttingDown:
		reason = "shutting_down"
	case st.Starting:
		reason = "starting"
	case !st.KafkaReachable:
		reason = "kafka_unreachable"
	case st.NotReady != "":
		reason = st.NotReady
	}
	if reason != "" {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not_ready", "reason": reason})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) serveVersion(w http.ResponseWriter, r *http.Request) {
	var v VersionInfo
	if s.deps.Version != nil {
		v = s.deps.Version()
	}
	if v.Component == "" {
		v.Component = "websocket-server"
	}
	if v.SchemaVersion == 0 {
		v.SchemaVersion = 1
	}
	writeJSON(w, http.StatusOK, v)
}
