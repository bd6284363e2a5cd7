package e2e

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dashflow/dashstream-gateway/internal/hub"
	"github.com/dashflow/dashstream-gateway/internal/kafka"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// The hub is the consumer's sink: it must hear of partitions added at
// runtime.
var _ kafka.PartitionSink = (*hub.Hub)(nil)

// partitionClient is one connected client reading in the background.
type partitionClient struct {
	mu    sync.Mutex
	seen  map[int32]map[int64]int // offset -> times delivered
	gaps  []string
	err   error
	first map[int32]int64 // first offset delivered per partition
}

func (c *partitionClient) read(conn *wsclient.Conn) {
	for {
		m, err := conn.Next(context.Background())
		c.mu.Lock()
		if err != nil {
			c.err = err
			c.mu.Unlock()
			return
		}
		switch {
		case m.Kind == wsclient.KindRecord:
			p, o := m.Record.Partition, m.Record.Offset
			if c.seen[p] == nil {
				c.seen[p] = map[int64]int{}
				c.first[p] = o
			}
			c.seen[p][o]++
		case m.Control.Type == "gap" || m.Control.Type == "cursor_stale" || m.Control.Type == "error":
			c.gaps = append(c.gaps, m.Control.Type)
		}
		c.mu.Unlock()
	}
}

// reached reports whether the client got the last offset of every
// partition of want (check then tells what it got on the way).
func (c *partitionClient) reached(want map[int32][]int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, offs := range want {
		if c.seen[p][offs[len(offs)-1]] == 0 {
			return false
		}
	}
	return true
}

// roundProducer writes one event to every partition of the topic, round after
// round, until stopped; parts is read each round, so partitions created
// meanwhile get records as soon as it is raised.
type roundProducer struct {
	cl    atomic.Pointer[kgo.Client] // replaced by one that knows the new partitions
	topic string
	parts atomic.Int32
	mu    sync.Mutex
	offs  map[int32][]int64
	err   error
}

// addedBurst is how many records each new partition gets at once first.
const addedBurst = 1000

