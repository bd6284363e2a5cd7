package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// TestCoreKafkaSecurity runs the whole gateway, configured by its
// variables only (README.md, Configuration), against real Kafka's secure
// listeners: live delivery, a replay older than the memory tier (Kafka
// deep reads), a dead-lettered record and /health all go through the
// authenticated, encrypted clients.
func TestCoreKafkaSecurity(t *testing.T) {
	k := testenv.Kafka(t)
	ls := testenv.KafkaSecure(t)
	cases := []struct {
		name string
		env  map[string]string
	}{
		{"sasl_ssl PLAIN", map[string]string{
			"KAFKA_BROKERS":           strings.Join(ls.SASLSSL, ","),
			"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "PLAIN",
			"KAFKA_SASL_USERNAME": testenv.KafkaPlainUser, "KAFKA_SASL_PASSWORD": testenv.KafkaPlainPassword,
			"KAFKA_SSL_CA_LOCATION": ls.CAFile,
		}},
		{"ssl client certificate", map[string]string{
			"KAFKA_BROKERS":           strings.Join(ls.SSL, ","),
			"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": ls.CAFile,
			"KAFKA_SSL_CERTIFICATE_LOCATION": ls.CertFile, "KAFKA_SSL_KEY_LOCATION": ls.KeyFile,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			topic := k.Topic(t, 1)
			env := map[string]string{"KAFKA_TOPIC": topic, "REPLAY_BUFFER_MEMORY_SIZE": "5"}
			for key, v := range tc.env {
				env[key] = v
			}
			old, _ := produceEvents(t, k, topic, 0, 1, 20) // offsets 0..19: memory will keep 5
			bad := produceRaw(t, k, topic, 0, vector(t, "invalid_zstd_corrupt.bin"))[0]
			g := startGateway(t, env)
			waitHeads(t, g, map[int32]int64{0: bad}, 30*time.Second)

			c := g.dial(&wsclient.Resume{Offsets: map[int32]int64{0: -1}})
			var s stream
			readMore(t, c, &s, 30*time.Second, "replay", untilControl("replay_complete", 1))
			assertOffsets(t, "replay", s.records(), map[int32][]int64{0: old})
			if n := len(s.controls("skipped")); n != 1 {
				t.Fatalf("%d skipped frames, want 1 (offset %d)", n, bad)
			}
			if v, _ := sampleValue(scrape(t, g), "websocket_replay_tier_hits_total", map[string]string{"tier": "kafka"}); v < 1 {
				t.Fatal("no replay page came from Kafka: the deep reader did not read over the secure listener")
			}

			live, _ := produceEvents(t, k, topic, 0, 21, 3)
			readMore(t, c, &s, 30*time.Second, "live", func(s *stream) bool { return len(s.records()) == len(old)+3 })
			assertOffsets(t, "live", s.records()[len(old):], map[int32][]int64{0: live})

			_, health := getJSON(t, g, "/health")
			if health["kafka_status"] != "connected" {
				t.Fatalf("/health kafka_status %v", health["kafka_status"])
			}
			dlq := k.Client(t, kgo.ConsumeTopics(topic+"-dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if fs := dlq.PollRecords(ctx, 1); ctx.Err() != nil || len(fs.Records()) != 1 {
				t.Fatalf("DLQ record not produced over the secure listener: %v", ctx.Err())
			}
		})
	}
}
