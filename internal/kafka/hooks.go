package kafka

import (
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ClientMetrics exports franz-go's client-level measurements (connections,
// bytes, request latency, fetched and produced batches) through kgo hooks.
// One value is shared by every client the gateway creates, including the
// clients of reconnects, so its collectors are registered exactly once.
// Labels: the broker's node id (bounded by the cluster size).
type ClientMetrics struct {
	connects      *prometheus.CounterVec   // dashstream_kafka_connects_total{node_id}
	connectErrors *prometheus.CounterVec   // dashstream_kafka_connect_errors_total{node_id}
	disconnects   *prometheus.CounterVec   // dashstream_kafka_disconnects_total{node_id}
	writeBytes    *prometheus.CounterVec   // dashstream_kafka_write_bytes_total{node_id}
	writeErrors   *prometheus.CounterVec   // dashstream_kafka_write_errors_total{node_id}
	readBytes     *prometheus.CounterVec   // dashstream_kafka_read_bytes_total{node_id}
	readErrors    *prometheus.CounterVec   // dashstream_kafka_read_errors_total{node_id}
	requestTime   *prometheus.HistogramVec // dashstream_kafka_request_duration_seconds{node_id}
	fetchRecords  prometheus.Counter       // dashstream_kafka_fetch_records_total
	fetchBytes    prometheus.Counter       // dashstream_kafka_fetch_uncompressed_bytes_total
	produceBytes  prometheus.Counter       // dashstream_kafka_produce_uncompressed_bytes_total
}

// NewClientMetrics builds and registers the collectors on reg.
func NewClientMetrics(reg prometheus.Registerer) (*ClientMetrics, error) {
	node := []string{"node_id"}
	cv := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dashstream_kafka_" + name, Help: help}, node)
	}
	c := prometheus.NewCounter
	m := &ClientMetrics{
		connects:      cv("connects_total", "Connections opened to brokers."),
		connectErrors: cv("connect_errors_total", "Failed connection attempts to brokers."),
		disconnects:   cv("disconnects_total", "Connections to brokers closed."),
		writeBytes:    cv("write_bytes_total", "Bytes written to brokers."),
		writeErrors:   cv("write_errors_total", "Failed writes to brokers."),
		readBytes:     cv("read_bytes_total", "Bytes read from brokers."),
		readErrors:    cv("read_errors_total", "Failed reads from brokers."),
		requestTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dashstream_kafka_request_duration_seconds",
			Help: "Time from writing a request to reading its response.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9)}, node),
		fetchRecords: c(prometheus.CounterOpts{Name: "dashstream_kafka_fetch_records_total", Help: "Records fetched."}),
		fetchBytes:   c(prometheus.CounterOpts{Name: "dashstream_kafka_fetch_uncompressed_bytes_total", Help: "Uncompressed bytes of fetched batches."}),
		produceBytes: c(prometheus.CounterOpts{Name: "dashstream_kafka_produce_uncompressed_bytes_total", Help: "Uncompressed bytes of produced batches (DLQ, demo)."}),
	}
	for _, col := range []prometheus.Collector{m.connects, m.connectErrors, m.disconnects, m.writeBytes,
		m.writeErrors, m.readBytes, m.readErrors, m.requestTime, m.fetchRecords, m.fetchBytes, m.produceBytes} {
		if err := reg.Register(col); err != nil {
			return nil, errors.Join(errors.New("kafka: client metrics"), err)
		}
	}
	return m, nil
}

func nodeLabel(meta kgo.BrokerMetadata) string { return strconv.Itoa(int(meta.NodeID)) }

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (m *ClientMetrics) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		m.connectErrors.WithLabelValues(nodeLabel(meta)).Inc()
		return
	}
	m.connects.WithLabelValues(nodeLabel(meta)).Inc()
}

// OnBrokerDisconnect implements kgo.HookBrokerDisconnect.
func (m *ClientMetrics) OnBrokerDisconnect(meta kgo.BrokerMetadata, _ net.Conn) {
	m.disconnects.WithLabelValues(nodeLabel(meta)).Inc()
}

// OnBrokerWrite implements kgo.HookBrokerWrite.
func (m *ClientMetrics) OnBrokerWrite(meta kgo.BrokerMetadata, _ int16, n int, _, _ time.Duration, err error) {
	if err != nil {
		m.writeErrors.WithLabelValues(nodeLabel(meta)).Inc()
		return
	}
	m.writeBytes.WithLabelValues(nodeLabel(meta)).Add(float64(n))
}

// OnBrokerE2E implements kgo.HookBrokerE2E.
func (m *ClientMetrics) OnBrokerE2E(meta kgo.BrokerMetadata, _ int16, e2e kgo.BrokerE2E) {
	node := nodeLabel(meta)
	if e2e.Err() != nil {
		m.readErrors.WithLabelValues(node).Inc()
		return
	}
	m.readBytes.WithLabelValues(node).Add(float64(e2e.BytesRead))
	m.requestTime.WithLabelValues(node).Observe(e2e.DurationE2E().Seconds())
}

// OnFetchBatchRead implements kgo.HookFetchBatchRead.
func (m *ClientMetrics) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, fm kgo.FetchBatchMetrics) {
	m.fetchRecords.Add(float64(fm.NumRecords))
	m.fetchBytes.Add(float64(fm.UncompressedBytes))
}

// OnProduceBatchWritten implements kgo.HookProduceBatchWritten.
func (m *ClientMetrics) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, pm kgo.ProduceBatchMetrics) {
	m.produceBytes.Add(float64(pm.UncompressedBytes))
}

var (
	_ kgo.HookBrokerConnect       = (*ClientMetrics)(nil)
	_ kgo.HookBrokerDisconnect    = (*ClientMetrics)(nil)
	_ kgo.HookBrokerWrite         = (*ClientMetrics)(nil)
	_ kgo.HookBrokerE2E           = (*ClientMetrics)(nil)
	_ kgo.HookFetchBatchRead      = (*ClientMetrics)(nil)
	_ kgo.HookProduceBatchWritten = (*ClientMetrics)(nil)
)
