package replaytest

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/dashflow/dashstream-gateway/internal/replay"
)

func testBounds(t *testing.T, e *env) {
	if _, _, ok := e.bounds(0); ok {
		t.Fatal("empty store: Bounds ok")
	}
	e.appendRecs(chain(0, 7, 12)...)
	e.appendRecs(rec(5, 0, -1))
	e.wantBounds(0, 7, 12)
	e.wantBounds(5, 0, 0)
	if _, _, ok := e.bounds(1); ok {
		t.Fatal("unknown partition: Bounds ok")
	}
}

func testClear(t *testing.T, e *env) {
	e.appendRecs(withThreads(rec(0, 10, 9), ts("T", 5)), withThreads(rec(1, 3, 2), ts("T", 6)))
	if err := e.s.Clear(ctx(t)); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	for _, p := range []int32{0, 1} {
		if got, _ := e.read(p, -1, all); len(got) != 0 {
			t.Fatalf("p%d after Clear: %v", p, offsets(got))
		}
		if _, _, ok := e.bounds(p); ok {
			t.Fatalf("p%d after Clear: Bounds ok", p)
		}
	}
	wantRefs(t, "T after Clear", e.refs("T", 0, 10), nil)
	e.appendRecs(chain(0, 0, 4)...) // lower offsets than before are new again
	got, _ := e.read(0, -1, all)
	wantOffsets(t, "p0 written after Clear", got, span(0, 4))
}

func testExpiry(t *testing.T, e *env) {
	if e.opts.Expire == nil {
		t.Skip("store has no expiry")
	}
	e.appendRecs(withThreads(rec(0, 0, -1), ts("T", 1)), withThreads(rec(1, 0, -1), ts("T", 2)))
	e.opts.Expire(t, e.s)
	for _, p := range []int32{0, 1} {
		if got, _ := e.read(p, -1, all); len(got) != 0 {
			t.Fatalf("p%d after expiry: %v", p, offsets(got))
		}
	}
	wantRefs(t, "T after expiry", e.refs("T", 0, 10), nil)
}

// testConcurrent runs writers (one per partition, several batches) and
// readers at once; every page must be ordered and intact, and in the end
// every partition holds its newest records.
func testConcurrent(t *testing.T, e *env) {
	const parts, n = 4, 400
	var wg sync.WaitGroup
	done := make(chan struct{})
	for p := range int32(parts) {
		wg.Go(func() { writeChain(t, e.s, p, n) })
	}
	var readers sync.WaitGroup
	for i := range 4 {
		readers.Go(func() { readLoop(t, e.s, int32(i%parts), done) })
	}
	wg.Wait()
	e.flush(e.s)
	close(done)
	readers.Wait()
	oldest := e.oldestKept(n)
	for p := range int32(parts) {
		got := e.readAll(p, oldest-1, replay.Limit{Records: 50, Bytes: 1 << 20})
		wantOffsets(t, fmt.Sprintf("p%d", p), got, span(oldest, n-1))
	}
}

func writeChain(t *testing.T, s replay.Store, p int32, n int64) {
	c := ctx(t)
	for from := int64(0); from < n; {
		to := min(n-1, from+rand.Int64N(20))
		if err := s.Append(c, chain(p, from, to)); err != nil {
			t.Errorf("Append p%d: %v", p, err)
			return
		}
		from = to + 1
	}
}

func readLoop(t *testing.T, s replay.Store, p int32, done <-chan struct{}) {
	c := ctx(t)
	for {
		select {
		case <-done:
			return
		default:
		}
		after := rand.Int64N(400) - 1
		lim := replay.Limit{Records: 1 + rand.IntN(50), Bytes: 1 << 20}
		recs, _, err := s.Read(c, p, after, lim)
		if err != nil {
			t.Errorf("Read p%d: %v", p, err)
			return
		}
		if !pageIntact(recs, p, after, lim) {
			t.Errorf("Read p%d after %d: bad page %v", p, after, offsets(recs))
			return
		}
	}
}

// pageIntact checks order, bounds and content of a page (goroutine-safe:
// no t.Fatal).
func pageIntact(recs []*replay.Record, p int32, after int64, lim replay.Limit) bool {
	if len(recs) > lim.Records {
		return false
	}
	last := after
	for _, r := range recs {
		if r.Partition != p || r.Offset <= last || string(r.Value) != string(rec(p, r.Offset, 0).Value) {
			return false
		}
		last = r.Offset
	}
	return true
}
