// Package metrics holds every Prometheus collector of the gateway in one
// struct built from an injected registry (no globals), and the health tallies
// behind the /health JSON. Both are updated from the same call sites (the
// event methods in events.go) so that /health and /metrics never disagree.
//
// This file lists every metric name. All methods are safe for concurrent use.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Label values used by the gateway. Labels are bounded: never a thread id,
// an IP address or a session id.
const (
	StatusSuccess      = "success"        // websocket_kafka_messages_total{status}
	StatusError        = "error"          // a decode failure in new data
	StatusOldDataError = "old_data_error" // a decode failure in catch-up history

	RejectIPLimit   = "ip_limit" // websocket_rejected_connections_total{reason}
	RejectRateLimit = "rate_limit"
	RejectOrigin    = "origin"
	RejectAuth      = "auth"
	RejectShutdown  = "shutdown"
	// RejectMaxConnections: WEBSOCKET_MAX_CONNECTIONS sessions are live (503).
	RejectMaxConnections = "max_connections"
	// RejectListenerFull: the public listener holds all the connections its
	// file-descriptor budget allows; refused before a request was read.
	RejectListenerFull = "listener_full"

	StageProducerToConsumer    = "producer_to_consumer" // websocket_e2e_latency_ms{stage}
	StageProducerToClientWrite = "producer_to_client_write"

	TierMemory = "memory" // websocket_replay_tier_hits_total{tier}
	TierRedis  = "redis"
	TierKafka  = "kafka"
)

// Metrics is every collector of docs/PROTOCOL.md §8. Fields are named after the metric
// without its websocket_/dashstream_ prefix and _total suffix. Prefer the
// event methods (events.go) where one exists: they also feed /health.
type Metrics struct {
	KafkaMessages        *prometheus.CounterVec // websocket_kafka_messages_total{status}
	ConnectedClients     prometheus.Gauge       // websocket_connected_clients
	DroppedMessages      *prometheus.CounterVec // websocket_dropped_messages_total{reason}
	DecodeErrors         *prometheus.CounterVec // websocket_decode_errors_total{error_type}
	InfrastructureErrors prometheus.Counter     // websocket_infrastructure_errors_total
	OldDataDecodeErrors  prometheus.Counter     // websocket_old_data_decode_errors_total
	KafkaErrorsByType    *prometheus.CounterVec // websocket_kafka_errors_by_type_total{error_type}
	KafkaPayloadMissing  prometheus.Counter     // websocket_kafka_payload_missing_total

	ClientLagEvents       *prometheus.CounterVec // websocket_client_lag_events_total{severity}
	ClientLagMessages     *prometheus.CounterVec // websocket_client_lag_messages_total{severity}
	SlowClientDisconnects prometheus.Counter     // websocket_slow_client_disconnects_total
	ControlOversized      prometheus.Counter     // websocket_control_oversized_total
	ControlParseFailures  prometheus.Counter     // websocket_control_parse_failures_total
	RejectedConnections   *prometheus.CounterVec // websocket_rejected_connections_total{reason}
	SendFailed            prometheus.Counter     // websocket_send_failed_total
	SendTimeout           prometheus.Counter     // websocket_send_timeout_total

	DLQSends        *prometheus.CounterVec // websocket_dlq_sends_total{error_type}
	DLQSendFailures *prometheus.CounterVec // websocket_dlq_send_failures_total{reason}

	KafkaConsumerLag     *prometheus.GaugeVec // websocket_kafka_consumer_lag{partition}
	KafkaLagOffsetAge    *prometheus.GaugeVec // websocket_kafka_lag_offset_age_seconds{partition}
	KafkaCatchupPhase    *prometheus.GaugeVec // websocket_kafka_catchup_phase{partition}
	KafkaLagPollFailures prometheus.Counter   // websocket_kafka_lag_poll_failures_total
	PartitionsPaused     prometheus.Gauge     // websocket_kafka_partitions_paused

	ResumeRequests    *prometheus.CounterVec   // websocket_resume_requests_total{mode}
	ReplayMessages    *prometheus.CounterVec   // websocket_replay_messages_total{mode}
	ReplayGaps        *prometheus.CounterVec   // websocket_replay_gaps_total{mode}
	ReplayGapMessages *prometheus.CounterVec   // websocket_replay_gap_messages_total{mode}
	ReplayLatencyMs   *prometheus.HistogramVec // websocket_replay_latency_ms{mode}
	ReplayTierHits    *prometheus.CounterVec   // websocket_replay_tier_hits_total{tier}

	Subscriptions        *prometheus.CounterVec // websocket_subscriptions_total{filter}
	FilterRecordsScanned *prometheus.CounterVec // websocket_filter_records_scanned_total{path}
	FilterRecordsMatched *prometheus.CounterVec // websocket_filter_records_matched_total{path}
	JSONEncodes          prometheus.Counter     // websocket_json_encodes_total

	E2ELatencyMs    *prometheus.HistogramVec // websocket_e2e_latency_ms{stage}
	ClockSkewEvents prometheus.Counter       // websocket_clock_skew_events_total

	SequenceGaps       prometheus.Counter   // dashstream_sequence_gaps_total
	SequenceDuplicates prometheus.Counter   // dashstream_sequence_duplicates_total
	SequenceReorders   prometheus.Counter   // dashstream_sequence_reorders_total
	SequenceGapSize    prometheus.Histogram // dashstream_sequence_gap_size

	RedisErrors    prometheus.Counter       // dashstream_websocket_redis_errors_total
	RedisLatencyMs *prometheus.HistogramVec // dashstream_websocket_redis_latency_ms{operation}

	ReplayMemoryHits         prometheus.Counter // replay_buffer_memory_hits_total
	ReplayRedisHits          prometheus.Counter // replay_buffer_redis_hits_total
	ReplayRedisMisses        prometheus.Counter // replay_buffer_redis_misses_total
	ReplayRedisWriteDropped  prometheus.Counter // replay_buffer_redis_write_dropped_total
	ReplayRedisWriteFailures prometheus.Counter // replay_buffer_redis_write_failures_total

	Uptime              prometheus.GaugeFunc // websocket_uptime_seconds
	LastKafkaMessageAge prometheus.GaugeFunc // websocket_last_kafka_message_age_seconds

	tally  *tally            // health numbers, see health.go
	hot    hotCounters       // pre-resolved children for the hot path
	labels map[string]*bound // per-label-name guards against unbounded values
	now    func() time.Time  // injected clock
	start  time.Time         // process start, for uptime
}

