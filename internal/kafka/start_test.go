package kafka

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
)

func TestStartOffset(t *testing.T) {
	b := bounds{start: 10, end: 100}
	tests := []struct {
		name     string
		saved    int64
		hasSaved bool
		reset    string
		warm     int
		want     int64
	}{
		{"saved wins", 42, true, ResetLatest, 5, 42},
		{"saved below log start", 3, true, ResetLatest, 5, 10},
		{"saved above end", 500, true, ResetEarliest, 0, 100},
		{"earliest", 0, false, ResetEarliest, 5, 10},
		{"latest warm", 0, false, ResetLatest, 5, 95},
		{"latest cold", 0, false, ResetLatest, 0, 100},
		{"latest warm beyond log start", 0, false, ResetLatest, 1000, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := startOffset(tc.saved, tc.hasSaved, b, tc.reset, tc.warm); got != tc.want {
				t.Fatalf("start %d, want %d", got, tc.want)
			}
		})
	}
}

func TestNamespace(t *testing.T) {
	id := kadm.TopicID{1, 2, 3}
	a := namespaceOf("cluster-1", "topic", id)
	if len(a) != 16 || a != namespaceOf("cluster-1", "topic", id) {
		t.Fatalf("namespace %q not a stable 16-char string", a)
	}
	for name, other := range map[string]string{
		"other cluster": namespaceOf("cluster-2", "topic", id),
		"other topic":   namespaceOf("cluster-1", "topic2", id),
		"re-created":    namespaceOf("cluster-1", "topic", kadm.TopicID{9}),
		"no topic id":   namespaceOf("cluster-1", "topic", kadm.TopicID{}),
	} {
		if other == a {
			t.Errorf("%s: same namespace", name)
		}
	}
}

func TestNamespaceIndependentOfBrokerList(t *testing.T) {
	c, topic := fakeCluster(t, 1)
	addrs := c.ListenAddrs()
	first := startConsumer(t, testConfig(addrs, topic))
	eventually(t, "namespace", func() bool { return first.Namespace() != "" })
	first.stop()
	again := startConsumer(t, testConfig([]string{addrs[0], addrs[0]}, topic))
	eventually(t, "namespace", func() bool { return again.Namespace() != "" })
	if first.Namespace() != again.Namespace() {
		t.Fatalf("namespace changed with the broker list: %s vs %s", first.Namespace(), again.Namespace())
	}
}

func errorsCounted(r *running) bool {
	return testutil.ToFloat64(r.m.KafkaErrorsByType.WithLabelValues("connect")) >= 1
}
