package kafka

// Kafka security settings (README.md, Configuration) against real Apache
// Kafka: the shared broker of `make test` also listens with SASL_PLAINTEXT,
// SASL_SSL and SSL (client certificates required) — see scripts/kafka.sh.

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

const scramUser, scramPassword = "dashstream-scram", "scram-s3cret"

// createSCRAMUser adds scramUser for both SCRAM mechanisms (idempotent).
func createSCRAMUser(t *testing.T, k *testenv.KafkaEnv) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, mech := range []kadm.ScramMechanism{kadm.ScramSha256, kadm.ScramSha512} {
		// One mechanism per request: Kafka refuses two for one user at once.
		res, err := k.Admin.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
			{User: scramUser, Mechanism: mech, Iterations: 4096, Password: scramPassword},
		})
		if err == nil {
			err = res.Error()
		}
		if err != nil {
			t.Fatalf("create SCRAM user (%v): %v", mech, err)
		}
	}
}

// TestIntegrationSecurity runs every client of the kafka package — the
// consumer, the DLQ producer, the admin client that saves progress and the
// deep reader — over each secure listener and mechanism.
func TestIntegrationSecurity(t *testing.T) {
	t.Parallel()
	k := testenv.Kafka(t)
	ls := testenv.KafkaSecure(t)
	createSCRAMUser(t, k)
	cases := []struct {
		name    string
		brokers []string
		sec     Security
	}{
		{"sasl_plaintext PLAIN", ls.SASL, Security{Protocol: ProtocolSASLPlaintext, SASLMechanism: MechanismPlain,
			Username: testenv.KafkaPlainUser, Password: testenv.KafkaPlainPassword}},
		{"sasl_plaintext SCRAM-SHA-256", ls.SASL, Security{Protocol: ProtocolSASLPlaintext, SASLMechanism: MechanismScramSHA256,
			Username: scramUser, Password: scramPassword}},
		{"sasl_ssl SCRAM-SHA-512", ls.SASLSSL, Security{Protocol: ProtocolSASLSSL, SASLMechanism: MechanismScramSHA512,
			Username: scramUser, Password: scramPassword, CAFile: ls.CAFile}},
		{"ssl client certificate", ls.SSL, Security{Protocol: ProtocolSSL, CAFile: ls.CAFile,
			CertFile: ls.CertFile, KeyFile: ls.KeyFile}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			topic := k.Topic(t, 2)
			k.Produce(t, topic, 1, vector(t, "event_node_end_plain"), vector(t, "invalid_zstd_corrupt"))
			cfg := testConfig(tc.brokers, topic)
			cfg.InstanceID = topic
			cfg.Security = tc.sec
			r := startConsumer(t, cfg)
			eventually(t, "both records", func() bool { return r.sink.count() == 2 })
			auth, err := ClientOpts(tc.sec)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, tc.brokers, topic+"-dlq", 1, auth...) // dead-lettered over the same listener

			d, err := NewDeepReader(DeepReadConfig{Brokers: tc.brokers, Topic: topic, Security: tc.sec}, quietLogger())
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			page, err := d.Read(ctx, 1, -1, 10)
			if err != nil || len(page.Records) != 2 || page.Records[0].Offset != 0 {
				t.Fatalf("deep read: %d records, %v", len(page.Records), err)
			}

			r.stop() // saves progress through the authenticated admin client
			saved, err := k.Admin.FetchOffsets(ctx, DefaultGroupID+"."+cfg.InstanceID)
			if err != nil {
				t.Fatal(err)
			}
			if o, ok := saved.Lookup(topic, 1); !ok || o.At != 2 {
				t.Fatalf("saved progress of p1: %+v (found %v), want 2", o, ok)
			}
		})
	}
}

// TestIntegrationSecurityRefusals: wrong credentials, a missing client
// certificate and an untrusted broker certificate never connect, and say so
// in the connect error count.
func TestIntegrationSecurityRefusals(t *testing.T) {
	t.Parallel()
	k := testenv.Kafka(t)
	ls := testenv.KafkaSecure(t)
	cases := []struct {
		name    string
		brokers []string
		sec     Security
	}{
		{"wrong password", ls.SASL, Security{Protocol: ProtocolSASLPlaintext, SASLMechanism: MechanismPlain,
			Username: testenv.KafkaPlainUser, Password: "wrong"}},
		{"no client certificate", ls.SSL, Security{Protocol: ProtocolSSL, CAFile: ls.CAFile}},
		{"untrusted broker certificate", ls.SASLSSL, Security{Protocol: ProtocolSASLSSL, SASLMechanism: MechanismPlain,
			Username: testenv.KafkaPlainUser, Password: testenv.KafkaPlainPassword}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			topic := k.Topic(t, 1)
			k.Produce(t, topic, 0, vector(t, "event_node_end_plain"))
			cfg := testConfig(tc.brokers, topic)
			cfg.InstanceID = topic
			cfg.Security = tc.sec
			cfg.ExtraOpts = append(cfg.ExtraOpts, kgo.RetryTimeout(100*time.Millisecond))
			r := startConsumer(t, cfg)
			eventually(t, "a refused connection", func() bool { return !r.Reachable() && errorsCounted(r) })
			time.Sleep(500 * time.Millisecond)
			if n := r.sink.count(); n != 0 || len(r.Partitions()) != 0 {
				t.Fatalf("%d records and partitions %v through a refused connection", n, r.Partitions())
			}
		})
	}
}
