package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// consume reads n records of topic/partition from the log start.
func consume(t *testing.T, k *KafkaEnv, topic string, partition int32, n int) []*kgo.Record {
	t.Helper()
	cl := k.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {partition: kgo.NewOffset().AtStart()},
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(got), n, err)
		}
		fetches.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		got = append(got, fetches.Records()...)
	}
	return got
}

func TestKafkaProduceConsumeDeleteRecords(t *testing.T) {
	t.Parallel()
	k := Kafka(t)
	topic := k.Topic(t, 4)
	if !strings.HasPrefix(topic, "t-TestKafkaProduceConsumeDeleteRecords-") {
		t.Errorf("topic name %q does not derive from the test name", topic)
	}

	const partition = 2
	values := [][]byte{[]byte("first"), {0x00, 0x01, 0xff}, bytes.Repeat([]byte("x"), 10_000)}
	offsets := k.Produce(t, topic, partition, values...)
	if want := []int64{0, 1, 2}; fmt.Sprint(offsets) != fmt.Sprint(want) {
		t.Fatalf("offsets = %v, want %v", offsets, want)
	}

	for i, r := range consume(t, k, topic, partition, len(values)) {
		if r.Partition != partition || r.Offset != offsets[i] || !bytes.Equal(r.Value, values[i]) {
			t.Errorf("record %d: p%d@%d %q, want p%d@%d %q", i, r.Partition, r.Offset, r.Value, partition, offsets[i], values[i])
		}
	}

	k.DeleteRecords(t, topic, partition, offsets[1])
	if start, end := k.Offsets(t, topic, partition); start != offsets[1] || end != 3 {
		t.Errorf("after DeleteRecords: log start %d, end %d; want %d, 3", start, end, offsets[1])
	}
	if start, end := k.Offsets(t, topic, 0); start != 0 || end != 0 {
		t.Errorf("untouched partition 0: log start %d, end %d; want 0, 0", start, end)
	}
}

func TestKafkaTopicWithConfigAndDLQ(t *testing.T) {
	t.Parallel()
	k := Kafka(t)
	topic := k.TopicWithConfig(t, 3, map[string]string{"retention.ms": "3600000"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	details, err := k.Admin.ListTopics(ctx, topic, topic+"-dlq")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{topic, topic + "-dlq"} {
		if d := details[name]; d.Err != nil || len(d.Partitions) != 3 {
			t.Errorf("%s: err %v, %d partitions; want 3", name, d.Err, len(d.Partitions))
		}
	}
	configs, err := k.Admin.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := configs.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" && (c.Value == nil || *c.Value != "3600000") {
			t.Errorf("retention.ms = %v, want 3600000", c.MaybeValue())
		}
	}
}

// ProduceSync reports results per partition; ProduceRecords must still return
// offsets in argument order.
func TestKafkaProduceRecordsKeepsArgumentOrder(t *testing.T) {
	t.Parallel()
	k := Kafka(t)
	topic := k.Topic(t, 4)
	var recs []*kgo.Record
	for i := range 12 {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i % 4), Key: []byte("k")})
	}
	offsets := k.ProduceRecords(t, recs...)
	for i, off := range offsets {
		if want := int64(i / 4); off != want {
			t.Errorf("record %d (p%d): offset %d, want %d", i, i%4, off, want)
		}
	}
}

