package chaos

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"go.uber.org/goleak"

	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Bounds the specification names (docs/PROTOCOL.md, the /readyz and
// reconnect rules), each with a margin for a loaded 2-core machine.
const (
	readyDownBound = 3*time.Second + time.Second                 // /readyz 503 after Kafka became unreachable
	readyUpBound   = 3*time.Second + 5*time.Second + time.Second // + the capped reconnect backoff
	rate           = 300                                         // records per second of every scenario's producer
)

// chaosScenario is one fault and its assertions; fast ones also run in
// `make test`.
type chaosScenario struct {
	name string
	fast bool
	run  func(t *testing.T, w *world)
}

var scenarios = []chaosScenario{
	{"broker_sigkill_restart", true, brokerKill},
	{"redis_sigkill_empty_restart", true, redisKill},
	{"gateway_sigkill_failover", true, gatewayFailover},
	{"kafka_latency", true, kafkaLatency},
	{"broker_down_at_start", false, brokerDownAtStart},
	{"kafka_reset_and_blackhole", false, kafkaResetBlackhole},
	{"redis_latency_reset_blackhole", false, redisToxics},
	{"partitions_added", false, partitionsAdded},
	{"kafka_down_during_resume", false, kafkaDownDuringResume},
	{"topic_recreated", false, topicRecreated},
	{"descriptor_exhaustion", false, descriptorExhaustion},
}

// TestChaos runs the scenarios in order against one broker, one Redis and
// one toxiproxy (starting a JVM per scenario would not fit the time bound).
// Each scenario has its own topic and gateway instances.
func TestChaos(t *testing.T) {
	full := mode(t)
	start := time.Now()
	w := newWorld(t)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			if !sc.fast && !full {
				t.Skipf("full suite only (%s=full, make chaos)", EnvMode)
			}
			began := time.Now()
			sc.run(t, w)
			t.Logf("chaos: %s took %v", t.Name(), time.Since(began).Round(time.Millisecond))
		})
	}
	t.Logf("chaos: suite took %v", time.Since(start).Round(time.Second))
}

// brokerKill: the broker is SIGKILLed mid-stream and restarted; /readyz
// follows it both ways, /health reports the outage, clients lose nothing.
func brokerKill(t *testing.T, w *world) {
	s := w.scenario(t, 3)
	g := s.startGateway("gw", nil)
	s.startClients(3, nil, g.WS())
	s.startProducer(rate)
	time.Sleep(3 * time.Second)

	w.kafka.Kill(t)
	down, ok := g.WaitReady(false, 15*time.Second)
	t.Logf("chaos: %s readyz_503_after=%v", t.Name(), down.Round(time.Millisecond))
	if !ok || down > readyDownBound {
		t.Errorf("/readyz still 200 %v after the broker was killed (bound %v)", down, readyDownBound)
	}
	expectUnhealthy(t, g)
	time.Sleep(2 * time.Second)

	w.kafka.Start(t)
	upAt := time.Now()
	up, ok := g.WaitReady(true, 30*time.Second)
	rec, recOK := s.waitRecordsAfter(upAt, 60*time.Second)
	t.Logf("chaos: %s readyz_200_after_restart=%v clients_recovered_after=%v", t.Name(),
		up.Round(time.Millisecond), rec.Round(time.Millisecond))
	if !ok || up > readyUpBound {
		t.Errorf("/readyz not 200 %v after the broker came back (bound %v)", up, readyUpBound)
	}
	if !recOK {
		t.Errorf("clients got no record within %v of the broker's restart", rec)
	}
	time.Sleep(2 * time.Second)
	s.finish("")
	expectHealthy(t, g)
}

