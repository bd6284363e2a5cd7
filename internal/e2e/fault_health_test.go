package e2e

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// Readiness follows Kafka within readinessBound both ways (docs/PROTOCOL.md,
// health); the assertions allow readinessSlack more for a loaded test machine.
const (
	readinessBound = 3 * time.Second
	readinessSlack = 3 * time.Second
)

// TestFaultHealthBrokerKillAndRestart: the gateway's private broker is
// killed (SIGKILL) while a client reads: /readyz turns 503 within about 3 s
// (a quiet topic, so no fetch has to fail first). When the broker is back,
// /readyz is 200 again within about 3 s and records flow to the client.
func TestFaultHealthBrokerKillAndRestart(t *testing.T) {
	srv := testenv.StartKafka(t)
	topic := srv.Topic(t, 1)
	g := startGateway(t, gatewayEnv(srv.KafkaEnv, topic))
	c := dialCursor(g, cursorAll(1, -1))
	produceEvents(t, srv.KafkaEnv, topic, 0, 0, 3)
	readN(t, c, 3, 30*time.Second)
	if code, body := g.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz %d before the kill: %s", code, body)
	}

	srv.Kill(t)
	killed := time.Now()
	waitReadyz(t, g, http.StatusServiceUnavailable, 30*time.Second)
	down := time.Since(killed)
	h := getHealth(t, g)

	srv.Start(t)
	up := time.Now()
	waitReadyz(t, g, http.StatusOK, 60*time.Second)
	ready := time.Since(up)
	produceEvents(t, srv.KafkaEnv, topic, 0, 3, 3)
	readN(t, c, 3, 60*time.Second)
	flowing := time.Since(up)

	t.Logf("broker SIGKILL: /readyz 503 after %v (/health %s, alert %q); broker back: /readyz 200 after %v, records delivered %v after it answered",
		down.Round(time.Millisecond), h.Status, h.Alert, ready.Round(time.Millisecond), flowing.Round(time.Millisecond))
	if down > readinessBound+readinessSlack {
		t.Errorf("/readyz turned 503 %v after the kill, want about %v", down, readinessBound)
	}
	if ready > readinessBound+readinessSlack {
		t.Errorf("/readyz turned 200 %v after the broker answered, want about %v", ready, readinessBound)
	}
	if h.Status != "reconnecting" {
		t.Errorf("/health status %q while Kafka is down, want reconnecting", h.Status)
	}
}

// TestFaultHealthKafkaDownAtStart: the gateway starts while its broker is
// down and Redis is up. /readyz is 503, /health does not blame Redis (its
// state comes from Redis itself, not from the wait for Kafka's namespace).
// Once the broker is up, consumption begins within the capped startup
// backoff (5 s) plus a margin.
func TestFaultHealthKafkaDownAtStart(t *testing.T) {
	srv := testenv.StartKafka(t)
	topic := srv.Topic(t, 1)
	produceEvents(t, srv.KafkaEnv, topic, 0, 0, 3)
	r := testenv.Redis(t)
	srv.Stop(t)

	g := startGateway(t, redisEnv(srv.KafkaEnv, topic, r.URL, nil), unready())
	time.Sleep(8 * time.Second) // several failed attempts: the backoff grows
	if code, _ := g.get("/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz %d with Kafka down", code)
	}
	h := getHealth(t, g)
	if strings.Contains(strings.ToLower(h.Alert), "redis") {
		t.Fatalf("/health blames Redis while only Kafka is down: %q", h.Alert)
	}

	srv.Start(t)
	up := time.Now()
	testenv.WaitFor(t, 60*time.Second, func() bool { o, ok := g.Hub().Heads()[0]; return ok && o == 2 }, "records consumed")
	consumed := time.Since(up)
	waitReadyz(t, g, http.StatusOK, 30*time.Second)
	ready := time.Since(up)
	t.Logf("Kafka down at start (alert %q, no Redis blame): consumption began %v and /readyz 200 %v after the broker answered",
		h.Alert, consumed.Round(time.Millisecond), ready.Round(time.Millisecond))
	if consumed > 5*time.Second+5*time.Second {
		t.Errorf("consumption began %v after the broker answered, want within the 5 s backoff cap plus margin", consumed)
	}
}

// TestFaultHealthStallRestart: with STALL_RESTART_SECS set, a consumer whose
// fetches keep failing while Kafka answers metadata makes Run return an
// error (so a supervisor restarts the process). Real Kafka cannot fail only
// fetches without an authorizer: a kfake cluster answers every fetch with
// TOPIC_AUTHORIZATION_FAILED once records were read.
func TestFaultHealthStallRestart(t *testing.T) {
	const topic = "stall-topic"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic, topic+"-dlq"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := cluster.ListenAddrs()
	g := startGateway(t, map[string]string{"KAFKA_BROKERS": strings.Join(brokers, ","), "KAFKA_TOPIC": topic,
		"STALL_RESTART_SECS": "2"})
	c := dialCursor(g, cursorAll(1, -1))
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: event(t, "s", 1)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	readN(t, c, 1, 30*time.Second)

	var fetches atomic.Int64
	cluster.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		fetches.Add(1)
		return testenv.FailedFetch(req.(*kmsg.FetchRequest), kerr.TopicAuthorizationFailed.Code), nil, true
	})
	failing := time.Now()
	select {
	case err := <-g.done:
		g.cancel()
		g.cancel = nil // Run returned: nothing left to stop
		if err == nil || !strings.Contains(err.Error(), "stalled") {
			t.Fatalf("Run returned %v, want a stall error", err)
		}
		t.Logf("fetches failing: Run returned after %v (%d fetch requests): %v", time.Since(failing).Round(time.Millisecond), fetches.Load(), err)
	case <-time.After(60 * time.Second):
		t.Fatal("Run still running 60s after every fetch started failing with STALL_RESTART_SECS=2")
	}
}
