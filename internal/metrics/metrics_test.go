package metrics

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a settable clock for tests.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newTest(t *testing.T) (*Metrics, *prometheus.Registry, *fakeClock) {
	t.Helper()
	reg := prometheus.NewRegistry()
	clk := newFakeClock()
	return New(reg, WithClock(clk.now)), reg, clk
}

// specNames is every metric of docs/PROTOCOL.md §8 (plus the gateway's additions) with
// its type.
var specNames = map[string]dto.MetricType{
	"websocket_kafka_messages_total":           dto.MetricType_COUNTER,
	"websocket_connected_clients":              dto.MetricType_GAUGE,
	"websocket_dropped_messages_total":         dto.MetricType_COUNTER,
	"websocket_decode_errors_total":            dto.MetricType_COUNTER,
	"websocket_infrastructure_errors_total":    dto.MetricType_COUNTER,
	"websocket_old_data_decode_errors_total":   dto.MetricType_COUNTER,
	"websocket_kafka_errors_by_type_total":     dto.MetricType_COUNTER,
	"websocket_kafka_payload_missing_total":    dto.MetricType_COUNTER,
	"websocket_client_lag_events_total":        dto.MetricType_COUNTER,
	"websocket_client_lag_messages_total":      dto.MetricType_COUNTER,
	"websocket_slow_client_disconnects_total":  dto.MetricType_COUNTER,
	"websocket_control_oversized_total":        dto.MetricType_COUNTER,
	"websocket_control_parse_failures_total":   dto.MetricType_COUNTER,
	"websocket_rejected_connections_total":     dto.MetricType_COUNTER,
	"websocket_send_failed_total":              dto.MetricType_COUNTER,
	"websocket_send_timeout_total":             dto.MetricType_COUNTER,
	"websocket_dlq_sends_total":                dto.MetricType_COUNTER,
	"websocket_dlq_send_failures_total":        dto.MetricType_COUNTER,
	"websocket_kafka_consumer_lag":             dto.MetricType_GAUGE,
	"websocket_kafka_lag_offset_age_seconds":   dto.MetricType_GAUGE,
	"websocket_kafka_catchup_phase":            dto.MetricType_GAUGE,
	"websocket_kafka_lag_poll_failures_total":  dto.MetricType_COUNTER,
	"websocket_kafka_partitions_paused":        dto.MetricType_GAUGE,
	"websocket_resume_requests_total":          dto.MetricType_COUNTER,
	"websocket_replay_messages_total":          dto.MetricType_COUNTER,
	"websocket_replay_gaps_total":              dto.MetricType_COUNTER,
	"websocket_replay_gap_messages_total":      dto.MetricType_COUNTER,
	"websocket_replay_latency_ms":              dto.MetricType_HISTOGRAM,
	"websocket_replay_tier_hits_total":         dto.MetricType_COUNTER,
	"websocket_subscriptions_total":            dto.MetricType_COUNTER,
	"websocket_filter_records_scanned_total":   dto.MetricType_COUNTER,
	"websocket_filter_records_matched_total":   dto.MetricType_COUNTER,
	"websocket_json_encodes_total":             dto.MetricType_COUNTER,
	"websocket_e2e_latency_ms":                 dto.MetricType_HISTOGRAM,
	"websocket_clock_skew_events_total":        dto.MetricType_COUNTER,
	"dashstream_sequence_gaps_total":           dto.MetricType_COUNTER,
	"dashstream_sequence_duplicates_total":     dto.MetricType_COUNTER,
	"dashstream_sequence_reorders_total":       dto.MetricType_COUNTER,
	"dashstream_sequence_gap_size":             dto.MetricType_HISTOGRAM,
	"dashstream_websocket_redis_errors_total":  dto.MetricType_COUNTER,
	"dashstream_websocket_redis_latency_ms":    dto.MetricType_HISTOGRAM,
	"replay_buffer_memory_hits_total":          dto.MetricType_COUNTER,
	"replay_buffer_redis_hits_total":           dto.MetricType_COUNTER,
	"replay_buffer_redis_misses_total":         dto.MetricType_COUNTER,
	"replay_buffer_redis_write_dropped_total":  dto.MetricType_COUNTER,
	"replay_buffer_redis_write_failures_total": dto.MetricType_COUNTER,
	"websocket_uptime_seconds":                 dto.MetricType_GAUGE,
	"websocket_last_kafka_message_age_seconds": dto.MetricType_GAUGE,
}