// redisKill: Redis is SIGKILLed and restarted empty; readiness never
// depends on Redis; a client resuming from -1 afterwards (older records
// only in memory and Kafka) and the live clients lose nothing.
func redisKill(t *testing.T, w *world) {
	s := w.scenario(t, 2)
	g := s.startGateway("gw", nil)
	s.startClients(2, nil, g.WS())
	s.startProducer(rate)
	time.Sleep(2 * time.Second)

	rs := sampleReady(g)
	w.redis.Kill(t)
	time.Sleep(3 * time.Second)
	h, err := g.Health()
	t.Logf("chaos: %s health_during_redis_outage status=%q alert=%q err=%v", t.Name(), h.Status, h.Alert, err)
	if err != nil || (h.Status == "healthy" && h.Alert == "") {
		t.Errorf("/health shows no sign of the Redis outage: %+v, %v", h, err)
	}
	w.redis.Start(t)
	time.Sleep(3 * time.Second)
	s.startClients(1, map[int32]int64{0: -1, 1: -1}, g.WS())
	time.Sleep(2 * time.Second)
	notReady, samples := rs.end()
	t.Logf("chaos: %s readyz_not_200_samples=%d/%d", t.Name(), notReady, samples)
	if notReady > 0 {
		t.Errorf("/readyz was not 200 in %d of %d samples while only Redis failed", notReady, samples)
	}
	s.finish("")
}

// gatewayFailover: two instances; the one the clients use is SIGKILLed;
// they resume on the other from their own cursors.
func gatewayFailover(t *testing.T, w *world) {
	s := w.scenario(t, 2)
	g1 := s.startGateway("gw1", nil)
	g2 := s.startGateway("gw2", nil)
	s.startClients(3, nil, g1.WS(), g2.WS())
	s.startProducer(rate)
	time.Sleep(3 * time.Second)

	killAt := time.Now()
	g1.Kill()
	rec, ok := s.waitRecordsAfter(killAt, 30*time.Second)
	t.Logf("chaos: %s clients_failed_over_after=%v", t.Name(), rec.Round(time.Millisecond))
	if !ok {
		t.Errorf("clients got no record from the second instance within %v", rec)
	}
	if !g2.Ready() {
		t.Errorf("the surviving instance is not ready")
	}
	time.Sleep(3 * time.Second)
	s.finish("")
}

// kafkaLatency: 300 ± 100 ms on every byte from Kafka to the gateway for
// 5 s: slower, never unready, nothing lost.
func kafkaLatency(t *testing.T, w *world) {
	s := w.scenario(t, 2)
	g := s.startGateway("gw", nil)
	s.startClients(2, nil, g.WS())
	s.startProducer(rate)
	time.Sleep(2 * time.Second)

	rs := sampleReady(g)
	remove := toxic(t, w.kafkaProxy, "latency", "downstream", toxiproxy.Attributes{"latency": 300, "jitter": 100})
	time.Sleep(5 * time.Second)
	remove()
	notReady, samples := rs.end()
	t.Logf("chaos: %s readyz_not_200_samples=%d/%d", t.Name(), notReady, samples)
	if notReady > 0 {
		t.Errorf("/readyz was not 200 in %d of %d samples although Kafka stayed reachable (slowly)", notReady, samples)
	}
	time.Sleep(2 * time.Second)
	s.finish("")
	expectHealthy(t, g)
}

// brokerDownAtStart: the gateway starts while the broker is down: HTTP
// answers at once with /readyz 503, then follows the broker when it comes.
func brokerDownAtStart(t *testing.T, w *world) {
	s := w.scenario(t, 2)
	w.kafka.Kill(t)
	g := s.gateway("gw", nil)
	g.Start()
	began := time.Now()
	for g.Status("/readyz") == 0 && time.Since(began) < 10*time.Second {
		time.Sleep(20 * time.Millisecond)
	}
	httpUp := time.Since(began)
	st := g.Status("/readyz")
	t.Logf("chaos: %s http_up_after=%v readyz=%d", t.Name(), httpUp.Round(time.Millisecond), st)
	if st != 503 || httpUp > 2*time.Second {
		t.Errorf("with the broker down: /readyz %d after %v, want 503 within a second (+1 s margin)", st, httpUp)
	}
	expectUnhealthy(t, g)
	s.startClients(2, nil, g.WS())
	time.Sleep(2 * time.Second)

	w.kafka.Start(t)
	up, ok := g.WaitReady(true, 30*time.Second)
	t.Logf("chaos: %s readyz_200_after_broker_start=%v", t.Name(), up.Round(time.Millisecond))
	if !ok || up > readyUpBound {
		t.Errorf("/readyz not 200 %v after the broker came up (bound %v)", up, readyUpBound)
	}
	s.startProducer(rate)
	time.Sleep(4 * time.Second)
	s.finish("")
	expectHealthy(t, g)
}

