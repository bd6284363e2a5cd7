package metrics

import (
	"sync/atomic"
	"time"
)

// tally holds the /health numbers: atomic totals, 120 s windows and
// last-event times (unix nanoseconds, 0 = never).
type tally struct {
	start time.Time

	messages, decodeErrors, oldDecodeErrors, payloadMissing atomic.Uint64
	kafkaErrors, infraErrors, droppedTotal                  atomic.Uint64
	sendFailedTotal, sendTimeoutTotal                       atomic.Uint64
	clients                                                 atomic.Int64

	memoryHits, redisHits, redisMisses, redisWriteDropped, redisWriteFailures atomic.Uint64

	lastMessage, lastDrop, lastInfraError atomic.Int64

	messagesW, decodeW, droppedW, sendFailedW, sendTimeoutW window
}

func newTally(start time.Time) *tally {
	return &tally{start: start}
}

func (t *tally) message(now time.Time) {
	t.messages.Add(1)
	t.lastMessage.Store(now.UnixNano())
	t.messagesW.add(now.Unix(), 1)
}

func (t *tally) decodeError(now time.Time) {
	t.decodeErrors.Add(1)
	t.decodeW.add(now.Unix(), 1)
}

func (t *tally) infraError(now time.Time) {
	t.infraErrors.Add(1)
	t.lastInfraError.Store(now.UnixNano())
}

func (t *tally) dropped(now time.Time, n uint64) {
	t.droppedTotal.Add(n)
	t.lastDrop.Store(now.UnixNano())
	t.droppedW.add(now.Unix(), n)
}

func (t *tally) sendFailed(now time.Time) {
	t.sendFailedTotal.Add(1)
	t.sendFailedW.add(now.Unix(), 1)
}

func (t *tally) sendTimeout(now time.Time) {
	t.sendTimeoutTotal.Add(1)
	t.sendTimeoutW.add(now.Unix(), 1)
}

// HealthCounters is the "metrics" object of the /health JSON (docs/PROTOCOL.md §5). The
// *AgoSeconds pointers are nil (JSON null) when the event never happened.
type HealthCounters struct {
	// KafkaMessagesReceived counts records that decoded successfully.
	KafkaMessagesReceived uint64 `json:"kafka_messages_received"`
	KafkaErrors           uint64 `json:"kafka_errors"`
	InfrastructureErrors  uint64 `json:"infrastructure_errors"`
	ConnectedClients      int64  `json:"connected_clients"`
	UptimeSeconds         int64  `json:"uptime_seconds"`
	// LastKafkaMessageAgoSeconds is nil until the first record.
	LastKafkaMessageAgoSeconds *int64 `json:"last_kafka_message_ago_seconds"`
	DroppedMessages            uint64 `json:"dropped_messages"`
	DroppedMessagesLast120s    uint64 `json:"dropped_messages_last_120s"`
	LastDropAgoSeconds         *int64 `json:"last_drop_ago_seconds"`
	// DecodeErrors counts failures in new data; OldDataDecodeErrors those in
	// catch-up history.
	DecodeErrors                      uint64 `json:"decode_errors"`
	OldDataDecodeErrors               uint64 `json:"old_data_decode_errors"`
	PayloadMissing                    uint64 `json:"payload_missing"`
	LastInfrastructureErrorAgoSeconds *int64 `json:"last_infrastructure_error_ago_seconds"`
	// DecodeErrorsLast120s counts failures in new data only.
	DecodeErrorsLast120s uint64 `json:"decode_errors_last_120s"`
	MessagesLast120s     uint64 `json:"messages_last_120s"`
	SendFailed           uint64 `json:"send_failed"`
	SendTimeout          uint64 `json:"send_timeout"`
	SendFailedLast120s   uint64 `json:"send_failed_last_120s"`
	SendTimeoutLast120s  uint64 `json:"send_timeout_last_120s"`
}

// Health returns a snapshot of the /health numbers.
func (m *Metrics) Health() HealthCounters {
	t, now := m.tally, m.now()
	sec := now.Unix()
	return HealthCounters{
		KafkaMessagesReceived:             t.messages.Load(),
		KafkaErrors:                       t.kafkaErrors.Load(),
		InfrastructureErrors:              t.infraErrors.Load(),
		ConnectedClients:                  t.clients.Load(),
		UptimeSeconds:                     int64(now.Sub(t.start) / time.Second),
		LastKafkaMessageAgoSeconds:        agoSeconds(now, t.lastMessage.Load()),
		DroppedMessages:                   t.droppedTotal.Load(),
		DroppedMessagesLast120s:           t.droppedW.sum(sec),
		LastDropAgoSeconds:                agoSeconds(now, t.lastDrop.Load()),
		DecodeErrors:                      t.decodeErrors.Load(),
		OldDataDecodeErrors:               t.oldDecodeErrors.Load(),
		PayloadMissing:                    t.payloadMissing.Load(),
		LastInfrastructureErrorAgoSeconds: agoSeconds(now, t.lastInfraError.Load()),
		DecodeErrorsLast120s:              t.decodeW.sum(sec),
		MessagesLast120s:                  t.messagesW.sum(sec),
		SendFailed:                        t.sendFailedTotal.Load(),
		SendTimeout:                       t.sendTimeoutTotal.Load(),
		SendFailedLast120s:                t.sendFailedW.sum(sec),
		SendTimeoutLast120s:               t.sendTimeoutW.sum(sec),
	}
}

// agoSeconds is whole seconds from the unix-nanosecond time at to now, never
// negative, or nil when at is 0 (never).
func agoSeconds(now time.Time, at int64) *int64 {
	if at == 0 {
		return nil
	}
	d := max(now.UnixNano()-at, 0) / int64(time.Second)
	return &d
}

// ReplayCounters are the replay-tier totals of the /health "replay_buffer"
// object; the sizes there come from the replay store itself.
type ReplayCounters struct {
	MemoryHits         uint64
	RedisHits          uint64
	RedisMisses        uint64
	RedisWriteDropped  uint64
	RedisWriteFailures uint64
}

// Replay returns a snapshot of the replay-tier totals.
func (m *Metrics) Replay() ReplayCounters {
	t := m.tally
	return ReplayCounters{
		MemoryHits:         t.memoryHits.Load(),
		RedisHits:          t.redisHits.Load(),
		RedisMisses:        t.redisMisses.Load(),
		RedisWriteDropped:  t.redisWriteDropped.Load(),
		RedisWriteFailures: t.redisWriteFailures.Load(),
	}
}
