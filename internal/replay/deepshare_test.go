package replay

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// freshDeep is a Kafka tier that, as the real one, makes new records on
// every read.
type freshDeep struct {
	kafkaLog
	reads atomic.Int64
}

func (d *freshDeep) ReadAfter(ctx context.Context, p int32, after int64, limit int) ([]*Record, int64, error) {
	d.reads.Add(1)
	recs, start, err := d.kafkaLog.ReadAfter(ctx, p, after, limit)
	out := make([]*Record, len(recs))
	for i, r := range recs {
		out[i] = &Record{Partition: r.Partition, Offset: r.Offset, Prev: r.Prev, Value: append([]byte(nil), r.Value...)}
	}
	return out, start, err
}

func (d *freshDeep) LogStart(ctx context.Context, p int32, maxAge time.Duration) (int64, error) {
	return d.kafkaLog.LogStart(ctx, p, maxAge)
}

// Clients reading the same range from Kafka get the same records, so a
// frame made on first use (the JSON of v2) is made once for all of them;
// Forget (a new topic identity) ends the sharing.
func TestDeepReadsShareRecords(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryConfig{})
	m.add(chain(0, 100, 120))
	deep := &freshDeep{kafkaLog: kafkaFrom(0, 120)}
	tiers := NewTiers(m, deep)

	var encodes atomic.Int64
	encode := func(r *Record) []byte { encodes.Add(1); return []byte("json") }
	const readers = 8
	pages := make([]Page, readers)
	var wg sync.WaitGroup
	for i := range readers {
		wg.Go(func() {
			pg, err := tiers.Page(ctx, 0, 9, Limit{Records: 50, Bytes: 1 << 20}, nil)
			if err != nil {
				t.Error(err)
				return
			}
			for _, r := range pg.Records {
				r.JSONFrame(encode)
			}
			pages[i] = pg
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	first := pages[0]
	if first.Tier != TierKafka || len(first.Records) != 50 || first.Records[0].Offset != 10 {
		t.Fatalf("page: tier %s, %d records from %d", first.Tier, len(first.Records), first.Records[0].Offset)
	}
	for i, pg := range pages {
		for j, r := range pg.Records {
			if r != first.Records[j] {
				t.Fatalf("reader %d, offset %d: not the shared record", i, r.Offset)
			}
			if len(r.Frame) == 0 {
				t.Fatalf("offset %d: frames not encoded", r.Offset)
			}
		}
	}
	if got := encodes.Load(); got != 50 {
		t.Errorf("%d JSON encodes for 50 records read by %d clients, want 50", got, readers)
	}
	if deep.reads.Load() != readers {
		t.Errorf("%d Kafka reads, want %d (sharing does not skip a read)", deep.reads.Load(), readers)
	}

	// A new identity: the same offsets are other records now.
	tiers.Forget()
	pg, err := tiers.Page(ctx, 0, 9, Limit{Records: 50, Bytes: 1 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pg.Records[0] == first.Records[0] {
		t.Error("a record shared before Forget is still served")
	}
}

// The shared records are bounded in bytes, oldest shared first out.
func TestDeepShareBounded(t *testing.T) {
	one := chain(0, 999, 999)[0] // the size of a three-digit offset's record
	one.EncodeFrames()
	s := newDeepShare(10 * one.Size())
	for from := int64(0); from < 1000; from += 25 {
		s.share(chain(0, from, from+24))
		if s.bytes > s.max {
			t.Fatalf("%d bytes held, bound %d", s.bytes, s.max)
		}
	}
	if n := s.held(); n != 10 {
		t.Fatalf("%d records held, want 10", n)
	}
	newest := chain(0, 990, 999)
	s.share(newest)
	old := chain(0, 989, 990)
	s.share(old)
	if old[0] == nil || old[1] != newest[0] {
		t.Error("offset 990 is held and must be shared")
	}
	if len(s.order)-s.head != s.held() || len(s.order) > 2048 {
		t.Errorf("order %d (head %d) for %d held", len(s.order), s.head, s.held())
	}
	s.forget()
	if s.held() != 0 || s.bytes != 0 {
		t.Errorf("after forget: %d held, %d bytes", s.held(), s.bytes)
	}
}

// coalescedDeep hands every reader of the same range one slice, as the
// Kafka deep reader does for coalesced fetches.
type coalescedDeep struct {
	freshDeep
	mu   sync.Mutex
	last map[int64][]*Record
}

func (d *coalescedDeep) ReadAfter(ctx context.Context, p int32, after int64, limit int) ([]*Record, int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if recs, ok := d.last[after]; ok {
		return recs, d.start, nil
	}
	recs, start, err := d.freshDeep.ReadAfter(ctx, p, after, limit)
	for _, r := range recs {
		r.EncodeFrames() // as the deep reader does before handing them out
	}
	d.last[after] = recs
	return recs, start, err
}

// Readers of one coalesced fetch read its slice while the deep share
// swaps records: the share works on a copy (the race detector checks).
func TestDeepShareLeavesCoalescedSlicesAlone(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryConfig{})
	m.add(chain(0, 100, 120))
	deep := &coalescedDeep{freshDeep: freshDeep{kafkaLog: kafkaFrom(0, 120)}, last: map[int64][]*Record{}}
	tiers := NewTiers(m, deep)
	// Another range first, so that the shared records differ from the
	// coalesced slice's where they overlap.
	if _, err := tiers.Page(ctx, 0, 19, Limit{Records: 50, Bytes: 1 << 20}, nil); err != nil {
		t.Fatal(err)
	}
	delete(deep.last, 19)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			pg, err := tiers.Page(ctx, 0, 9, Limit{Records: 50, Bytes: 1 << 20}, nil)
			if err != nil {
				t.Error(err)
				return
			}
			for i, r := range pg.Records {
				if r.Offset != int64(10+i) {
					t.Errorf("record %d: offset %d", i, r.Offset)
				}
			}
		})
	}
	wg.Wait()
}