// kafkaResetBlackhole: the Kafka link first resets every connection, then
// silently drops everything; /readyz follows both, nothing is lost.
func kafkaResetBlackhole(t *testing.T, w *world) {
	s := w.scenario(t, 2)
	g := s.startGateway("gw", nil)
	s.startClients(2, nil, g.WS())
	s.startProducer(rate)
	time.Sleep(2 * time.Second)

	for _, f := range []struct {
		typ   string
		attrs toxiproxy.Attributes
	}{
		{"reset_peer", toxiproxy.Attributes{"timeout": 0}},
		{"timeout", toxiproxy.Attributes{"timeout": 0}}, // a blackhole: data dropped, connections kept
	} {
		remove := toxic(t, w.kafkaProxy, f.typ, "upstream", f.attrs)
		down, ok := g.WaitReady(false, 15*time.Second)
		t.Logf("chaos: %s %s readyz_503_after=%v", t.Name(), f.typ, down.Round(time.Millisecond))
		if !ok || down > readyDownBound {
			t.Errorf("%s on the Kafka link: /readyz still 200 after %v (bound %v)", f.typ, down, readyDownBound)
		}
		time.Sleep(2 * time.Second)
		remove()
		upAt := time.Now()
		up, ok := g.WaitReady(true, 30*time.Second)
		rec, _ := s.waitRecordsAfter(upAt, 60*time.Second)
		t.Logf("chaos: %s %s readyz_200_after=%v clients_recovered_after=%v", t.Name(), f.typ,
			up.Round(time.Millisecond), rec.Round(time.Millisecond))
		if !ok || up > readyUpBound {
			t.Errorf("%s removed: /readyz not 200 after %v (bound %v)", f.typ, up, readyUpBound)
		}
	}
	time.Sleep(2 * time.Second)
	s.finish("")
}

// redisToxics: latency, resets and a blackhole on the Redis link; readiness
// never changes, and a client resuming during the blackhole still gets
// every record exactly once (from memory and Kafka, or after a retry).
func redisToxics(t *testing.T, w *world) {
	s := w.scenario(t, 2)
	g := s.startGateway("gw", nil)
	s.startClients(2, nil, g.WS())
	s.startProducer(rate)
	time.Sleep(2 * time.Second)

	rs := sampleReady(g)
	for _, f := range []struct {
		typ   string
		attrs toxiproxy.Attributes
	}{
		{"latency", toxiproxy.Attributes{"latency": 500, "jitter": 200}},
		{"reset_peer", toxiproxy.Attributes{"timeout": 0}},
		{"timeout", toxiproxy.Attributes{"timeout": 0}},
	} {
		remove := toxic(t, w.redisProxy, f.typ, "upstream", f.attrs)
		if f.typ == "timeout" {
			s.startClients(1, map[int32]int64{0: -1, 1: -1}, g.WS())
		}
		time.Sleep(4 * time.Second)
		remove()
		time.Sleep(time.Second)
	}
	notReady, samples := rs.end()
	t.Logf("chaos: %s readyz_not_200_samples=%d/%d", t.Name(), notReady, samples)
	if notReady > 0 {
		t.Errorf("/readyz was not 200 in %d of %d samples while only Redis failed", notReady, samples)
	}
	s.finish("")
}

