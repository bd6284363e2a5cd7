package testenv

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaEnv is a reachable Kafka cluster plus an admin client. Its methods
// are safe for concurrent use.
type KafkaEnv struct {
	// Brokers are the seed brokers, "127.0.0.1:<port>".
	Brokers []string
	// Admin is an admin client on Brokers, closed when the test that
	// created the env ends.
	Admin *kadm.Client
	// Timeout bounds each helper operation (create topic, produce, delete
	// records…). Zero means DefaultTimeout. Set it before sharing the env.
	Timeout time.Duration

	// private: the broker belongs to one test and dies with it, so topics
	// need no deletion.
	private bool

	// mu guards producer.
	mu       sync.Mutex
	producer *kgo.Client // lazily built by Produce, closed with the env
}

// Kafka returns the shared cluster named by KAFKA_BROKERS. Without it the test
// is skipped, or fails under DASHSTREAM_INTEGRATION=1. An unreachable
// cluster fails the test.
func Kafka(t testing.TB) *KafkaEnv {
	t.Helper()
	brokers := splitBrokers(os.Getenv(EnvKafkaBrokers))
	if len(brokers) == 0 {
		unavailable(t, "KAFKA_BROKERS not set; run make test")
	}
	return newKafkaEnv(t, brokers, false)
}

func splitBrokers(s string) []string {
	var brokers []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	return brokers
}

func newKafkaEnv(t testing.TB, brokers []string, private bool) *KafkaEnv {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	checkErr(t, err, "kafka client for %v", brokers)
	k := &KafkaEnv{Brokers: brokers, Admin: kadm.NewClient(cl), private: private}
	t.Cleanup(k.close)

	ctx, cancel := opContext(k.Timeout)
	defer cancel()
	_, err = k.Admin.ApiVersions(ctx)
	checkErr(t, err, "kafka at %v unreachable", brokers)
	return k
}

func (k *KafkaEnv) close() {
	k.mu.Lock()
	p := k.producer
	k.producer = nil
	k.mu.Unlock()
	if p != nil {
		p.Close()
	}
	k.Admin.Close()
}

// Topic creates a topic unique to this test with the given number of
// partitions (replication factor 1), plus its dead-letter topic
// "<topic>-dlq" with as many partitions, waits until both have leaders, and
// deletes both when t ends. The name is derived from t.Name(). partitions -1
// means the broker default (1).
func (k *KafkaEnv) Topic(t testing.TB, partitions int32) string {
	t.Helper()
	return k.TopicWithConfig(t, partitions, nil)
}

// TopicWithConfig is Topic with topic configs (e.g. "retention.ms",
// "segment.bytes", "compression.type") for the main topic; the dead-letter
// topic gets the broker defaults.
func (k *KafkaEnv) TopicWithConfig(t testing.TB, partitions int32, configs map[string]string) string {
	t.Helper()
	topic := uniqueName(t.Name(), 200)
	topics := []string{topic, topic + "-dlq"}
	if !k.private {
		t.Cleanup(func() { k.deleteTopics(t, topics) })
	}
	k.createTopic(t, topic, partitions, configs)
	k.createTopic(t, topic+"-dlq", partitions, nil)
	WaitFor(t, k.timeout(), func() bool { return k.topicsReady(partitions, topics) },
		"leaders for every partition of "+strings.Join(topics, ", "))
	return topic
}

func (k *KafkaEnv) createTopic(t testing.TB, topic string, partitions int32, configs map[string]string) {
	t.Helper()
	var cfg map[string]*string
	if len(configs) > 0 {
		cfg = make(map[string]*string, len(configs))
		for name, v := range configs {
			cfg[name] = kadm.StringPtr(v)
		}
	}
	ctx, cancel := opContext(k.Timeout)
	defer cancel()
	resp, err := k.Admin.CreateTopic(ctx, partitions, 1, cfg, topic)
	if err == nil && resp.Err != nil {
		err = fmt.Errorf("%w %s", resp.Err, resp.ErrMessage)
	}
	checkErr(t, err, "create topic %s", topic)
}

func (k *KafkaEnv) topicsReady(partitions int32, topics []string) bool {
	ctx, cancel := opContext(k.Timeout)
	defer cancel()
	details, err := k.Admin.ListTopics(ctx, topics...)
	if err != nil {
		return false
	}
	for _, topic := range topics {
		d, ok := details[topic]
		n := int32(len(d.Partitions))
		if !ok || d.Err != nil || n == 0 || (partitions > 0 && n != partitions) {
			return false
		}
		for _, p := range d.Partitions {
			if p.Err != nil || p.Leader < 0 {
				return false
			}
		}
	}
	return true
}

// deleteTopics is best effort: a leftover topic on a throwaway broker does
// not make a test wrong, so failure is only logged.
func (k *KafkaEnv) deleteTopics(t testing.TB, topics []string) {
	ctx, cancel := opContext(k.Timeout)
	defer cancel()
	resp, err := k.Admin.DeleteTopics(ctx, topics...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Logf("testenv: delete topics %v: %v", topics, err)
	}
}

// Client returns a franz-go client seeded with the env's brokers plus opts,
// closed when t ends.
func (k *KafkaEnv) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(k.Brokers...)}, opts...)...)
	checkErr(t, err, "kafka client")
	t.Cleanup(cl.Close)
	return cl
}

