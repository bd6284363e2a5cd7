package kafka

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/dashflow/dashstream-gateway/internal/metrics"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

func TestBackoffCapped(t *testing.T) {
	for attempt := range 100 {
		if d := backoff(attempt); d > 5*time.Second || d < backoffBase/2 {
			t.Fatalf("backoff(%d) = %v, want within [%v, 5s]", attempt, d, backoffBase/2)
		}
	}
}

// TestStalledWhenFailingWhileReachable: with a fake clock, a consumer whose
// fetches have kept failing for longer than the threshold is stalled (so
// /healthz fails after 2 minutes and STALL_RESTART_SECS fires), but not
// on one transient failure, not once the failures stopped, and not while
// Kafka itself is unreachable (a dependency outage is not a stall).
func TestStalledWhenFailingWhileReachable(t *testing.T) {
	c, err := New(Config{Brokers: []string{"127.0.0.1:1"}, InstanceID: "test"}, &recordingSink{}, metrics.New(nil), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_000_000, 0)
	c.now = func() time.Time { return now }
	c.reachable.Store(true)
	fail := func(d time.Duration) { // failures every 2s for d
		for end := now.Add(d); now.Before(end); now = now.Add(2 * time.Second) {
			c.failing.fail(now)
		}
		c.failing.fail(now)
	}
	fail(time.Minute)
	if c.Stalled(2 * time.Minute) {
		t.Fatal("stalled after 1 minute of a 2-minute threshold")
	}
	fail(61 * time.Second)
	if !c.Stalled(2 * time.Minute) {
		t.Fatal("not stalled after failing for 2m1s while Kafka answers")
	}
	now = now.Add(failGap + time.Second)
	if c.Stalled(2 * time.Minute) {
		t.Fatal("stalled although the failures stopped")
	}
	c.failing.clear()
	now = now.Add(time.Hour)
	c.failing.fail(now)
	now = now.Add(3 * time.Minute)
	if c.Stalled(2 * time.Minute) {
		t.Fatal("one failure 3 minutes ago counted as a stall")
	}
	fail(2*time.Minute + time.Second)
	if !c.Stalled(2 * time.Minute) {
		t.Fatal("not stalled after failing again for 2m1s")
	}
	c.reachable.Store(false)
	if c.Stalled(2 * time.Minute) {
		t.Fatal("stalled while Kafka is unreachable")
	}
	c.reachable.Store(true)
	c.failing.clear() // records arrived
	if c.Stalled(2 * time.Minute) {
		t.Fatal("stalled after records arrived")
	}
}

// TestFetchFailuresStallWithoutSpinning: every fetch of a running consumer
// fails (the fake cluster answers TOPIC_AUTHORIZATION_FAILED while metadata
// keeps working; real Kafka cannot be made to fail only fetches without an
// authorizer, hence kfake). The topic is quiet, so no lag shows it: the
// consumer is reported stalled because it keeps failing, and the failing
// polls back off instead of spinning. Once fetches work again the stall
// clears.
func TestFetchFailuresStallWithoutSpinning(t *testing.T) {
	cluster, topic := fakeCluster(t, 1)
	addrs := cluster.ListenAddrs()
	r := startConsumer(t, testConfig(addrs, topic))
	produce(t, producer(t, addrs), topic, 0, validVectors(t)[:3]...)
	eventually(t, "3 records", func() bool { return r.sink.count() == 3 })
	if r.Stalled(200 * time.Millisecond) {
		t.Fatal("stalled while consuming")
	}

	var failing atomic.Bool
	failing.Store(true)
	var fetches atomic.Int64
	cluster.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if !failing.Load() {
			return nil, nil, false
		}
		fetches.Add(1)
		return testenv.FailedFetch(req.(*kmsg.FetchRequest), kerr.TopicAuthorizationFailed.Code), nil, true
	})
	eventually(t, "stalled while every fetch fails", func() bool { return r.Stalled(500 * time.Millisecond) })
	errs0 := testutil.ToFloat64(r.m.KafkaErrorsByType.WithLabelValues("topic_authorization_failed"))
	time.Sleep(2 * time.Second)
	errs := testutil.ToFloat64(r.m.KafkaErrorsByType.WithLabelValues("topic_authorization_failed")) - errs0
	t.Logf("%.0f fetch errors counted in 2s while failing (%d fetch requests in all)", errs, fetches.Load())
	if errs > 40 {
		t.Fatalf("%.0f fetch errors in 2s: the failing poll spins", errs)
	}
	if !r.Reachable() {
		t.Fatal("unreachable although metadata answers")
	}

	failing.Store(false)
	produce(t, producer(t, addrs), topic, 0, validVectors(t)[:2]...)
	eventually(t, "records after the failures", func() bool { return r.sink.count() == 5 })
	eventually(t, "stall cleared", func() bool { return !r.Stalled(500 * time.Millisecond) })
}

// TestReachabilityFollowsBlackholedMetadata: the broker stops answering
// (black-holed: kfake holds metadata, fetch and list-offsets requests,
// which real Kafka cannot be made to do without a network fault; no
// connection fails): Reachable turns false within about
// healthInterval+healthTimeout, and true again soon after the broker
// answers.
func TestReachabilityFollowsBlackholedMetadata(t *testing.T) {
	cluster, topic := fakeCluster(t, 1)
	r := startConsumer(t, testConfig(cluster.ListenAddrs(), topic))
	eventually(t, "reachable", r.Reachable)

	release := make(chan struct{})
	var hold atomic.Bool
	hold.Store(true)
	for _, key := range []kmsg.Key{kmsg.Metadata, kmsg.Fetch, kmsg.ListOffsets} {
		cluster.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
			cluster.KeepControl()
			if hold.Load() {
				cluster.SleepControl(func() { <-release })
			}
			return nil, nil, false
		})
	}
	held := time.Now()
	eventually(t, "unreachable while metadata is held", func() bool { return !r.Reachable() })
	down := time.Since(held)
	hold.Store(false)
	close(release)
	back := time.Now()
	eventually(t, "reachable again", r.Reachable)
	up := time.Since(back)
	t.Logf("metadata black-holed: unreachable after %v; answered again: reachable after %v", down.Round(time.Millisecond), up.Round(time.Millisecond))
	if down > healthInterval+healthTimeout+3*time.Second {
		t.Fatalf("unreachable only %v after metadata stopped answering", down)
	}
}

// TestTopicMissingAtStart: Kafka answers but the topic does not exist: the
// consumer reports the topic problem (not ready) while it retries, and
// starts consuming once the topic is created.
func TestTopicMissingAtStart(t *testing.T) {
	cluster, _ := fakeCluster(t, 1)
	const topic = "created-later"
	r := startConsumer(t, testConfig(cluster.ListenAddrs(), topic))
	eventually(t, "topic problem reported", func() bool { return r.Reachable() && r.TopicProblem() != "" })
	if r.Namespace() != "" || r.Stalled(0) {
		t.Fatalf("namespace %q, stalled %v before the topic exists", r.Namespace(), r.Stalled(0))
	}
	adm := producer(t, cluster.ListenAddrs())
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, 1
	req.Topics = append(req.Topics, rt)
	if _, err := req.RequestWith(t.Context(), adm); err != nil {
		t.Fatal(err)
	}
	eventually(t, "consuming the created topic", func() bool { return r.Namespace() != "" && r.TopicProblem() == "" })
}