// partitionsAdded: the topic grows from 2 to 4 partitions mid-stream; the
// new partitions reach the clients.
func partitionsAdded(t *testing.T, w *world) {
	s := w.scenario(t, 2)
	g := s.startGateway("gw", nil)
	s.startClients(2, nil, g.WS())
	s.startProducer(rate)
	time.Sleep(3 * time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := w.kafka.Admin.CreatePartitions(ctx, 2, s.topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("add partitions: %v", err)
	}
	addedAt := time.Now()
	if err := s.prod.SetPartitions(ctx, 4); err != nil {
		t.Fatal(err)
	}
	s.partitions = 4
	newParts := map[int32]int64{2: 1, 3: 1}
	for !allCaughtUp(s.clients, newParts) && time.Since(addedAt) < 60*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(addedAt)
	t.Logf("chaos: %s new_partitions_delivered_after=%v", t.Name(), took.Round(time.Millisecond))
	if !allCaughtUp(s.clients, newParts) {
		t.Errorf("no record of the added partitions reached the clients within %v", took)
	}
	time.Sleep(2 * time.Second)
	s.finish("")
	expectHealthy(t, g)
}

func allCaughtUp(cs []*Client, ends map[int32]int64) bool {
	for _, c := range cs {
		if !c.CaughtUp(ends) {
			return false
		}
	}
	return true
}

// kafkaDownDuringResume: a resume needs records only Kafka still holds
// while the gateway cannot reach Kafka: error REPLAY_UNAVAILABLE and close
// 1013, never gap or cursor_stale; once Kafka is back the same client gets
// everything exactly once.
func kafkaDownDuringResume(t *testing.T, w *world) {
	s := w.scenario(t, 1)
	g := s.startGateway("gw", map[string]string{"REPLAY_BUFFER_MEMORY_SIZE": "100", "REDIS_MAX_SEQUENCES": "100"})
	s.startClients(1, nil, g.WS())
	s.startProducer(rate)
	time.Sleep(4 * time.Second) // ~1200 records: offset 0 is in neither the memory nor the Redis window

	if err := w.kafkaProxy.Disable(); err != nil {
		t.Fatal(err)
	}
	down, ok := g.WaitReady(false, 15*time.Second)
	t.Logf("chaos: %s readyz_503_after=%v", t.Name(), down.Round(time.Millisecond))
	if !ok || down > readyDownBound {
		t.Errorf("/readyz still 200 %v after Kafka became unreachable (bound %v)", down, readyDownBound)
	}

	began := time.Now()
	code, closeCode, frames := resumeOnce(t, g, map[int32]int64{0: 10})
	t.Logf("chaos: %s resume_while_kafka_unreachable error=%q close=%d frames=%v after=%v", t.Name(),
		code, closeCode, frames, time.Since(began).Round(time.Millisecond))
	if code != "REPLAY_UNAVAILABLE" || closeCode != 1013 {
		t.Errorf("resume needing Kafka while it is unreachable: error %q, close %d; want REPLAY_UNAVAILABLE, 1013", code, closeCode)
	}
	if slices.Contains(frames, "gap") || slices.Contains(frames, "cursor_stale") {
		t.Errorf("a gap or cursor_stale was sent although no record is lost: %v", frames)
	}
	late := s.startClients(1, map[int32]int64{0: -1}, g.WS())[0]
	time.Sleep(3 * time.Second)

	if err := w.kafkaProxy.Enable(); err != nil {
		t.Fatal(err)
	}
	up, ok := g.WaitReady(true, 30*time.Second)
	t.Logf("chaos: %s readyz_200_after_reconnect=%v", t.Name(), up.Round(time.Millisecond))
	if !ok {
		t.Errorf("/readyz not 200 %v after Kafka became reachable", up)
	}
	time.Sleep(2 * time.Second)
	s.finish("")
	ctl := late.Controls()
	t.Logf("chaos: %s late_client error_codes=%v controls=%v", t.Name(), late.ErrorCodes(), ctl)
	if ctl["gap"]+ctl["cursor_stale"] > 0 {
		t.Errorf("the resuming client got gap/cursor_stale frames: %v", ctl)
	}
}

// resumeOnce dials with a resume from offsets and reads until the server
// closes (bounded): the first error frame's code, the close code and the
// types of the control frames seen.
func resumeOnce(t *testing.T, g *Gateway, offsets map[int32]int64) (code string, closeCode int, frames []string) {
	t.Helper()
	// The replay timeout (30 s) plus a margin bounds any resume.
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Second)
	defer cancel()
	c, err := wsclient.Dial(ctx, g.WS(), wsclient.Options{Resume: &wsclient.Resume{From: wsclient.FromCursor, Offsets: offsets}})
	if err != nil {
		t.Errorf("dial: %v", err)
		return "", 0, nil
	}
	defer c.CloseNow()
	for {
		msg, err := c.Next(ctx)
		var ce *wsclient.CloseError
		switch {
		case errors.As(err, &ce):
			return code, ce.Code, frames
		case err != nil:
			return code, 0, frames
		case msg.Kind != wsclient.KindControl:
			continue
		}
		frames = append(frames, msg.Control.Type)
		var e wsclient.ErrorFrame
		if msg.Control.Type == "error" && code == "" && msg.Control.Decode(&e) == nil {
			code = e.Code
		}
	}
}