// touchVecs creates one child of every vector so that Gather reports it.
func touchVecs(m *Metrics) {
	for _, v := range []*prometheus.CounterVec{m.KafkaMessages, m.DroppedMessages, m.DecodeErrors,
		m.KafkaErrorsByType, m.ClientLagEvents, m.ClientLagMessages, m.RejectedConnections,
		m.DLQSends, m.DLQSendFailures, m.ResumeRequests, m.ReplayMessages, m.ReplayGaps,
		m.ReplayGapMessages, m.ReplayTierHits, m.Subscriptions, m.FilterRecordsScanned, m.FilterRecordsMatched} {
		v.WithLabelValues("x")
	}
	for _, v := range []*prometheus.GaugeVec{m.KafkaConsumerLag, m.KafkaLagOffsetAge, m.KafkaCatchupPhase} {
		v.WithLabelValues("0")
	}
	for _, v := range []*prometheus.HistogramVec{m.ReplayLatencyMs, m.E2ELatencyMs, m.RedisLatencyMs} {
		v.WithLabelValues("x")
	}
}

func TestEverySpecNameRegisteredWithItsType(t *testing.T) {
	m, reg, _ := newTest(t)
	touchVecs(m)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]dto.MetricType{}
	for _, f := range families {
		got[f.GetName()] = f.GetType()
	}
	for name, typ := range specNames {
		if g, ok := got[name]; !ok || g != typ {
			t.Errorf("%s: got type %v (present %v), want %v", name, g, ok, typ)
		}
	}
	if len(got) != len(specNames) {
		t.Errorf("registered %d families, spec lists %d", len(got), len(specNames))
	}
}

func TestNilRegistryAndRuntime(t *testing.T) {
	m := New(nil)
	m.KafkaMessage()
	reg := prometheus.NewRegistry()
	if err := RegisterRuntime(reg); err != nil {
		t.Fatal(err)
	}
	if err := RegisterRuntime(reg); err == nil {
		t.Fatal("second RegisterRuntime on one registry should fail")
	}
	New(reg) // runtime collectors do not clash with ours
}

func TestHealthNeverIsNull(t *testing.T) {
	m, _, clk := newTest(t)
	clk.advance(812 * time.Second)
	h := m.Health()
	if h.LastKafkaMessageAgoSeconds != nil || h.LastDropAgoSeconds != nil || h.LastInfrastructureErrorAgoSeconds != nil {
		t.Fatalf("never-happened events must be nil: %+v", h)
	}
	if h.UptimeSeconds != 812 {
		t.Fatalf("uptime = %d", h.UptimeSeconds)
	}
	if got := testutil.ToFloat64(m.LastKafkaMessageAge); got != 812 {
		t.Fatalf("age before first message = %v, want uptime", got)
	}
}

func TestEventsFeedBothHealthAndPrometheus(t *testing.T) {
	m, _, clk := newTest(t)
	for range 5 {
		m.KafkaMessage()
	}
	m.DecodeError(KindBadZstd, false)
	m.DecodeError(KindInvalidProtobuf, true)
	m.PayloadMissing(false)
	m.KafkaError("broker_down")
	m.InfraError()
	m.Dropped("queue_full", 3)
	m.Dropped("queue_full", 0)
	m.SendFailedEvent()
	m.SendTimeoutEvent()
	m.ClientConnected()
	m.ClientConnected()
	m.ClientDisconnected()
	clk.advance(3 * time.Second)
	h := m.Health()
	want := HealthCounters{
		KafkaMessagesReceived: 5, KafkaErrors: 1, InfrastructureErrors: 1, ConnectedClients: 1,
		UptimeSeconds: 3, DroppedMessages: 3, DroppedMessagesLast120s: 3, DecodeErrors: 2,
		OldDataDecodeErrors: 1, PayloadMissing: 1, DecodeErrorsLast120s: 2, MessagesLast120s: 5,
		SendFailed: 1, SendTimeout: 1, SendFailedLast120s: 1, SendTimeoutLast120s: 1,
	}
	for _, p := range []**int64{&h.LastKafkaMessageAgoSeconds, &h.LastDropAgoSeconds, &h.LastInfrastructureErrorAgoSeconds} {
		if *p == nil || **p != 3 {
			t.Fatalf("ago = %v, want 3", *p)
		}
		*p = nil
	}
	if h != want {
		t.Fatalf("health\n got %+v\nwant %+v", h, want)
	}
	checks := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"success", m.KafkaMessages.WithLabelValues(StatusSuccess), 5},
		{"error", m.KafkaMessages.WithLabelValues(StatusError), 2},
		{"old", m.KafkaMessages.WithLabelValues(StatusOldDataError), 1},
		{"old total", m.OldDataDecodeErrors, 1},
		{"missing", m.KafkaPayloadMissing, 1},
		{"missing kind", m.DecodeErrors.WithLabelValues(KindPayloadMissing), 1},
		{"kafka err", m.KafkaErrorsByType.WithLabelValues("broker_down"), 1},
		{"infra", m.InfrastructureErrors, 1},
		{"dropped", m.DroppedMessages.WithLabelValues("queue_full"), 3},
		{"clients", m.ConnectedClients, 1},
		{"send failed", m.SendFailed, 1},
		{"send timeout", m.SendTimeout, 1},
		{"age", m.LastKafkaMessageAge, 3},
		{"uptime", m.Uptime, 3},
	}
	for _, c := range checks {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestWindowSlides(t *testing.T) {
	m, _, clk := newTest(t)
	m.KafkaMessage()
	clk.advance(60 * time.Second)
	m.KafkaMessage()
	m.DecodeError(KindBadZstd, false)
	if got := m.Health().MessagesLast120s; got != 2 {
		t.Fatalf("messages_last_120s = %d, want 2", got)
	}
	clk.advance(60 * time.Second) // first message is now 120 s old
	if got := m.Health().MessagesLast120s; got != 1 {
		t.Fatalf("after 120s messages_last_120s = %d, want 1", got)
	}
	clk.advance(200 * time.Second)
	m.KafkaMessage() // reuses a stale bucket
	h := m.Health()
	if h.MessagesLast120s != 1 || h.DecodeErrorsLast120s != 0 || h.KafkaMessagesReceived != 3 {
		t.Fatalf("after 320s: %+v", h)
	}
}

func TestWindowConcurrentAdds(t *testing.T) {
	var w window
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				w.add(int64(1000+(g+i)%3), 1)
			}
		})
	}
	wg.Wait()
	if got := w.sum(1002); got != 8000 {
		t.Fatalf("sum = %d, want 8000", got)
	}
}

