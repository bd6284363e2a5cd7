// Package testenv gives integration tests real Apache Kafka and Redis.
//
// Two kinds of service exist:
//
//   - Shared ones, started once by `make test` (scripts/test.sh) and named by
//     the environment: [Kafka] reads KAFKA_BROKERS, [Redis] reads REDIS_URL.
//     Tests isolate themselves with unique names ([KafkaEnv.Topic],
//     [RedisEnv.Prefix]) and clean up after themselves.
//   - Private ones, for tests that stop, kill or flush a service:
//     [StartKafka] and [StartRedis] run scripts/kafka.sh and scripts/redis.sh
//     with a fresh state dir on free ports and stop them in t.Cleanup.
//
// When a shared service is not configured the test is skipped, so `go test`
// without services runs the unit tests only; with DASHSTREAM_INTEGRATION=1
// (set by `make test`) a missing service fails the test instead, so CI never
// passes by skipping.
//
// Every helper takes the testing.TB it reports to and registers its cleanup
// there. Envs are safe for concurrent use by parallel subtests. The package
// reads the environment and keeps no global state.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Environment variables read by this package.
const (
	EnvIntegration  = "DASHSTREAM_INTEGRATION" // "1": missing services fail instead of skip
	EnvKafkaBrokers = "KAFKA_BROKERS"          // comma-separated host:port list
	EnvRedisURL     = "REDIS_URL"              // redis://host:port/db
)

// DefaultTimeout bounds one helper operation (an admin request, a produce, a
// Redis command) when an env's Timeout field is zero.
const DefaultTimeout = 30 * time.Second

// Integration reports whether integration tests are required
// (DASHSTREAM_INTEGRATION=1), as under `make test` and in CI.
func Integration() bool { return os.Getenv(EnvIntegration) == "1" }

// unavailable skips the test, or fails it when integration tests are required.
func unavailable(t testing.TB, msg string) {
	t.Helper()
	if Integration() {
		t.Fatalf("%s (%s=1 requires it)", msg, EnvIntegration)
	}
	t.Skip(msg)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, chosen
// below the kernel's ephemeral range: a port from listening on :0 could be
// handed to any other process's listener or outgoing connection the moment
// a test stops its server, and the restart would then fail.
func FreePort(t testing.TB) int {
	t.Helper()
	return freePorts(t, 1)[0]
}

// Ports below the ephemeral range are picked at random from [portLow, first
// ephemeral port); 16379 and 19092-19093 (the shared services) lie below it.
const portLow = 20000

// ReservedPortLow..ReservedPortHigh is a block FreePort never picks: a suite
// that chooses its ports itself and binds them later (the chaos suite's
// proxies) takes them from here, so a broker or Redis started in between
// cannot have taken one.
const (
	ReservedPortLow  = 24100 // first port of the reserved block
	ReservedPortHigh = 24199 // last port of the reserved block
)

// freePorts returns n distinct free ports. Their listeners stay open until
// every port is chosen, so no port is returned twice.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	high := ephemeralLow()
	ports := make([]int, 0, n)
	for attempt := 0; len(ports) < n; attempt++ {
		var ln net.Listener
		var err error
		if high-portLow >= 1000 && attempt < 1000 {
			p := portLow + mrand.IntN(high-portLow)
			if p >= ReservedPortLow && p <= ReservedPortHigh {
				continue // another suite's block
			}
			ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				continue // taken: draw again
			}
		} else if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatalf("testenv: pick free port: %v", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default 32768 when it cannot be read).
func ephemeralLow() int {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	return low
}

// WaitFor polls cond until it returns true, failing the test with msg after
// timeout. Polling starts fast (10 ms) and backs off to 250 ms.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pause := 10 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("testenv: timed out after %v waiting for: %s", timeout, msg)
		}
		time.Sleep(pause)
		pause = min(pause*2, 250*time.Millisecond)
	}
}

// opContext bounds one operation by timeout, or DefaultTimeout when zero.
func opContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return context.WithTimeout(context.Background(), timeout)
}

// uniqueName turns a test name into a unique identifier of [A-Za-z0-9-] that
// is at most maxLen long: "t-<sanitized name>-<8 hex>".
func uniqueName(testName string, maxLen int) string {
	var b strings.Builder
	for _, r := range testName {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	const fixed = len("t--") + 8
	name := b.String()
	if len(name) > maxLen-fixed {
		name = name[:maxLen-fixed]
	}
	return "t-" + name + "-" + randomHex(4)
}

func randomHex(n int) string {
	buf := make([]byte, n)
	rand.Read(buf) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(buf)
}

// checkErr fails the test with a testenv-prefixed message when err is set.
func checkErr(t testing.TB, err error, format string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("testenv: %s: %v", fmt.Sprintf(format, args...), err)
	}
}
