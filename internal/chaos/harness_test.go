package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// EnvMode selects the scenarios: "fast" (the subset `make test` runs),
// "full" (`make chaos`); unset skips the suite.
const EnvMode = "DASHSTREAM_CHAOS"

// mode skips t unless the suite was asked for, and returns whether the full
// suite runs.
func mode(t *testing.T) (full bool) {
	t.Helper()
	switch m := os.Getenv(EnvMode); m {
	case "fast":
		return false
	case "full":
		return true
	case "":
		t.Skipf("chaos suite skipped: set %s=fast (make test) or %s=full (make chaos)", EnvMode, EnvMode)
	default:
		t.Fatalf("%s=%q: want fast or full", EnvMode, m)
	}
	return false
}

// Ports of the suite's own listeners (toxiproxy API, proxies, gateways) are
// taken from this loopback range, free ones only: testenv's block that its
// brokers and Redis servers never take (a proxy's port chosen before the
// broker starts is bound only after).
const portLow, portHigh = testenv.ReservedPortLow, testenv.ReservedPortHigh

var (
	portMu   sync.Mutex
	portNext = portLow
)

// port returns a free port of the suite's range, never the same twice in
// one run.
func port(t testing.TB) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for ; portNext <= portHigh; portNext++ {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(portNext))
		if err != nil {
			continue
		}
		ln.Close()
		portNext++
		return portNext - 1
	}
	t.Fatalf("chaos: no free port left in %d-%d", portLow, portHigh)
	return 0
}

// world is what every scenario shares: the gateway binary, a private broker
// and Redis, toxiproxy, and the two proxies the gateways go through.
type world struct {
	bin        string
	kafka      *testenv.KafkaServer
	redis      *testenv.RedisServer
	tp         *Toxiproxy
	kafkaProxy *toxiproxy.Proxy
	redisProxy *toxiproxy.Proxy
	kafkaAddr  string // the gateways' seed broker: the Kafka proxy
	redisURL   string // the gateways' Redis: the Redis proxy
}