func TestLabelsAreBounded(t *testing.T) {
	m, _, _ := newTest(t)
	for i := range 100 {
		m.KafkaError(fmt.Sprintf("type_%d", i))
	}
	m.Dropped(string(make([]byte, 500)), 1)
	if n := testutil.CollectAndCount(m.KafkaErrorsByType); n != maxLabelValues+1 {
		t.Fatalf("kafka error series = %d, want %d", n, maxLabelValues+1)
	}
	if got := testutil.ToFloat64(m.KafkaErrorsByType.WithLabelValues(labelOther)); got != 100-maxLabelValues {
		t.Fatalf("other = %v", got)
	}
	if got := testutil.ToFloat64(m.DroppedMessages.WithLabelValues(labelOther)); got != 1 {
		t.Fatalf("long reason not mapped to other: %v", got)
	}
}

func TestReplayAndRejected(t *testing.T) {
	m, _, _ := newTest(t)
	m.ReplayTierHit(TierMemory)
	m.ReplayTierHit(TierRedis)
	m.ReplayTierHit(TierKafka)
	m.ReplayRedisMiss()
	m.RedisWriteDropped()
	m.RedisWriteFailed()
	m.Rejected(RejectOrigin)
	want := ReplayCounters{MemoryHits: 1, RedisHits: 1, RedisMisses: 1, RedisWriteDropped: 1, RedisWriteFailures: 1}
	if got := m.Replay(); got != want {
		t.Fatalf("replay = %+v", got)
	}
	if got := testutil.ToFloat64(m.ReplayTierHits.WithLabelValues(TierKafka)); got != 1 {
		t.Fatalf("kafka tier = %v", got)
	}
	if got := testutil.ToFloat64(m.ReplayMemoryHits); got != 1 {
		t.Fatalf("memory hits = %v", got)
	}
	if got := testutil.ToFloat64(m.RejectedConnections.WithLabelValues(RejectOrigin)); got != 1 {
		t.Fatalf("rejected = %v", got)
	}
}

func TestKafkaMessageDoesNotAllocate(t *testing.T) {
	m := New(nil)
	if n := testing.AllocsPerRun(1000, m.KafkaMessage); n != 0 {
		t.Fatalf("KafkaMessage allocates %v times", n)
	}
}

func BenchmarkKafkaMessage(b *testing.B) {
	m := New(nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.KafkaMessage()
		}
	})
}

func TestRegisterStateReadsAtScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	open, budget := 0.0, 0.0
	if err := RegisterState(reg, StateFuncs{RedisBreakerOpen: func() float64 { return open },
		MaxConnections: func() float64 { return budget }}); err != nil {
		t.Fatal(err)
	}
	read := func() map[string]float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			out[mf.GetName()] = mf.GetMetric()[0].GetGauge().GetValue()
		}
		return out
	}
	if got := read(); got["dashstream_redis_circuit_breaker_open"] != 0 || got["websocket_max_connections"] != 0 {
		t.Fatalf("before: %v", got)
	}
	open, budget = 1, 922
	if got := read(); got["dashstream_redis_circuit_breaker_open"] != 1 || got["websocket_max_connections"] != 922 {
		t.Fatalf("after: %v", got)
	}
	if err := RegisterState(reg, StateFuncs{RedisBreakerOpen: func() float64 { return 0 },
		MaxConnections: func() float64 { return 0 }}); err == nil {
		t.Fatal("registering twice did not fail")
	}
}