// latencyBucketsMs covers sub-millisecond fan-out up to a 30 s replay.
var latencyBucketsMs = []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000}

// gapSizeBuckets covers single lost messages up to large producer restarts.
var gapSizeBuckets = []float64{1, 2, 5, 10, 25, 100, 1000, 10000}

// Option configures New.
type Option func(*Metrics)

// WithClock injects the clock used for uptime, ages and the 120 s windows.
func WithClock(now func() time.Time) Option {
	return func(m *Metrics) { m.now = now }
}

// New builds every collector and registers it on reg. A nil reg builds the
// collectors without registering them (handy in tests). Registering twice on
// the same registry panics: that is a programming error.
func New(reg prometheus.Registerer, opts ...Option) *Metrics {
	m := &Metrics{now: time.Now}
	for _, o := range opts {
		o(m)
	}
	m.start = m.now()
	m.tally = newTally(m.start)
	m.build()
	m.resolveHot()
	m.labels = newLabelGuards()
	if reg != nil {
		reg.MustRegister(m.collectors()...)
	}
	return m
}

// StateFuncs read gauges that other components own, at scrape time (they are
// states, not counts: nothing here can go backwards wrongly).
type StateFuncs struct {
	// RedisBreakerOpen is 1 while the Redis tier's circuit breaker is open.
	RedisBreakerOpen func() float64
	// MaxConnections is the WebSocket session budget in force.
	MaxConnections func() float64
}

// RegisterState registers the gauges of f on reg:
// dashstream_redis_circuit_breaker_open and websocket_max_connections.
func RegisterState(reg prometheus.Registerer, f StateFuncs) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dashstream_redis_circuit_breaker_open",
			Help: "1 while the Redis replay tier's circuit breaker is open (writes dropped, reads skipped), else 0."},
			f.RedisBreakerOpen),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "websocket_max_connections",
			Help: "WebSocket sessions admitted at once (WEBSOCKET_MAX_CONNECTIONS, derived from the file-descriptor limit when unset); 0 before the server is up."},
			f.MaxConnections),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// RegisterRuntime registers the Go runtime and process collectors on reg.
func RegisterRuntime(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

func counterVec(name, help, label string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
}

func gaugeVec(name, help, label string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{label})
}

func histVec(name, help, label string, buckets []float64) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, []string{label})
}

func (m *Metrics) build() {
	m.buildKafka()
	m.buildClients()
	m.buildReplay()
	m.buildSequence()
}