func newWorld(t *testing.T) *world {
	t.Helper()
	start := time.Now()
	w := &world{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w.bin = bin
	w.tp = StartToxiproxy(t, port(t))
	kafkaProxyPort, proxiedPort := port(t), port(t)
	w.kafka = testenv.StartKafkaConfig(t, testenv.ServerConfig{
		KafkaProxied: &testenv.ProxiedListener{Port: proxiedPort, Advertised: "127.0.0.1:" + strconv.Itoa(kafkaProxyPort)},
		// A restarted broker is back sooner; the suite kills it repeatedly.
		KafkaProperties: []string{"group.initial.rebalance.delay.ms=0"},
	})
	w.redis = testenv.StartRedis(t)
	w.kafkaProxy = w.tp.Proxy(t, "kafka", kafkaProxyPort, "127.0.0.1:"+strconv.Itoa(proxiedPort))
	redisProxyPort := port(t)
	w.redisProxy = w.tp.Proxy(t, "redis", redisProxyPort, "127.0.0.1:"+strconv.Itoa(w.redis.Port))
	w.kafkaAddr = "127.0.0.1:" + strconv.Itoa(kafkaProxyPort)
	w.redisURL = "redis://127.0.0.1:" + strconv.Itoa(redisProxyPort) + "/0"
	t.Logf("chaos: world ready in %v: kafka %v (gateways via %s), redis :%d (gateways via %s), toxiproxy %s",
		time.Since(start).Round(time.Millisecond), w.kafka.Brokers, w.kafkaAddr, w.redis.Port, w.redisURL, w.tp.URL)
	return w
}

// scenario is one test's topic, producer, gateways and clients.
type scenario struct {
	t          *testing.T
	w          *world
	topic      string
	partitions int32
	prod       *Producer
	clients    []*Client
}

func (w *world) scenario(t *testing.T, partitions int32) *scenario {
	t.Helper()
	// Toxics and disabled proxies never outlive their scenario.
	if err := w.tp.ResetState(); err != nil {
		t.Fatalf("chaos: reset toxiproxy: %v", err)
	}
	w.kafka.Start(t) // a no-op when it runs; a failed scenario may have left it down
	w.redis.Start(t)
	return &scenario{t: t, w: w, topic: w.kafka.Topic(t, partitions), partitions: partitions}
}

// gatewayEnv is the configuration every instance of the scenario shares.
func (s *scenario) gatewayEnv(extra map[string]string) map[string]string {
	env := map[string]string{
		"KAFKA_BROKERS": s.w.kafkaAddr, "KAFKA_TOPIC": s.topic, "REDIS_URL": s.w.redisURL,
		"KAFKA_AUTO_OFFSET_RESET": "earliest", "KAFKA_PROGRESS_INTERVAL_SECS": "1",
		"LOG_LEVEL": "info", "EXPECTED_SCHEMAS_PATH": filepath.Join(s.t.TempDir(), "schemas.json"),
		"WEBSOCKET_MAX_CONNECTIONS_PER_IP": "10000", "WEBSOCKET_CONNECT_RATE_PER_IP": "10000",
		"WEBSOCKET_CONNECT_BURST_PER_IP": "10000", "SHUTDOWN_TIMEOUT_SECS": "5",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// gateway prepares an instance named after the scenario (its INSTANCE_ID).
func (s *scenario) gateway(name string, extra map[string]string) *Gateway {
	s.t.Helper()
	id := name + "-" + s.topic[len(s.topic)-8:]
	return NewGateway(s.t, s.w.bin, id, port(s.t), s.gatewayEnv(extra))
}

// startGateway starts an instance and waits until it is ready.
func (s *scenario) startGateway(name string, extra map[string]string) *Gateway {
	s.t.Helper()
	g := s.gateway(name, extra)
	g.Start()
	if took, ok := g.WaitReady(true, 90*time.Second); !ok {
		s.t.Fatalf("chaos: gateway %s not ready after %v", g.Name, took)
	}
	return g
}

func (s *scenario) startProducer(rate int) {
	s.t.Helper()
	p, err := StartProducer(ProducerConfig{Brokers: s.w.kafka.Brokers, Topic: s.topic,
		Partitions: s.partitions, Rate: rate, Run: s.topic[len(s.topic)-8:]})
	if err != nil {
		s.t.Fatal(err)
	}
	s.prod = p
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Stop(ctx) // idempotent enough: a second Stop finds the client closed
	})
}

// startClients starts n clients following urls (failing over in order).
func (s *scenario) startClients(n int, offsets map[int32]int64, urls ...string) []*Client {
	var out []*Client
	for i := range n {
		c := StartClient(fmt.Sprintf("c%d", len(s.clients)+i), offsets, urls...)
		s.t.Cleanup(func() { c.Stop() })
		out = append(out, c)
	}
	s.clients = append(s.clients, out...)
	return out
}

// finish stops the producer, waits until every client has applied the whole
// topic (bounded), stops them and audits each against Kafka, in namespace ns
// ("" for all). It fails the test on any lost, duplicated, corrupt or
// phantom record.
func (s *scenario) finish(ns string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.prod.Stop(ctx); err != nil {
		s.t.Errorf("chaos: %v", err)
	}
	acked, failed := s.prod.Count()
	topic, err := ReadTopic(ctx, s.w.kafka.Brokers, s.topic)
	if err != nil {
		s.t.Fatal(err)
	}
	missing, differ := KafkaLoss(topic, s.prod.Acked())
	s.t.Logf("chaos: %s producer acked=%d failed=%d kafka_records=%d acked_missing_in_kafka=%d acked_differ=%d",
		s.t.Name(), acked, failed, len(topic.Records), missing, differ)
	if missing+differ > 0 {
		s.t.Errorf("chaos: Kafka lost acknowledged records: %d missing, %d differ", missing, differ)
	}
	start := time.Now()
	for _, c := range s.clients {
		for !c.CaughtUp(topic.Ends) && time.Since(start) < 90*time.Second {
			time.Sleep(100 * time.Millisecond)
		}
	}
	s.t.Logf("chaos: %s drain took %v", s.t.Name(), time.Since(start).Round(time.Millisecond))
	for _, c := range s.clients {
		if err := c.Stop(); err != nil {
			s.t.Errorf("chaos: %v", err)
		}
		r := Audit(topic, c.Log(), ns)
		s.t.Logf("chaos: %s %s closes=%d controls=%v error_codes=%v", s.t.Name(), r, len(c.Closes()), c.Controls(), c.ErrorCodes())
		for _, d := range c.Disconnects() {
			s.t.Logf("chaos: %s client=%s disconnect frame %s", s.t.Name(), c.Name, d)
		}
		if !r.OK() {
			s.t.Errorf("chaos: client %s: %s", c.Name, r)
		}
	}
}

// waitRecordsAfter waits until every client applied a record after t and
// returns the longest wait (the clients' recovery time), bounded by timeout.
func (s *scenario) waitRecordsAfter(at time.Time, timeout time.Duration) (time.Duration, bool) {
	deadline := at.Add(timeout)
	for _, c := range s.clients {
		for !c.LastRecord().After(at) {
			if time.Now().After(deadline) {
				return timeout, false
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return time.Since(at), true
}

// readySampler samples /readyz every 100 ms and counts the samples that
// were not 200, until stop.
type readySampler struct {
	stop     chan struct{}
	done     chan struct{}
	notReady int
	samples  int
}

func sampleReady(g *Gateway) *readySampler {
	rs := &readySampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(rs.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-rs.stop:
				return
			case <-t.C:
			}
			rs.samples++
			if !g.Ready() {
				rs.notReady++
			}
		}
	}()
	return rs
}

func (rs *readySampler) end() (notReady, samples int) {
	close(rs.stop)
	<-rs.done
	return rs.notReady, rs.samples
}

// toxic adds a toxic to p and removes it when the returned func is called.
func toxic(t *testing.T, p *toxiproxy.Proxy, typ, stream string, attrs toxiproxy.Attributes) func() {
	t.Helper()
	name := typ + "_" + stream
	if _, err := p.AddToxic(name, typ, stream, 1, attrs); err != nil {
		t.Fatalf("chaos: add toxic %s on %s: %v", name, p.Name, err)
	}
	return func() {
		if err := p.RemoveToxic(name); err != nil {
			t.Errorf("chaos: remove toxic %s on %s: %v", name, p.Name, err)
		}
	}
}