// topicRecreated: the topic is deleted and created again under the same
// name; within 30 s the clients are closed with 1012, /version's namespace
// changes, the gateway serves the new topic from its start, without
// spinning the CPU.
func topicRecreated(t *testing.T, w *world) {
	s := w.scenario(t, 2)
	g := s.startGateway("gw", nil)
	s.startClients(2, nil, g.WS())
	s.startProducer(rate)
	time.Sleep(3 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.prod.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	ns0, err := g.Namespace()
	if err != nil {
		t.Fatal(err)
	}

	recreate(t, w, s.topic, s.partitions)
	at := time.Now()
	rs := sampleReady(g)
	cpu0 := g.CPUTime()
	var closed, changed time.Duration
	var ns1 string
	for time.Since(at) < 40*time.Second && (closed == 0 || changed == 0) {
		if closed == 0 && allClosedWith(s.clients, 1012, at) {
			closed = time.Since(at)
		}
		if ns, err := g.Namespace(); changed == 0 && err == nil && ns != ns0 {
			changed, ns1 = time.Since(at), ns
		}
		time.Sleep(100 * time.Millisecond)
	}
	cpu := g.CPUTime() - cpu0
	wall := time.Since(at)
	notReady, samples := rs.end()
	t.Logf("chaos: %s clients_closed_1012_after=%s namespace_changed_after=%s readyz_not_200_samples=%d/%d cpu=%v over %v",
		t.Name(), orNever(closed), orNever(changed), notReady, samples,
		cpu.Round(time.Millisecond), wall.Round(time.Millisecond))
	if closed == 0 || closed > 30*time.Second {
		t.Errorf("clients not all closed with 1012 within 30 s of the re-creation")
	}
	if changed == 0 {
		t.Fatalf("/version resume_namespace still %q 40 s after the re-creation", ns0)
	}
	if cpu > wall/2 {
		t.Errorf("gateway used %v of CPU in %v after the re-creation: spinning", cpu, wall)
	}
	s.startProducer(rate)
	time.Sleep(4 * time.Second)
	s.finish(ns1)
	expectHealthy(t, g)
}

// orNever renders a measured delay, 0 meaning it never happened.
func orNever(d time.Duration) string {
	if d == 0 {
		return "never"
	}
	return d.Round(time.Millisecond).String()
}

func recreate(t *testing.T, w *world, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := w.kafka.Admin.DeleteTopics(ctx, topic); err != nil {
		t.Fatalf("delete %s: %v", topic, err)
	}
	for {
		resp, err := w.kafka.Admin.CreateTopic(ctx, partitions, 1, nil, topic)
		if err == nil && resp.Err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("re-create %s: %v %v", topic, err, resp.Err)
		}
		time.Sleep(200 * time.Millisecond) // the deletion is still in progress
	}
}

func allClosedWith(cs []*Client, code int, after time.Time) bool {
	for _, c := range cs {
		if !slices.ContainsFunc(c.Closes(), func(cl Close) bool { return cl.Code == code && cl.At.After(after) }) {
			return false
		}
	}
	return true
}

// expectUnhealthy: /health shows the Kafka outage within a few seconds.
func expectUnhealthy(t *testing.T, g *Gateway) {
	t.Helper()
	var h Health
	var err error
	for began := time.Now(); time.Since(began) < 5*time.Second; time.Sleep(100 * time.Millisecond) {
		if h, err = g.Health(); err == nil && h.Status != "healthy" {
			break
		}
	}
	t.Logf("chaos: %s health_during_kafka_outage status=%q kafka_status=%q alert=%q", t.Name(), h.Status, h.KafkaStatus, h.Alert)
	if err != nil || h.Status == "healthy" {
		t.Errorf("/health during the Kafka outage: %+v, %v; want a status other than healthy", h, err)
	}
}

// expectHealthy: /health is back to healthy after the fault (bounded).
func expectHealthy(t *testing.T, g *Gateway) {
	t.Helper()
	var h Health
	var err error
	for began := time.Now(); time.Since(began) < 20*time.Second; time.Sleep(200 * time.Millisecond) {
		if h, err = g.Health(); err == nil && (h.Status == "healthy" || h.Status == "waiting") {
			return
		}
	}
	t.Errorf("/health 20 s after recovery: %+v, %v; want healthy", h, err)
}