// Produce writes values, in order, to one partition of topic and returns
// their offsets once all are acknowledged. A nil value is a tombstone.
func (k *KafkaEnv) Produce(t testing.TB, topic string, partition int32, values ...[]byte) []int64 {
	t.Helper()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Partition: partition, Value: v}
	}
	return k.ProduceRecords(t, recs...)
}

// ProduceRecords writes records synchronously and returns their offsets in the
// order given. Each record's Topic and Partition are used as set (the
// producer uses kgo.ManualPartitioner); set Key and Headers as needed.
func (k *KafkaEnv) ProduceRecords(t testing.TB, recs ...*kgo.Record) []int64 {
	t.Helper()
	index := make(map[*kgo.Record]int, len(recs))
	for i, r := range recs {
		index[r] = i
	}
	ctx, cancel := opContext(k.Timeout)
	defer cancel()
	offsets := make([]int64, len(recs))
	// Results arrive per partition, not in argument order: map them back.
	for _, res := range k.producerClient(t).ProduceSync(ctx, recs...) {
		checkErr(t, res.Err, "produce to %s/%d", res.Record.Topic, res.Record.Partition)
		offsets[index[res.Record]] = res.Record.Offset
	}
	return offsets
}

func (k *KafkaEnv) producerClient(t testing.TB) *kgo.Client {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.producer == nil {
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(k.Brokers...),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerLinger(0),
		)
		checkErr(t, err, "kafka producer")
		k.producer = cl
	}
	return k.producer
}

// DeleteRecords advances the log start offset of topic/partition to before,
// as retention would: records below it can no longer be read. -1 means the
// high watermark (delete everything).
func (k *KafkaEnv) DeleteRecords(t testing.TB, topic string, partition int32, before int64) {
	t.Helper()
	var offsets kadm.Offsets
	offsets.Add(kadm.Offset{Topic: topic, Partition: partition, At: before})
	ctx, cancel := opContext(k.Timeout)
	defer cancel()
	resp, err := k.Admin.DeleteRecords(ctx, offsets)
	if err == nil {
		err = resp.Error()
	}
	checkErr(t, err, "delete records of %s/%d before %d", topic, partition, before)
}

// Offsets returns the log start offset and the high watermark (next offset
// to be written) of topic/partition.
func (k *KafkaEnv) Offsets(t testing.TB, topic string, partition int32) (start, end int64) {
	t.Helper()
	ctx, cancel := opContext(k.Timeout)
	defer cancel()
	starts, err := k.Admin.ListStartOffsets(ctx, topic)
	checkErr(t, err, "list start offsets of %s", topic)
	ends, err := k.Admin.ListEndOffsets(ctx, topic)
	checkErr(t, err, "list end offsets of %s", topic)
	s, ok := starts.Lookup(topic, partition)
	e, ok2 := ends.Lookup(topic, partition)
	if !ok || !ok2 {
		t.Fatalf("testenv: no offsets for %s/%d", topic, partition)
	}
	checkErr(t, s.Err, "start offset of %s/%d", topic, partition)
	checkErr(t, e.Err, "end offset of %s/%d", topic, partition)
	return s.Offset, e.Offset
}

func (k *KafkaEnv) timeout() time.Duration {
	if k.Timeout > 0 {
		return k.Timeout
	}
	return DefaultTimeout
}

// Environment variables naming the shared broker's secure listeners (set by
// scripts/test.sh services-up; see scripts/kafka.sh).
const (
	EnvKafkaSASLBrokers    = "KAFKA_SASL_BROKERS"     // SASL_PLAINTEXT listener
	EnvKafkaSASLSSLBrokers = "KAFKA_SASL_SSL_BROKERS" // SASL_SSL listener
	EnvKafkaSSLBrokers     = "KAFKA_SSL_BROKERS"      // SSL listener, client certificates required
	EnvKafkaTLSDir         = "KAFKA_TLS_DIR"          // ca.pem, client.pem, client-key.pem
)

// The PLAIN user the secure listeners were started with (scripts/kafka.sh).
// SCRAM users are created by the tests that need them.
const (
	KafkaPlainUser     = "gateway"
	KafkaPlainPassword = "gateway-secret"
)

// KafkaSecurity locates the shared cluster's secure listeners and the test
// certificates they use.
type KafkaSecurity struct {
	SASL, SASLSSL, SSL []string // seed brokers of each listener
	// CAFile signed the broker's and the client's certificates; CertFile
	// and KeyFile are the client's (PEM).
	CAFile, CertFile, KeyFile string
}

// KafkaSecure returns the shared cluster's secure listeners. Like Kafka, it
// skips the test when they are not configured, or fails it under
// DASHSTREAM_INTEGRATION=1.
func KafkaSecure(t testing.TB) KafkaSecurity {
	t.Helper()
	dir := os.Getenv(EnvKafkaTLSDir)
	s := KafkaSecurity{
		SASL:    splitBrokers(os.Getenv(EnvKafkaSASLBrokers)),
		SASLSSL: splitBrokers(os.Getenv(EnvKafkaSASLSSLBrokers)),
		SSL:     splitBrokers(os.Getenv(EnvKafkaSSLBrokers)),
	}
	if len(s.SASL) == 0 || len(s.SASLSSL) == 0 || len(s.SSL) == 0 || dir == "" {
		unavailable(t, "the secure Kafka listeners are not configured; run make test")
	}
	s.CAFile, s.CertFile, s.KeyFile = dir+"/ca.pem", dir+"/client.pem", dir+"/client-key.pem"
	return s
}