func (m *Metrics) buildKafka() {
	m.KafkaMessages = counterVec("websocket_kafka_messages_total", "Kafka records processed, by outcome.", "status")
	m.DecodeErrors = counterVec("websocket_decode_errors_total", "Records that failed to decode, by failure kind.", "error_type")
	m.InfrastructureErrors = counter("websocket_infrastructure_errors_total", "Errors of the gateway's own infrastructure (Kafka client, Redis, I/O).")
	m.OldDataDecodeErrors = counter("websocket_old_data_decode_errors_total", "Decode failures in catch-up history (below the head at startup).")
	m.KafkaErrorsByType = counterVec("websocket_kafka_errors_by_type_total", "Kafka client errors, by type.", "error_type")
	m.KafkaPayloadMissing = counter("websocket_kafka_payload_missing_total", "Records with a null value (tombstones).")
	m.DLQSends = counterVec("websocket_dlq_sends_total", "Records sent to the dead-letter topic, by failure kind.", "error_type")
	m.DLQSendFailures = counterVec("websocket_dlq_send_failures_total", "Dead-letter records that could not be sent, by reason.", "reason")
	m.KafkaConsumerLag = gaugeVec("websocket_kafka_consumer_lag", "Records between the high watermark and this instance's position.", "partition")
	m.KafkaLagOffsetAge = gaugeVec("websocket_kafka_lag_offset_age_seconds", "Age of the oldest record not yet consumed.", "partition")
	m.KafkaCatchupPhase = gaugeVec("websocket_kafka_catchup_phase", "1 while the partition is below its head at startup.", "partition")
	m.KafkaLagPollFailures = counter("websocket_kafka_lag_poll_failures_total", "Failed polls of partition offsets for lag.")
	m.PartitionsPaused = prometheus.NewGauge(prometheus.GaugeOpts{Name: "websocket_kafka_partitions_paused", Help: "Partitions paused by the pause decode-error policy."})
	m.E2ELatencyMs = histVec("websocket_e2e_latency_ms", "Latency from the producer timestamp, by stage.", "stage", latencyBucketsMs)
	m.ClockSkewEvents = counter("websocket_clock_skew_events_total", "Records whose producer timestamp is in the future.")
	m.Uptime = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "websocket_uptime_seconds", Help: "Seconds since the gateway started."}, m.uptimeSeconds)
	m.LastKafkaMessageAge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "websocket_last_kafka_message_age_seconds", Help: "Seconds since the last Kafka record (since start when none yet)."}, m.lastMessageAgeSeconds)
}

func (m *Metrics) buildClients() {
	m.ConnectedClients = prometheus.NewGauge(prometheus.GaugeOpts{Name: "websocket_connected_clients", Help: "WebSocket clients connected now."})
	m.DroppedMessages = counterVec("websocket_dropped_messages_total", "Messages not delivered to a client, by reason.", "reason")
	m.ClientLagEvents = counterVec("websocket_client_lag_events_total", "Times a client fell behind live delivery, by severity.", "severity")
	m.ClientLagMessages = counterVec("websocket_client_lag_messages_total", "Records a lagging client had to catch up, by severity.", "severity")
	m.SlowClientDisconnects = counter("websocket_slow_client_disconnects_total", "Clients disconnected for backpressure.")
	m.ControlOversized = counter("websocket_control_oversized_total", "Client text frames rejected as too large.")
	m.ControlParseFailures = counter("websocket_control_parse_failures_total", "Client text frames that were not valid control JSON.")
	m.RejectedConnections = counterVec("websocket_rejected_connections_total", "WebSocket connections refused before the upgrade, by reason.", "reason")
	m.SendFailed = counter("websocket_send_failed_total", "WebSocket writes that failed.")
	m.SendTimeout = counter("websocket_send_timeout_total", "WebSocket writes that missed their deadline.")
}

func (m *Metrics) buildReplay() {
	m.ResumeRequests = counterVec("websocket_resume_requests_total", "Resume requests, by mode.", "mode")
	m.ReplayMessages = counterVec("websocket_replay_messages_total", "Records sent by replay, by mode.", "mode")
	m.ReplayGaps = counterVec("websocket_replay_gaps_total", "Gap frames sent, by mode.", "mode")
	m.ReplayGapMessages = counterVec("websocket_replay_gap_messages_total", "Records announced as lost by gap frames, by mode.", "mode")
	m.ReplayLatencyMs = histVec("websocket_replay_latency_ms", "Time to serve the replay part of a resume, by mode.", "mode", latencyBucketsMs)
	m.ReplayTierHits = counterVec("websocket_replay_tier_hits_total", "Replay pages served, by tier.", "tier")
	m.Subscriptions = counterVec("websocket_subscriptions_total", "Resumes accepted, by the kind of their filter (none, threads, thread_prefix, types, event_types, combined).", "filter")
	m.FilterRecordsScanned = counterVec("websocket_filter_records_scanned_total", "Records a filtered client's delivery examined, by path (index: the memory tier's thread index; scan: every record of the range).", "path")
	m.FilterRecordsMatched = counterVec("websocket_filter_records_matched_total", "Records a filtered client's delivery found matching its filter, by path.", "path")
	m.JSONEncodes = counter("websocket_json_encodes_total", "Records encoded as protocol v2 JSON (once per record, whatever the number of JSON clients).")
	m.RedisErrors = counter("dashstream_websocket_redis_errors_total", "Redis operations that failed.")
	m.RedisLatencyMs = histVec("dashstream_websocket_redis_latency_ms", "Redis operation latency, by operation.", "operation", latencyBucketsMs)
	m.ReplayMemoryHits = counter("replay_buffer_memory_hits_total", "Replay reads served from memory.")
	m.ReplayRedisHits = counter("replay_buffer_redis_hits_total", "Replay reads served from Redis.")
	m.ReplayRedisMisses = counter("replay_buffer_redis_misses_total", "Replay reads Redis could not serve.")
	m.ReplayRedisWriteDropped = counter("replay_buffer_redis_write_dropped_total", "Redis writes dropped (queue full or circuit open).")
	m.ReplayRedisWriteFailures = counter("replay_buffer_redis_write_failures_total", "Redis writes that failed.")
}

