package kafka

import (
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestClientOpts(t *testing.T) {
	tests := []struct {
		name  string
		sec   Security
		nOpts int
		ok    bool
	}{
		{"zero is plaintext", Security{}, 0, true},
		{"plaintext", Security{Protocol: "PLAINTEXT"}, 0, true},
		{"ssl", Security{Protocol: "ssl"}, 1, true},
		{"sasl plain", Security{Protocol: "sasl_plaintext", SASLMechanism: "PLAIN", Username: "u", Password: "p"}, 1, true},
		{"sasl ssl scram", Security{Protocol: "SASL_SSL", SASLMechanism: "scram-sha-512", Username: "u", Password: "p"}, 2, true},
		{"oauth", Security{Protocol: "sasl_ssl", SASLMechanism: "OAUTHBEARER", Password: "token"}, 2, true},
		{"unknown protocol", Security{Protocol: "tls"}, 0, false},
		{"sasl without mechanism", Security{Protocol: "sasl_plaintext", Username: "u", Password: "p"}, 0, false},
		{"mechanism without sasl", Security{Protocol: "ssl", SASLMechanism: "PLAIN", Username: "u", Password: "p"}, 0, false},
		{"credentials without sasl", Security{Username: "u"}, 0, false},
		{"unknown mechanism", Security{Protocol: "sasl_plaintext", SASLMechanism: "GSSAPI", Username: "u", Password: "p"}, 0, false},
		{"plain without password", Security{Protocol: "sasl_plaintext", SASLMechanism: "PLAIN", Username: "u"}, 0, false},
		{"oauth without token", Security{Protocol: "sasl_plaintext", SASLMechanism: "OAUTHBEARER"}, 0, false},
		{"tls files without tls", Security{CAFile: "/ca.pem"}, 0, false},
		{"cert without key", Security{Protocol: "ssl", CertFile: "/c.pem"}, 0, false},
		{"missing CA file", Security{Protocol: "ssl", CAFile: "/nonexistent/ca.pem"}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := ClientOpts(tc.sec)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidSecurity) {
				t.Fatalf("error %v does not wrap ErrInvalidSecurity", err)
			}
			if len(opts) != tc.nOpts {
				t.Fatalf("%d options, want %d", len(opts), tc.nOpts)
			}
		})
	}
}

func TestSASLAgainstKfake(t *testing.T) {
	for _, mech := range []string{MechanismPlain, MechanismScramSHA256, MechanismScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			c, topic := fakeCluster(t, 2, kfake.EnableSASL(), kfake.Superuser(mech, "gateway", "s3cret"))
			brokers := c.ListenAddrs()
			sec := Security{Protocol: ProtocolSASLPlaintext, SASLMechanism: mech, Username: "gateway", Password: "s3cret"}
			auth, err := ClientOpts(sec)
			if err != nil {
				t.Fatal(err)
			}
			prod := producer(t, brokers, auth...)
			v, bad := vector(t, "event_node_end_plain"), vector(t, "invalid_zstd_corrupt")
			produce(t, prod, topic, 1, v, bad)

			cfg := testConfig(brokers, topic)
			cfg.Security = sec
			r := startConsumer(t, cfg)
			eventually(t, "records over SASL", func() bool { return r.sink.count() == 2 })
			if !slices.Equal(r.Partitions(), []int32{0, 1}) {
				t.Fatalf("partitions %v", r.Partitions())
			}
			// The DLQ producer authenticates too.
			readAll(t, brokers, topic+"-dlq", 1, auth...)
			r.stop() // the final commit goes through the authenticated admin client
		})
	}
}

func TestSASLWrongPasswordNeverConnects(t *testing.T) {
	c, topic := fakeCluster(t, 1, kfake.EnableSASL(), kfake.Superuser(MechanismPlain, "gateway", "s3cret"))
	cfg := testConfig(c.ListenAddrs(), topic)
	cfg.Security = Security{Protocol: ProtocolSASLPlaintext, SASLMechanism: MechanismPlain, Username: "gateway", Password: "wrong"}
	cfg.ExtraOpts = append(cfg.ExtraOpts, kgo.RetryTimeout(100e6))
	r := startConsumer(t, cfg)
	eventually(t, "a failed dial", func() bool { return len(r.Partitions()) == 0 && !r.Reachable() && errorsCounted(r) })
}