func (pr *roundProducer) run(ctx context.Context, t *testing.T) {
	for seq := uint64(addedBurst + 1); ctx.Err() == nil; seq++ {
		n := pr.parts.Load()
		recs := make([]*kgo.Record, n)
		for p := range n {
			recs[p] = &kgo.Record{Topic: pr.topic, Partition: p, Value: event(t, "fp"+strconv.Itoa(int(p)), seq)}
		}
		res := pr.cl.Load().ProduceSync(ctx, recs...)
		pr.mu.Lock()
		for _, r := range res {
			if r.Err != nil {
				if ctx.Err() == nil && pr.err == nil {
					pr.err = r.Err
				}
				continue
			}
			pr.offs[r.Record.Partition] = append(pr.offs[r.Record.Partition], r.Record.Offset)
		}
		pr.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
}

// TestFaultPartitionsAdded: partitions are added to the topic (kadm
// CreatePartitions) under a running gateway while a producer writes to
// every partition. The gateway reads them within a few seconds (its 1 s
// metadata health check, not the 30 s partition check), and every connected
// client gets every record of the new partitions exactly once, without a
// gap, although the first of them were evicted from the memory tier (100
// records per partition) before the clients read them (a burst of addedBurst
// records, published in one poll): they come from Kafka deep reads. The
// clients resumed before the partitions existed.
func TestFaultPartitionsAdded(t *testing.T) {
	k, topic := kafkaEnv(t, 2)
	env := gatewayEnv(k, topic)
	env["REPLAY_BUFFER_MEMORY_SIZE"] = "100"
	g := startGateway(t, env)

	producerOpts := []kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0)}
	pr := &roundProducer{topic: topic, offs: map[int32][]int64{}}
	pr.cl.Store(k.Client(t, producerOpts...))
	pr.parts.Store(2)
	ctx, stopProducer := context.WithCancel(context.Background())
	produced := make(chan struct{})
	go func() { defer close(produced); pr.run(ctx, t) }()
	t.Cleanup(func() { stopProducer(); <-produced })

	waitHeads(t, g, map[int32]int64{0: 20, 1: 20}, 30*time.Second)
	clients := make([]*partitionClient, 3)
	for i := range clients {
		resume := &wsclient.Resume{From: wsclient.FromLatest}
		if i == 2 {
			resume = &wsclient.Resume{From: wsclient.FromCursor, Offsets: map[int32]int64{0: 10}, Namespace: namespaceOf(t, g)}
		}
		c := &partitionClient{seen: map[int32]map[int64]int{}, first: map[int32]int64{}}
		conn := g.dial(resume)
		go c.read(conn)
		clients[i] = c
	}
	time.Sleep(time.Second) // the clients' replays are over

	actx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	created := time.Now()
	resp, err := k.Admin.CreatePartitions(actx, 2, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("create partitions: %v", err)
	}
	testenv.WaitFor(t, 30*time.Second, func() bool {
		td, err := k.Admin.ListTopics(actx, topic)
		return err == nil && len(td[topic].Partitions) == 4
	}, "4 partitions in the metadata")
	// A burst of addedBurst records in one batch to each new partition: the
	// consumer publishes it in one poll, so the memory tier evicts all but
	// its newest 100 before any session reads the partition.
	burst := k.Client(t, append(producerOpts, kgo.ManualFlushing())...)
	for p := int32(2); p < 4; p++ {
		for i := range addedBurst {
			burst.Produce(actx, &kgo.Record{Topic: topic, Partition: p, Value: event(t, "fp"+strconv.Itoa(int(p)), uint64(i+1))}, func(r *kgo.Record, err error) {
				pr.mu.Lock()
				defer pr.mu.Unlock()
				if err != nil && pr.err == nil {
					pr.err = err
				}
				if err == nil {
					pr.offs[r.Partition] = append(pr.offs[r.Partition], r.Offset)
				}
			})
		}
	}
	if err := burst.Flush(actx); err != nil {
		t.Fatalf("flush the burst: %v", err)
	}
	pr.cl.Store(k.Client(t, producerOpts...)) // its metadata knows them
	pr.parts.Store(4)
	var detected time.Duration
	testenv.WaitFor(t, 30*time.Second, func() bool {
		if len(g.Partitions()) == 4 {
			detected = time.Since(created)
			return true
		}
		return false
	}, "the gateway reads 4 partitions")
	time.Sleep(3 * time.Second) // records keep flowing into every partition
	stopProducer()
	<-produced
	if pr.err != nil {
		t.Fatalf("produce: %v", pr.err)
	}
	want := map[int32][]int64{2: pr.offs[2], 3: pr.offs[3]}
	for p := range int32(2) {
		offs := pr.offs[p]
		want[p] = offs[len(offs)-1:] // the old partitions' last records: the clients are caught up
	}
	for p := int32(2); p < 4; p++ {
		slices.Sort(want[p])
		if n := len(want[p]); n <= addedBurst || want[p][0] != 0 || want[p][n-1] != int64(n-1) {
			t.Fatalf("p%d: produced offsets %d..%d (%d): want more than the memory tier holds, from 0", p, want[p][0], want[p][n-1], n)
		}
	}
	for i, c := range clients {
		testenv.WaitFor(t, 60*time.Second, func() bool { return c.reached(want) || c.failed() }, "client "+strconv.Itoa(i)+" gets the last records")
		c.check(t, i, want)
	}
	t.Logf("partitions added: the gateway read them %v after CreatePartitions; %d and %d records of p2, p3 reached each of %d clients exactly once",
		detected.Round(time.Millisecond), len(want[2]), len(want[3]), len(clients))
	if detected > 10*time.Second {
		t.Errorf("new partitions read %v after their creation, want within a few seconds (health check every 1 s)", detected)
	}
}

func (c *partitionClient) failed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err != nil
}

// check fails unless the client got the new partitions' offsets of want
// exactly once each, nothing else of them, and no gap, stale cursor or
// error.
func (c *partitionClient) check(t *testing.T, i int, want map[int32][]int64) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil && !errors.Is(c.err, context.Canceled) {
		t.Fatalf("client %d ended: %v", i, c.err)
	}
	if len(c.gaps) > 0 {
		t.Fatalf("client %d got %s", i, strings.Join(c.gaps, ", "))
	}
	for p := int32(2); p < 4; p++ {
		if c.first[p] != 0 {
			t.Fatalf("client %d: p%d started at %d, want 0 (lost %d records)", i, p, c.first[p], c.first[p])
		}
		for _, o := range want[p] {
			if n := c.seen[p][o]; n != 1 {
				t.Fatalf("client %d: p%d@%d delivered %d times", i, p, o, n)
			}
		}
		if len(c.seen[p]) != len(want[p]) {
			t.Fatalf("client %d: p%d: %d distinct offsets, produced %d", i, p, len(c.seen[p]), len(want[p]))
		}
	}
	for p := range int32(2) { // from where the client started: each once, none skipped
		last := want[p][0]
		for o, n := range c.seen[p] {
			if n != 1 {
				t.Fatalf("client %d: p%d@%d delivered %d times", i, p, o, n)
			}
		}
		if got := int64(len(c.seen[p])); got != last-c.first[p]+1 {
			t.Fatalf("client %d: p%d: %d distinct offsets in %d..%d", i, p, got, c.first[p], last)
		}
	}
}
