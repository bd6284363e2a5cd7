package client_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/dashflow/dashstream-gateway/internal/app"
	"github.com/dashflow/dashstream-gateway/internal/app/apptest"
	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/hub/hubtest"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
	"github.com/dashflow/dashstream-gateway/pkg/client"
)

// realGateway runs the whole gateway (app.New + Run) on the shared real
// Kafka and Redis (make services-up; skipped without them unless
// DASHSTREAM_INTEGRATION=1) with a fresh topic of two partitions and a
// memory tier of memSize records per partition, so that older records are
// read back from Redis or Kafka.
func realGateway(t *testing.T, memSize int) (url string, k *testenv.KafkaEnv, topic string) {
	t.Helper()
	k = testenv.Kafka(t)
	r := testenv.Redis(t)
	topic = k.Topic(t, 2)
	env := map[string]string{
		"WEBSOCKET_HOST": "127.0.0.1", "WEBSOCKET_PORT": "0",
		"KAFKA_BROKERS": strings.Join(k.Brokers, ","), "KAFKA_TOPIC": topic, "REDIS_URL": r.URL,
		"KAFKA_AUTO_OFFSET_RESET": "earliest", "KAFKA_PROGRESS_INTERVAL_SECS": "0.2",
		"REPLAY_BUFFER_MEMORY_SIZE": strconv.Itoa(memSize), "WEBSOCKET_RESUME_WAIT_MS": "300",
		"SHUTDOWN_TIMEOUT_SECS": "10", "EXPECTED_SCHEMAS_PATH": filepath.Join(t.TempDir(), "schemas.json"),
		"INSTANCE_ID": "client-" + strconv.FormatInt(time.Now().UnixNano(), 36), "LOG_LEVEL": "error",
	}
	a := apptest.Start(t, env, app.Options{})
	return "ws://" + a.HTTPAddr() + "/ws", k, topic
}

// event is a valid DashStream event of thread "t<p>" with sequence seq.
func event(t *testing.T, p int32, seq uint64) []byte {
	t.Helper()
	v, err := dashstream.Encode(&pb.DashStreamMessage{Message: &pb.DashStreamMessage_Event{Event: &pb.Event{
		Header:    &pb.Header{ThreadId: "t" + strconv.Itoa(int(p)), Sequence: seq, TimestampUs: time.Now().UnixMicro(), Type: pb.MessageType_MESSAGE_TYPE_EVENT},
		EventType: pb.EventType_EVENT_TYPE_NODE_START, NodeId: "n"}}}, dashstream.FramingPlain)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRealGatewayExactAcrossTiersAndCuts: against the real gateway, a
// client restarted from a cursor far behind the memory tier reads the rest
// from Redis and Kafka, and a client cut off again and again while records
// are produced still applies every record exactly once, in order.
func TestRealGatewayExactAcrossTiersAndCuts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway on the real Kafka and Redis")
	}
	const n = 240
	url, k, topic := realGateway(t, 20)
	host := strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/ws")
	px := hubtest.NewProxy(t, host)

	want := map[int32][]int64{}
	produce := func(from, to int) {
		for _, p := range []int32{0, 1} {
			vals := make([][]byte, 0, to-from)
			for s := from; s < to; s++ {
				vals = append(vals, event(t, p, uint64(s+1)))
			}
			want[p] = append(want[p], k.Produce(t, topic, p, vals...)...)
		}
	}
	produce(0, n/2)

	// A cursor at the 10th record: memory keeps the last 20, the rest comes
	// from the slower tiers.
	store := &client.MemoryStore{}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := store.Save(ctx, client.Cursor{Offsets: map[int32]int64{0: want[0][9], 1: want[1][9]}}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, px.URL(), client.Options{Store: store, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})

	got := map[int32][]int64{}
	read := func(count int) {
		for range count {
			r, err := c.Next(ctx)
			if err != nil {
				t.Fatalf("after %v: %v", got, err)
			}
			got[r.Partition] = append(got[r.Partition], r.Offset)
		}
	}
	caughtUp := func() { read(len(want[0]) + len(want[1]) - 20 - len(got[0]) - len(got[1])) }
	caughtUp()             // through Redis and Kafka, then memory
	for round := range 4 { // each round's records need a new connection
		px.Cut()
		produce(n/2+round*n/8, n/2+(round+1)*n/8)
		caughtUp()
	}
	for _, p := range []int32{0, 1} {
		if join(got[p]) != join(want[p][10:]) {
			t.Fatalf("partition %d:\n got %v\nwant %v", p, got[p], want[p][10:])
		}
	}
	if st := c.Stats(); st.Connects < 5 || st.Gaps != 0 || st.Duplicates != 0 {
		t.Fatalf("stats %+v: the cuts did not reach the client, or records were lost", st)
	}
}

// TestRealGatewayV2JSONFilter: against the real gateway, a v2 JSON client
// following one thread from the start of the topic (a cursor of -1: not
// "earliest", whose start is the replay window's oldest record at the
// resume, later than offset 0 while Redis is still being written) gets
// exactly that thread's records, also those read back from Redis and Kafka.
func TestRealGatewayV2JSONFilter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway on the real Kafka and Redis")
	}
	url, k, topic := realGateway(t, 10)
	var want []int64
	for _, p := range []int32{0, 1} {
		vals := make([][]byte, 60)
		for i := range vals {
			vals[i] = event(t, p, uint64(i+1))
		}
		offs := k.Produce(t, topic, p, vals...)
		if p == 1 {
			want = offs
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	store := &client.MemoryStore{}
	if err := store.Save(ctx, client.Cursor{Offsets: map[int32]int64{0: -1, 1: -1}}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, url, client.Options{Store: store, V2: true, JSON: true, Filter: client.Filter{Threads: []string{"t1"}}})
	var got []int64
	for len(got) < len(want) {
		r, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		var m pb.DashStreamMessage
		if r.Partition != 1 || protojson.Unmarshal(r.JSON, &m) != nil || m.GetEvent().GetHeader().GetThreadId() != "t1" {
			t.Fatalf("p%d@%d: %s", r.Partition, r.Offset, r.JSON)
		}
		got = append(got, r.Offset)
	}
	if join(got) != join(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}
