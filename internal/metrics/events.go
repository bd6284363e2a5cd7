package metrics

// Event methods: each updates the Prometheus collector and the /health tally
// from one call, so the two never disagree. Label arguments are guarded: an
// unexpected value beyond a small per-label budget is counted as "other".

// Decode failure kinds (docs/PROTOCOL.md §2.6), the values of error_type labels.
const (
	KindEmptyPayload             = "empty_payload"
	KindPayloadMissing           = "payload_missing"
	KindPayloadTooLarge          = "payload_too_large"
	KindBadZstd                  = "bad_zstd"
	KindDecompressedTooLarge     = "decompressed_too_large"
	KindInvalidProtobuf          = "invalid_protobuf"
	KindSchemaVersionUnsupported = "schema_version_unsupported"
)

// KafkaMessage counts one record that decoded successfully. It is called per
// record: atomics only, no lock, no allocation.
func (m *Metrics) KafkaMessage() {
	m.hot.success.Inc()
	m.tally.message(m.now())
}

// DecodeError counts one decode failure of the given kind (a Kind* constant).
// oldData marks a failure in catch-up history, which is counted apart and is
// not alarming. A payload_missing failure also counts as a missing payload:
// call DecodeError or PayloadMissing for one record, not both.
func (m *Metrics) DecodeError(kind string, oldData bool) {
	kind = m.label("error_type", kind)
	m.DecodeErrors.WithLabelValues(kind).Inc()
	if kind == KindPayloadMissing {
		m.KafkaPayloadMissing.Inc()
		m.tally.payloadMissing.Add(1)
	}
	if oldData {
		m.hot.decodeOld.Inc()
		m.OldDataDecodeErrors.Inc()
		m.tally.oldDecodeErrors.Add(1)
		return
	}
	m.hot.decodeNew.Inc()
	m.tally.decodeError(m.now())
}

// PayloadMissing counts a record with a null value; it is
// DecodeError(KindPayloadMissing, oldData).
func (m *Metrics) PayloadMissing(oldData bool) {
	m.DecodeError(KindPayloadMissing, oldData)
}

// KafkaError counts one Kafka client error of a short, bounded type.
func (m *Metrics) KafkaError(errType string) {
	m.KafkaErrorsByType.WithLabelValues(m.label("kafka_error_type", errType)).Inc()
	m.tally.kafkaErrors.Add(1)
}

// InfraError counts one error of the gateway's own infrastructure.
func (m *Metrics) InfraError() {
	m.InfrastructureErrors.Inc()
	m.tally.infraError(m.now())
}

// Dropped counts n messages not delivered to a client, for a bounded reason.
func (m *Metrics) Dropped(reason string, n int) {
	if n <= 0 {
		return
	}
	m.DroppedMessages.WithLabelValues(m.label("reason", reason)).Add(float64(n))
	m.tally.dropped(m.now(), uint64(n))
}

// SendFailedEvent counts one failed WebSocket write.
func (m *Metrics) SendFailedEvent() {
	m.SendFailed.Inc()
	m.tally.sendFailed(m.now())
}

// SendTimeoutEvent counts one WebSocket write that missed its deadline.
func (m *Metrics) SendTimeoutEvent() {
	m.SendTimeout.Inc()
	m.tally.sendTimeout(m.now())
}

// ClientConnected counts a WebSocket client that completed its upgrade.
func (m *Metrics) ClientConnected() {
	m.ConnectedClients.Inc()
	m.tally.clients.Add(1)
}

// ClientDisconnected undoes ClientConnected; call it exactly once per client.
func (m *Metrics) ClientDisconnected() {
	m.ConnectedClients.Dec()
	m.tally.clients.Add(-1)
}

// Rejected counts a connection refused before the upgrade (a Reject* reason).
func (m *Metrics) Rejected(reason string) {
	m.RejectedConnections.WithLabelValues(m.label("reject_reason", reason)).Inc()
}

// ReplayTierHit counts one replay read served by tier (a Tier* constant).
func (m *Metrics) ReplayTierHit(tier string) {
	tier = m.label("tier", tier)
	m.ReplayTierHits.WithLabelValues(tier).Inc()
	switch tier {
	case TierMemory:
		m.ReplayMemoryHits.Inc()
		m.tally.memoryHits.Add(1)
	case TierRedis:
		m.ReplayRedisHits.Inc()
		m.tally.redisHits.Add(1)
	}
}

// ReplayRedisMiss counts one replay read Redis could not serve.
func (m *Metrics) ReplayRedisMiss() {
	m.ReplayRedisMisses.Inc()
	m.tally.redisMisses.Add(1)
}

// RedisWriteDropped counts one Redis write dropped without being tried.
func (m *Metrics) RedisWriteDropped() {
	m.ReplayRedisWriteDropped.Inc()
	m.tally.redisWriteDropped.Add(1)
}

// RedisWriteFailed counts one Redis write that failed.
func (m *Metrics) RedisWriteFailed() {
	m.ReplayRedisWriteFailures.Inc()
	m.tally.redisWriteFailures.Add(1)
}