func TestRedisRoundTripAndCleanup(t *testing.T) {
	t.Parallel()
	outer := Redis(t)
	ctx := context.Background()
	var prefix string
	t.Run("inner", func(t *testing.T) {
		r := Redis(t)
		prefix = r.Prefix
		if err := r.Client.Set(ctx, r.Key("a"), "value-a", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if err := r.Client.Set(ctx, "dashstream-replay:"+r.Prefix+":p0", "x", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if got, err := r.Client.Get(ctx, r.Key("a")).Result(); err != nil || got != "value-a" {
			t.Fatalf("GET = %q, %v; want value-a", got, err)
		}
	})
	if prefix == outer.Prefix {
		t.Fatalf("prefixes of two tests collide: %q", prefix)
	}
	keys, err := outer.Client.Keys(ctx, "*"+prefix+"*").Result()
	if err != nil || len(keys) != 0 {
		t.Fatalf("keys of the finished subtest: %v, %v; want none", keys, err)
	}
}

func TestStartRedisKillAndRestart(t *testing.T) {
	t.Parallel()
	for _, persist := range []bool{false, true} {
		t.Run(fmt.Sprintf("persist=%v", persist), func(t *testing.T) {
			srv := StartRedisConfig(t, ServerConfig{RedisPersist: persist})
			ctx := context.Background()
			if err := srv.Client.Set(ctx, srv.Key("k"), "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			srv.Kill(t)
			if err := srv.Client.Ping(ctx).Err(); err == nil {
				t.Fatal("ping succeeded after Kill")
			}
			srv.Start(t)
			WaitFor(t, 10*time.Second, func() bool { return srv.Client.Ping(ctx).Err() == nil }, "ping after restart")
			got, err := srv.Client.Get(ctx, srv.Key("k")).Result()
			switch {
			case persist && (err != nil || got != "v"):
				t.Errorf("persisted key after kill: %q, %v; want v", got, err)
			case !persist && !errors.Is(err, redis.Nil):
				t.Errorf("key without persistence after kill: %q, %v; want redis.Nil", got, err)
			}
			srv.Stop(t)
			srv.Start(t) // a stopped server starts again on the same port
		})
	}
}

func TestStartKafkaOffsetsSurviveKill(t *testing.T) {
	t.Parallel()
	srv := StartKafka(t)
	topic := srv.Topic(t, 1)
	srv.Produce(t, topic, 0, []byte("a"), []byte("b"))
	srv.Kill(t)
	srv.Start(t)
	offsets := srv.Produce(t, topic, 0, []byte("c"))
	if offsets[0] != 2 {
		t.Fatalf("offset after kill and restart = %d, want 2", offsets[0])
	}
	got := consume(t, srv.KafkaEnv, topic, 0, 3)
	if string(got[0].Value)+string(got[1].Value)+string(got[2].Value) != "abc" {
		t.Fatalf("records after restart: %q %q %q", got[0].Value, got[1].Value, got[2].Value)
	}
}

func TestUniqueName(t *testing.T) {
	tests := []struct {
		name, in string
		max      int
		prefix   string
	}{
		{"plain", "TestX", 200, "t-TestX-"},
		{"subtest", "TestX/case_1 a.b", 200, "t-TestX-case-1-a-b-"},
		{"truncated", strings.Repeat("a", 300), 40, "t-" + strings.Repeat("a", 40-11) + "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := uniqueName(tt.in, tt.max)
			if !strings.HasPrefix(got, tt.prefix) || len(got) != len(tt.prefix)+8 || len(got) > tt.max {
				t.Errorf("uniqueName(%q, %d) = %q, want %q + 8 hex, at most %d", tt.in, tt.max, got, tt.prefix, tt.max)
			}
		})
	}
	if a, b := uniqueName("T", 50), uniqueName("T", 50); a == b {
		t.Errorf("two names collide: %q", a)
	}
}

func TestFreePortsDistinct(t *testing.T) {
	ports := freePorts(t, 3)
	if ports[0] == ports[1] || ports[1] == ports[2] || ports[0] == ports[2] || ports[0] <= 0 {
		t.Fatalf("ports %v", ports)
	}
}

// FreePort never picks from the reserved block (2,000 draws from about
// 12,700 ports would hit its 100 almost surely if it did).
func TestFreePortsAvoidTheReservedBlock(t *testing.T) {
	for range 20 {
		for _, p := range freePorts(t, 100) {
			if p >= ReservedPortLow && p <= ReservedPortHigh {
				t.Fatalf("port %d is in the reserved block %d-%d", p, ReservedPortLow, ReservedPortHigh)
			}
		}
	}
}
