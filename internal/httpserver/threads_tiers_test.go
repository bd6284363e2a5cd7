package httpserver

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/kafka"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// deepTiers holds n records of thread "deep" (sequences 1..n, tenant
// acme) on real Kafka, the newest redisRecs of them in a real Redis log
// (whose thread index references all) and the newest memRecs in memory.
func deepTiers(t *testing.T, n, redisRecs, memRecs int) *replay.Tiers {
	t.Helper()
	k, rd := testenv.Kafka(t), testenv.Redis(t)
	topic := k.Topic(t, 1)
	var values [][]byte
	for seq := 1; seq <= n; seq++ {
		v, err := dashstream.Encode(runEvent("deep", "acme", uint64(seq), pb.EventType_EVENT_TYPE_NODE_START, nil), dashstream.FramingPlain)
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, v)
	}
	k.Produce(t, topic, 0, values...)
	deep, err := kafka.NewDeepReader(kafka.DeepReadConfig{Brokers: k.Brokers, Topic: topic}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(deep.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs, _, err := deep.ReadAfter(ctx, 0, -1, n)
	if err != nil || len(recs) != n {
		t.Fatalf("read back %d of %d: %v", len(recs), n, err)
	}
	store, err := replay.NewRedis(rd.Client, replay.RedisConfig{Namespace: rd.Prefix, MaxPerPartition: redisRecs, MaxPerThread: n}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- store.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("redis Run: %v", err)
		}
	})
	testenv.WaitFor(t, 10*time.Second, store.Healthy, "redis breaker closed")
	tiers := replay.NewTiers(replay.NewMemory(replay.MemoryConfig{PerPartition: memRecs}), deep)
	tiers.SetRedis(store)
	tiers.Append(recs)
	if err := store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return tiers
}

// The records route pages one thread's history from Kafka (records the
// Redis log no longer holds), Redis and memory, in sequence order, as
// canonical JSON, for the tenant's token.
func TestThreadRecordsAcrossTiers(t *testing.T) {
	const n = 90
	f := threadsFixture(t, deepTiers(t, n, 40, 15)) // Kafka only: 1..50; Redis: 51..75; memory: 76..90
	hdr := bearer(tenantJWT(t, "acme", time.Now().Add(time.Hour)))
	var seqs []uint64
	after := "0"
	for range 100 {
		ans := getRecords(t, f, "/api/threads/deep/records?format=json&limit=7&after_sequence="+after, hdr)
		for _, r := range ans.Records {
			var msg struct {
				Event struct {
					Header struct {
						ThreadID string `json:"threadId"`
						Sequence string `json:"sequence"`
					} `json:"header"`
				} `json:"event"`
			}
			if err := json.Unmarshal(r.Message, &msg); err != nil || msg.Event.Header.ThreadID != "deep" ||
				!slices.Equal(r.Sequences, []string{msg.Event.Header.Sequence}) {
				t.Fatalf("record %+v: message %s (%v)", r, r.Message, err)
			}
			seq, _ := strconv.ParseUint(msg.Event.Header.Sequence, 10, 64)
			seqs = append(seqs, seq)
		}
		if ans.Next == nil {
			break
		}
		after = *ans.Next
	}
	want := make([]uint64, 0, n)
	for s := uint64(1); s <= n; s++ {
		want = append(want, s)
	}
	if !slices.Equal(seqs, want) {
		t.Fatalf("sequences %v, want 1..%d", seqs, n)
	}
	other := bearer(tenantJWT(t, "other", time.Now().Add(time.Hour)))
	if ans := getRecords(t, f, "/api/threads/deep/records?limit=1000", other); len(ans.Records) != 0 {
		t.Fatalf("another tenant reads %d records", len(ans.Records))
	}
	if w := f.do(t, http.MethodGet, "/api/threads/deep/records", "", nil); w.Code != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d", w.Code)
	}
}
