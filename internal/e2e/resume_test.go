package e2e

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// TestCoreResumeModes: resume after a disconnect with cursor, earliest,
// latest, a cursor at the head, unlisted partitions, offset 0 and cursor -1,
// all against one gateway whose memory tier holds only the last 8 records
// of each partition (so old cursors are served from Kafka and "the oldest
// record of the replay window" differs from the log start). Every client
// gets exactly the offsets after its cursor, one replay_complete after
// exactly its replayed records, then the same live records, with no
// duplicate and no hole.
func TestCoreResumeModes(t *testing.T) {
	const parts = 4
	k, topic := kafkaEnv(t, parts)
	env := gatewayEnv(k, topic)
	env["REPLAY_BUFFER_MEMORY_SIZE"] = "8"
	g := startGateway(t, env)

	produced := map[int32][]int64{}
	produce := func(n int) {
		for p := int32(0); p < parts; p++ {
			offs, _ := produceEvents(t, k, topic, p, uint64(len(produced[p])), n)
			produced[p] = append(produced[p], offs...)
		}
		waitHeads(t, g, lastOf(produced), 30*time.Second)
	}
	produce(12) // offsets 0..11; memory holds 4..11
	for p, offs := range produced {
		if !slices.Equal(offs, offsetRange(0, 11)) {
			t.Fatalf("partition %d: produced offsets %v, want 0..11 on a fresh topic", p, offs)
		}
	}

	// A: earliest = from the oldest record of the replay window (memory
	// holds the last 8), not from the log start. A applies 20 of them and
	// disconnects abruptly.
	a := g.dial(&wsclient.Resume{From: wsclient.FromEarliest})
	var as stream
	readMore(t, a, &as, 20*time.Second, "client A (earliest)", untilControl("replay_complete", 1))
	rcA := replayCompleteOf(t, &as)
	wantA := map[int32][]int64{}
	for p := int32(0); p < parts; p++ {
		wantA[p] = offsetRange(4, 11)
	}
	assertOffsets(t, "A earliest", as.records(), wantA)
	if rcA.Mode != "earliest" || rcA.TotalReplayed != 32 || rcA.Capped || as.recordsBefore("replay_complete") != 32 {
		t.Errorf("A replay_complete = %+v after %d records; want mode earliest, 32 replayed, not capped", rcA, as.recordsBefore("replay_complete"))
	}
	// A "applied" only its first 20 records: that is its cursor.
	applied := as.records()[:20]
	cursorB := map[int32]int64{}
	for _, r := range applied {
		cursorB[r.Partition] = r.Offset
	}
	a.CloseNow()

	produce(5) // offsets 12..16; memory holds 9..16

	// B resumes with A's cursor; partitions A never saw are unlisted and
	// replay from the oldest record of the window (9).
	b := g.dial(&wsclient.Resume{From: wsclient.FromCursor, Offsets: cursorB})
	wantB := map[int32][]int64{}
	for p := int32(0); p < parts; p++ {
		if o, ok := cursorB[p]; ok {
			wantB[p] = offsetsAfter(produced[p], o)
		} else {
			wantB[p] = offsetRange(9, 16)
		}
	}
	// C: explicit cursors: 0 (offset 0 applied: 1.. from Kafka then memory),
	// -1 (nothing applied: from offset 0), 14 (the last two); p3 unlisted.
	cursorC := map[int32]int64{0: 0, 1: -1, 2: 14}
	c := g.dial(&wsclient.Resume{From: wsclient.FromCursor, Offsets: cursorC})
	wantC := map[int32][]int64{0: offsetRange(1, 16), 1: offsetRange(0, 16), 2: offsetRange(15, 16), 3: offsetRange(9, 16)}
	// D: latest: nothing replayed.
	d := g.dial(&wsclient.Resume{From: wsclient.FromLatest})
	// E: a cursor at the head of every partition: nothing to replay.
	e := g.dial(&wsclient.Resume{Offsets: map[int32]int64{0: 16, 1: 16, 2: 16, 3: 16}})
	// F: a cursor beyond the high watermark (17) cannot belong to this
	// topic: cursor_stale, and the partition replays as if unlisted.
	f := g.dial(&wsclient.Resume{Offsets: map[int32]int64{0: 1000, 1: 16}})
	wantF := map[int32][]int64{0: offsetRange(9, 16), 2: offsetRange(9, 16), 3: offsetRange(9, 16)}

	heads := map[int32]wsclient.Offset{0: 16, 1: 16, 2: 16, 3: 16}
	type client struct {
		name   string
		c      *wsclient.Conn
		replay map[int32][]int64
		mode   string
	}
	clients := []client{
		{"B (cursor of A)", b, wantB, "cursor"},
		{"C (cursors 0, -1, 14, unlisted)", c, wantC, "cursor"},
		{"D (latest)", d, map[int32][]int64{}, "latest"},
		{"E (cursor at head)", e, map[int32][]int64{}, "cursor"},
		{"F (cursor beyond the high watermark)", f, wantF, "cursor"},
	}
	streams := make([]stream, len(clients))
	for i, cl := range clients {
		s := &streams[i]
		readMore(t, cl.c, s, 20*time.Second, cl.name, untilControl("replay_complete", 1))
		total := 0
		for _, o := range cl.replay {
			total += len(o)
		}
		rc := replayCompleteOf(t, s)
		if rc.Mode != cl.mode || rc.TotalReplayed != total || rc.Capped || !maps.Equal(rc.LastOffsetsByPartition, heads) {
			t.Errorf("%s: replay_complete %+v; want mode %s, totalReplayed %d, lastOffsets %v", cl.name, rc, cl.mode, total, heads)
		}
		if n := s.recordsBefore("replay_complete"); n != total {
			t.Errorf("%s: replay_complete after %d records, want %d", cl.name, n, total)
		}
	}

	produce(3) // live: 17..19
	for i, cl := range clients {
		s := &streams[i]
		readMore(t, cl.c, s, 20*time.Second, cl.name+" live", func(s *stream) bool {
			return s.reachedAll(map[int32]int64{0: 19, 1: 19, 2: 19, 3: 19})
		})
		want := map[int32][]int64{}
		for p := int32(0); p < parts; p++ {
			want[p] = append(slices.Clone(cl.replay[p]), 17, 18, 19)
		}
		assertOffsets(t, cl.name, s.records(), want)
		for _, ctl := range s.controls("") {
			if ctl.Type == "cursor_stale" && cl.c == f {
				cs := decodeControl[wsclient.CursorStale](t, ctl)
				if cs.Partition != 0 || cs.Requested != 1000 {
					t.Errorf("%s: %s, want cursor_stale for p0 requested 1000", cl.name, ctl.Raw)
				}
				continue
			}
			if ctl.Type != "replay_complete" {
				t.Errorf("%s: unexpected control frame %s", cl.name, ctl.Raw)
			}
		}
		if n := len(s.controls("cursor_stale")); (cl.c == f) != (n == 1) {
			t.Errorf("%s: %d cursor_stale frames", cl.name, n)
		}
	}
}