func (m *Metrics) buildSequence() {
	m.SequenceGaps = counter("dashstream_sequence_gaps_total", "Per-thread sequence gaps seen.")
	m.SequenceDuplicates = counter("dashstream_sequence_duplicates_total", "Per-thread duplicate sequences seen.")
	m.SequenceReorders = counter("dashstream_sequence_reorders_total", "Per-thread out-of-order sequences seen.")
	m.SequenceGapSize = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dashstream_sequence_gap_size", Help: "Size of per-thread sequence gaps.", Buckets: gapSizeBuckets})
}

// collectors lists everything New registers.
func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.KafkaMessages, m.ConnectedClients, m.DroppedMessages, m.DecodeErrors,
		m.InfrastructureErrors, m.OldDataDecodeErrors, m.KafkaErrorsByType, m.KafkaPayloadMissing,
		m.ClientLagEvents, m.ClientLagMessages, m.SlowClientDisconnects, m.ControlOversized,
		m.ControlParseFailures, m.RejectedConnections, m.SendFailed, m.SendTimeout,
		m.DLQSends, m.DLQSendFailures, m.KafkaConsumerLag, m.KafkaLagOffsetAge,
		m.KafkaCatchupPhase, m.KafkaLagPollFailures, m.PartitionsPaused,
		m.ResumeRequests, m.ReplayMessages, m.ReplayGaps, m.ReplayGapMessages,
		m.ReplayLatencyMs, m.ReplayTierHits, m.Subscriptions, m.FilterRecordsScanned,
		m.FilterRecordsMatched, m.JSONEncodes, m.E2ELatencyMs, m.ClockSkewEvents,
		m.SequenceGaps, m.SequenceDuplicates, m.SequenceReorders, m.SequenceGapSize,
		m.RedisErrors, m.RedisLatencyMs, m.ReplayMemoryHits, m.ReplayRedisHits,
		m.ReplayRedisMisses, m.ReplayRedisWriteDropped, m.ReplayRedisWriteFailures,
		m.Uptime, m.LastKafkaMessageAge,
	}
}

// hotCounters are children resolved once so that per-record calls do no
// label lookup.
type hotCounters struct {
	success, decodeNew, decodeOld prometheus.Counter
}

func (m *Metrics) resolveHot() {
	m.hot.success = m.KafkaMessages.WithLabelValues(StatusSuccess)
	m.hot.decodeNew = m.KafkaMessages.WithLabelValues(StatusError)
	m.hot.decodeOld = m.KafkaMessages.WithLabelValues(StatusOldDataError)
	for _, r := range []string{RejectIPLimit, RejectRateLimit, RejectOrigin, RejectAuth, RejectShutdown,
		RejectMaxConnections, RejectListenerFull} {
		m.RejectedConnections.WithLabelValues(r)
	}
	for _, s := range []string{StageProducerToConsumer, StageProducerToClientWrite} {
		m.E2ELatencyMs.WithLabelValues(s)
	}
	for _, t := range []string{TierMemory, TierRedis, TierKafka} {
		m.ReplayTierHits.WithLabelValues(t)
	}
}

func (m *Metrics) uptimeSeconds() float64 {
	return m.now().Sub(m.start).Seconds()
}

// lastMessageAgeSeconds is the age of the last record, or the uptime when no
// record has arrived yet (so a staleness alert still fires on a dead feed).
func (m *Metrics) lastMessageAgeSeconds() float64 {
	last := m.tally.lastMessage.Load()
	if last == 0 {
		return m.uptimeSeconds()
	}
	return float64(m.now().UnixNano()-last) / float64(time.Second)
}
