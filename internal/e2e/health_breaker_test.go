package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// healthBreaker is the part of /health these tests read.
type healthBreaker struct {
	ReplayBuffer struct {
		MemoryBufferSize  int   `json:"memory_buffer_size"`
		MaxMemorySize     int   `json:"max_memory_size"`
		MemoryBufferBytes int64 `json:"memory_buffer_bytes"`
		MaxMemoryBytes    int64 `json:"max_memory_bytes"`
	} `json:"replay_buffer"`
	CircuitBreaker *struct {
		State               string `json:"state"`
		RedisConfigured     bool   `json:"redis_configured"`
		ConsecutiveFailures int    `json:"consecutive_failures"`
		TimesOpened         int    `json:"times_opened"`
		OpenedAgoSeconds    *int64 `json:"opened_ago_seconds"`
	} `json:"circuit_breaker"`
}

func getHealthBreaker(t *testing.T, g *gateway) healthBreaker {
	t.Helper()
	code, body := g.get("/health")
	var h healthBreaker
	if err := json.Unmarshal(body, &h); code != 200 || err != nil {
		t.Fatalf("/health: %d %v: %s", code, err, body)
	}
	if h.CircuitBreaker == nil {
		t.Fatalf("/health has no circuit_breaker: %s", body)
	}
	return h
}

// TestHealthCircuitBreakerRedisOutage: /health's circuit_breaker follows
// a real (private) Redis: healthy, open with the time it has been down once
// Redis is killed, healthy again after it is restarted.
func TestHealthCircuitBreakerRedisOutage(t *testing.T) {
	k, topic := kafkaEnv(t, 1)
	srv := testenv.StartRedis(t)
	g := startGateway(t, redisEnv(k, topic, srv.URL, nil))
	testenv.WaitFor(t, 30*time.Second, func() bool {
		return getHealthBreaker(t, g).CircuitBreaker.State == "healthy"
	}, "circuit_breaker healthy with Redis up")
	if cb := getHealthBreaker(t, g).CircuitBreaker; !cb.RedisConfigured || cb.OpenedAgoSeconds != nil || cb.TimesOpened != 0 {
		t.Fatalf("healthy breaker: %+v", *cb)
	}

	srv.Kill(t)
	var h healthBreaker
	testenv.WaitFor(t, 30*time.Second, func() bool {
		produceEvents(t, k, topic, 0, 0, 5) // writes to the dead Redis fail and open the breaker
		h = getHealthBreaker(t, g)
		return h.CircuitBreaker.State == "open"
	}, "circuit_breaker open after Redis was killed")
	if cb := h.CircuitBreaker; cb.ConsecutiveFailures == 0 || cb.TimesOpened != 1 || cb.OpenedAgoSeconds == nil {
		t.Fatalf("open breaker: %+v", *cb)
	}

	srv.Start(t)
	testenv.WaitFor(t, 30*time.Second, func() bool {
		h = getHealthBreaker(t, g)
		return h.CircuitBreaker.State == "healthy"
	}, "circuit_breaker healthy after Redis came back")
	if cb := h.CircuitBreaker; cb.ConsecutiveFailures != 0 || cb.TimesOpened != 1 || cb.OpenedAgoSeconds != nil {
		t.Fatalf("recovered breaker: %+v", *cb)
	}
}

// TestHealthMemoryBufferOverPartitions: memory_buffer_size and
// max_memory_size count records over all partitions, so a full buffer of
// three partitions shows 3×cap/3×cap (it showed 3×cap/cap), and without
// Redis circuit_breaker is present, healthy and not configured.
func TestHealthMemoryBufferOverPartitions(t *testing.T) {
	const perPartition = 50
	k, topic := kafkaEnv(t, 3)
	env := gatewayEnv(k, topic)
	env["REPLAY_BUFFER_MEMORY_SIZE"] = "50"
	g := startGateway(t, env)
	for p := range int32(3) {
		produceEvents(t, k, topic, p, 0, perPartition+20)
	}
	var h healthBreaker
	testenv.WaitFor(t, 30*time.Second, func() bool {
		h = getHealthBreaker(t, g)
		return h.ReplayBuffer.MemoryBufferSize == 3*perPartition
	}, "memory buffer full on all three partitions")
	rb := h.ReplayBuffer
	if rb.MaxMemorySize != 3*perPartition || rb.MemoryBufferBytes <= 0 || rb.MaxMemoryBytes != 64<<20 {
		t.Fatalf("replay_buffer %+v, want max_memory_size %d and the 64 MiB byte bound", rb, 3*perPartition)
	}
	if cb := h.CircuitBreaker; cb.State != "healthy" || cb.RedisConfigured {
		t.Fatalf("circuit_breaker without Redis: %+v", *cb)
	}
}