// TestCoreHandoverUnderLiveLoad: a producer keeps writing to every
// partition while clients resume from cursors taken at different points
// (random cursors, -1, the current head, no partition listed, latest). Each
// client ends with exactly the produced offsets after its cursor, per
// partition in order: the replay→live handover loses and duplicates nothing
// while records keep arriving. The small-memory variant forces old cursors
// through Kafka deep reads while the memory tier evicts under the reader.
func TestCoreHandoverUnderLiveLoad(t *testing.T) {
	for _, tc := range []struct {
		name   string
		memory string
	}{{"memory", "1000"}, {"deep-reads", "40"}} {
		t.Run(tc.name, func(t *testing.T) {
			testHandoverUnderLoad(t, tc.memory)
		})
	}
}

func testHandoverUnderLoad(t *testing.T, memorySize string) {
	const (
		parts     = 4
		rounds    = 60
		perRound  = 5 // records per partition per round
		clients   = 7
		checkFrom = 4 // first round after which a client connects
	)
	k, topic := kafkaEnv(t, parts)
	env := gatewayEnv(k, topic)
	env["REPLAY_BUFFER_MEMORY_SIZE"] = memorySize
	// Every client sends its resume; on a loaded machine the harness's
	// 300 ms can pass before the server's reader hands it over, and the
	// client would then be served as from:"latest" first.
	env["WEBSOCKET_RESUME_WAIT_MS"] = "10000"
	g := startGateway(t, env)
	prod := k.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))

	// The producer runs rounds; at checkpoints it hands what it produced so
	// far to the test and waits until a client has connected, then goes on
	// at once: the client's replay overlaps live production.
	type checkpoint struct {
		produced map[int32][]int64
		resume   chan struct{}
	}
	checkpoints := make(chan checkpoint)
	var mu sync.Mutex
	produced := map[int32][]int64{}
	prodErr := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	at := map[int]bool{}
	for i := range clients {
		at[checkFrom+i*(rounds-checkFrom)/clients] = true
	}
	values := make([][]byte, rounds*parts*perRound) // encoded here: t.Fatal belongs to this goroutine
	for i := range values {
		values[i] = event(t, "load-"+strconv.Itoa(i/perRound%parts), uint64(i+1))
	}
	go func() {
		defer close(checkpoints)
		next := 0
		for r := range rounds {
			if at[r] {
				mu.Lock()
				snap := map[int32][]int64{}
				for p, o := range produced {
					snap[p] = slices.Clone(o)
				}
				mu.Unlock()
				cp := checkpoint{snap, make(chan struct{})}
				select {
				case checkpoints <- cp:
				case <-ctx.Done():
					prodErr <- ctx.Err()
					return
				}
				select {
				case <-cp.resume:
				case <-ctx.Done():
					prodErr <- ctx.Err()
					return
				}
			}
			var recs []*kgo.Record
			for p := int32(0); p < parts; p++ {
				for range perRound {
					recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: values[next]})
					next++
				}
			}
			res := prod.ProduceSync(ctx, recs...)
			if err := res.FirstErr(); err != nil {
				prodErr <- err
				return
			}
			mu.Lock()
			for _, rec := range recs { // in order per partition
				produced[rec.Partition] = append(produced[rec.Partition], rec.Offset)
			}
			mu.Unlock()
		}
		prodErr <- nil
	}()

	type client struct {
		name   string
		cursor map[int32]int64 // nil: from the replay_complete of a latest resume
		latest bool
		s      stream
		err    chan error
	}
	final := map[int32]int64{}
	for p := int32(0); p < parts; p++ {
		final[p] = rounds*perRound - 1 // a fresh topic's offsets are 0.. (checked below)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var cls []*client
	i := 0
	for cp := range checkpoints {
		cl := &client{err: make(chan error, 1)}
		cur := map[int32]int64{}
		switch i % 5 {
		case 0, 1: // random cursors (including -1)
			for p := int32(0); p < parts; p++ {
				n := len(cp.produced[p])
				cur[p] = int64(rng.IntN(n+1)) - 1
			}
			cl.name = fmt.Sprintf("client %d random cursor %v", i, cur)
		case 2: // at the producer's position: (almost) pure live
			for p := int32(0); p < parts; p++ {
				cur[p] = int64(len(cp.produced[p])) - 1
			}
			cl.name = fmt.Sprintf("client %d cursor at head %v", i, cur)
		case 3: // nothing listed: every partition from the window's oldest
			cl.name = fmt.Sprintf("client %d no partition listed", i)
		case 4:
			cl.latest, cur = true, nil
			cl.name = fmt.Sprintf("client %d latest", i)
		}
		cl.cursor = cur
		// Cursors are offsets this gateway already consumed: a cursor the
		// gateway has not fetched yet is TestCoreCursorAheadOfConsumer's case.
		waitHeads(t, g, lastOf(cp.produced), 30*time.Second)
		res := &wsclient.Resume{From: wsclient.FromCursor, Offsets: cur}
		if cl.latest {
			res = &wsclient.Resume{From: wsclient.FromLatest}
		}
		conn := g.dial(res)
		close(cp.resume) // production goes on while the client replays
		cls = append(cls, cl)
		go func() {
			cl.err <- readMoreCtx(ctx, conn, &cl.s, func(s *stream) bool {
				return len(s.controls("")) > 0 && s.reachedAll(final)
			})
		}()
		i++
	}
	if err := <-prodErr; err != nil {
		t.Fatalf("producer: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for p := int32(0); p < parts; p++ {
		if !slices.Equal(produced[p], offsetRange(0, final[p])) {
			t.Fatalf("partition %d: produced offsets %s, want 0..%d", p, fmtOffsets(produced[p]), final[p])
		}
	}
	if len(cls) != clients {
		t.Fatalf("%d clients connected, want %d", len(cls), clients)
	}
	for _, cl := range cls {
		if err := <-cl.err; err != nil {
			t.Errorf("%s: %v; got %s", cl.name, err, cl.s.summary())
			continue
		}
		rc := replayCompleteOf(t, &cl.s)
		cursor := cl.cursor
		if cl.latest {
			cursor = rcLast(rc)
			for p := int32(0); p < parts; p++ {
				if _, ok := cursor[p]; !ok {
					cursor[p] = -1 // no head yet: everything is live
				}
			}
		}
		want := map[int32][]int64{}
		for p := int32(0); p < parts; p++ {
			o, ok := cursor[p]
			if !ok {
				// Unlisted: from the oldest record of the replay window,
				// which is offset 0 while memory holds every record; when it
				// evicts, the start moved and is read off the stream.
				o = -1
				if memorySize != "1000" {
					o = windowStart(t, &cl.s, p)
				}
			}
			want[p] = offsetsAfter(produced[p], o)
		}
		assertOffsets(t, cl.name, cl.s.records(), want)
		for _, ctl := range cl.s.controls("") {
			if ctl.Type != "replay_complete" {
				t.Errorf("%s: unexpected control frame %s", cl.name, ctl.Raw)
			}
		}
	}
}

// windowStart is the cursor an unlisted partition started from: one before
// the first offset the client received on it (the oldest record of the
// replay window at the resume, which the test cannot know in advance when
// the window moves). The rest of the partition must then be exact.
func windowStart(t testing.TB, s *stream, p int32) int64 {
	t.Helper()
	for _, r := range s.records() {
		if r.Partition == p {
			return r.Offset - 1
		}
	}
	t.Fatalf("no record of unlisted partition %d", p)
	return 0
}

// TestCoreCursorAheadOfConsumer: a client resumes with a cursor that is a
// real, acknowledged offset which this instance has not consumed yet (it
// got it from another instance, or this instance is behind). docs/PROTOCOL.md §3.4:
// "A cursor above this instance's head but below the high watermark (this
// instance is behind): nothing is sent for that partition until the
// consumer passes the cursor." The partition is held behind by the pause
// policy (a decode failure) so that the instance stays behind
// deterministically; once an admin resumes the partition, the client gets
// exactly the offsets after its cursor (the skipped offset is below it).
// Only a cursor at or beyond the partition's real high watermark is stale.
func TestCoreCursorAheadOfConsumer(t *testing.T) {
	k, topic := kafkaEnv(t, 1)
	env := gatewayEnv(k, topic)
	env["KAFKA_ON_DECODE_ERROR"] = "pause"
	env["ADMIN_TOKEN"] = "core-admin"
	env["KAFKA_LAG_CHECK_INTERVAL_SECS"] = "30" // the default is 10: keep the behind state stable for the test
	g := startGateway(t, env)
	first, _ := produceEvents(t, k, topic, 0, 0, 5) // 0..4
	waitHeads(t, g, map[int32]int64{0: first[4]}, 30*time.Second)
	bad := produceRaw(t, k, topic, 0, vector(t, "invalid_truncated_plain.bin")) // 5: pauses the partition
	testenv.WaitFor(t, 20*time.Second, func() bool {
		_, h := getJSON(t, g, "/health")
		ps, _ := h["paused_partitions"].([]any)
		return len(ps) == 1
	}, "partition 0 paused")
	rest, _ := produceEvents(t, k, topic, 0, 5, 4) // 6..9, acknowledged by Kafka, not consumed by the gateway
	if bad[0] != 5 || rest[0] != 6 || rest[3] != 9 {
		t.Fatalf("offsets: bad %v, rest %v", bad, rest)
	}

	c := g.dial(&wsclient.Resume{Offsets: map[int32]int64{0: 7}})
	var s stream
	readMore(t, c, &s, 10*time.Second, "resume ahead of the consumer", untilControl("replay_complete", 1))
	if rc := replayCompleteOf(t, &s); rc.TotalReplayed != 0 || len(s.records()) != 0 || len(s.controls("cursor_stale")) != 0 {
		t.Errorf("cursor 7 (high watermark 10, this instance's head 4): got %s; want nothing replayed and no cursor_stale", s.summary())
	}

	req, _ := http.NewRequest(http.MethodPost, g.base+"/api/admin/partitions/0/resume", nil)
	req.Header.Set("Authorization", "Bearer core-admin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("admin resume: HTTP %d", resp.StatusCode)
	}
	live, _ := produceEvents(t, k, topic, 0, 9, 1) // 10
	readMore(t, c, &s, 20*time.Second, "after the consumer passed the cursor", func(s *stream) bool {
		return s.reachedAll(map[int32]int64{0: live[0]})
	})
	assertOffsets(t, "cursor ahead of the consumer", s.records(), map[int32][]int64{0: {8, 9, 10}})
}
