package replay

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestTiersPage(t *testing.T) {
	type want struct {
		gap     *Gap
		offsets []int64
	}
	cases := []struct {
		name  string
		log   []*Record // what memory holds
		kafka kafkaLog  // what Kafka holds
		after int64
		lim   Limit
		want  want
	}{
		{"covered", chain(0, 10, 19), kafkaFrom(10, 19), 14, Limit{100, 1 << 20}, want{nil, span(15, 19)}},
		{"from the oldest", chain(0, 10, 19), kafkaFrom(10, 19), 9, Limit{3, 1 << 20}, want{nil, span(10, 12)}},
		{"below Kafka's log start", chain(0, 10, 19), kafkaFrom(10, 19), 4, Limit{100, 1 << 20}, want{&Gap{5, 9}, span(10, 19)}},
		{"evicted, still in Kafka", chain(0, 10, 19), kafkaFrom(0, 19), 4, Limit{100, 1 << 20}, want{nil, span(5, 9)}},
		{"nothing after", chain(0, 10, 19), kafkaFrom(10, 19), 19, Limit{100, 1 << 20}, want{nil, nil}},
		{"offset 0", chain(0, 0, 4), kafkaFrom(0, 4), -1, Limit{100, 1 << 20}, want{nil, span(0, 4)}},
		{"markers are not gaps", []*Record{rec(0, 10, 7), rec(0, 13, 10)}, kafkaLog{start: 10}, 7, Limit{100, 1 << 20},
			want{nil, []int64{10, 13}}},
		{"markers after a real gap", []*Record{rec(0, 10, 7), rec(0, 13, 10)}, kafkaLog{start: 10}, 5, Limit{100, 1 << 20},
			want{&Gap{6, 9}, []int64{10, 13}}},
		{"stops before a hole", []*Record{rec(0, 10, 9), rec(0, 11, 10), rec(0, 15, 14)}, kafkaFrom(10, 15), 9, Limit{100, 1 << 20},
			want{nil, []int64{10, 11}}},
		{"fills a hole from Kafka", []*Record{rec(0, 10, 9), rec(0, 11, 10), rec(0, 15, 14)}, kafkaFrom(10, 15), 11, Limit{100, 1 << 20},
			want{nil, []int64{12, 13, 14}}},
		{"a hole Kafka no longer returns", []*Record{rec(0, 10, 9), rec(0, 11, 10), rec(0, 15, 14)},
			kafkaLog{log: []*Record{rec(0, 10, 9), rec(0, 11, 10), rec(0, 15, 14)}, start: 10}, 11, Limit{100, 1 << 20},
			want{nil, []int64{15}}},
		{"a hole below Kafka's log start", []*Record{rec(0, 10, 9), rec(0, 11, 10), rec(0, 15, 14)}, kafkaFrom(14, 15), 11, Limit{100, 1 << 20},
			want{&Gap{12, 13}, nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMemory(MemoryConfig{})
			m.add(tc.log)
			tiers := NewTiers(m, tc.kafka)
			pg, err := tiers.Page(context.Background(), 0, tc.after, tc.lim, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkPage(t, pg, tc.want.gap, tc.want.offsets)
		})
	}
	t.Run("fully evicted partition", func(t *testing.T) {
		m := NewMemory(MemoryConfig{MaxBytes: 5 * recSize})
		m.add(chain(0, 0, 4))
		m.add(chain(1, 0, 4))
		tiers := NewTiers(m, kafkaLog{start: 5}) // and deleted from Kafka
		pg, _ := tiers.Page(context.Background(), 0, 1, Limit{100, 1 << 20}, nil)
		checkPage(t, pg, &Gap{2, 4}, nil)
		pg, _ = tiers.Page(context.Background(), 0, 4, Limit{100, 1 << 20}, nil)
		checkPage(t, pg, nil, nil)
		if oldest, stale, err := tiers.ProveStale(context.Background(), 0, 1); err != nil || !stale || oldest != 5 {
			t.Fatalf("ProveStale(1) = %d %v %v, want 5 (Kafka's log start), stale", oldest, stale, err)
		}
		if _, stale, err := tiers.ProveStale(context.Background(), 0, 4); err != nil || stale {
			t.Fatalf("a cursor at an evicted partition's newest offset is stale (%v)", err)
		}
	})
}

// TestTiersPageWalk pages through a partition with holes and markers and
// checks that records plus gaps account for every offset exactly once: a
// hole is filled from Kafka, or a gap when it lies below Kafka's log start.
func TestTiersPageWalk(t *testing.T) {
	var log []*Record
	prev := int64(-1)
	for o := int64(0); o < 300; o++ {
		switch {
		case o%17 == 5: // transaction marker: never consumed
			continue
		case o%41 == 3: // consumed, but missing from the tier
			prev = o
			continue
		}
		log = append(log, rec(0, o, prev))
		prev = o
	}
	m := NewMemory(MemoryConfig{PerPartition: 1000})
	m.add(log)
	// Kafka holds every record consumed (the tier's holes too) from 100 on.
	const logStart = 100
	tiers := NewTiers(m, kafkaFrom(logStart, 299).without(func(o int64) bool { return o%17 == 5 }))
	seen := map[int64]string{}
	after := int64(-1)
	for pages := 0; after < 299; pages++ {
		if pages > 1000 {
			t.Fatal("paging does not progress")
		}
		pg, err := tiers.Page(context.Background(), 0, after, Limit{Records: 7, Bytes: 1 << 20}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if pg.Gap != nil {
			if pg.Gap.From != after+1 || pg.Gap.To < pg.Gap.From {
				t.Fatalf("gap %+v after %d", *pg.Gap, after)
			}
			for o := pg.Gap.From; o <= pg.Gap.To; o++ {
				seen[o] = "gap"
			}
			after = pg.Gap.To
		}
		for _, r := range pg.Records {
			if r.Offset <= after || seen[r.Offset] != "" {
				t.Fatalf("offset %d after %d twice or backwards", r.Offset, after)
			}
			seen[r.Offset] = "rec"
			after = r.Offset
		}
		if pg.Gap == nil && len(pg.Records) == 0 {
			break
		}
	}
	for o := int64(0); o < 300; o++ {
		want := "rec"
		switch {
		case o%17 == 5:
			want = "" // a marker is neither a record nor part of a gap...
			if (o-1)%41 == 3 && o-1 < logStart {
				want = "gap" // ...unless it sits right behind a lost record
			}
		case o%41 == 3 && o < logStart: // the tier's hole, gone from Kafka too
			want = "gap"
		}
		if seen[o] != want {
			t.Fatalf("offset %d: %q, want %q", o, seen[o], want)
		}
	}
}

func checkPage(t *testing.T, pg Page, gap *Gap, want []int64) {
	t.Helper()
	if (pg.Gap == nil) != (gap == nil) || (gap != nil && *pg.Gap != *gap) {
		t.Fatalf("gap = %v, want %v", pg.Gap, gap)
	}
	if !slices.Equal(offsets(pg.Records), want) {
		t.Fatalf("records = %v, want %v", offsets(pg.Records), want)
	}
}

func TestTiersBoundsAndBacklog(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	m.add(chain(2, 40, 49))
	tiers := NewTiers(m, kafkaFrom(40, 49))
	ctx := context.Background()
	if o, ok := tiers.WindowStart(ctx, 2); !ok || o != 40 {
		t.Fatalf("oldest = %d %v", o, ok)
	}
	if _, ok := tiers.WindowStart(ctx, 3); ok {
		t.Fatal("oldest of an unknown partition")
	}
	for _, tc := range []struct {
		after  int64
		covers bool
	}{{39, true}, {38, false}, {45, true}, {49, true}, {1000, true}} {
		if _, stale, err := tiers.ProveStale(ctx, 2, tc.after); err != nil || stale == tc.covers {
			t.Errorf("ProveStale(%d) = %v, %v", tc.after, stale, err)
		}
	}
	// Kafka still holds what memory evicted: not stale.
	tiers.SetKafka(kafkaFrom(30, 49))
	if oldest, stale, err := tiers.ProveStale(ctx, 2, 38); err != nil || stale || oldest != 30 {
		t.Errorf("ProveStale(38) with Kafka from 30 = %d %v %v", oldest, stale, err)
	}
	if b, ev := tiers.Backlog(2, 44); b != 5*recSize || ev {
		t.Fatalf("backlog = %d %v", b, ev)
	}
}

// kafkaLog is a DeepReader over a fixed log of partition 0, as Kafka holds
// it from start on; err, when set, fails every call (Kafka unreachable).
// A fake: it lets these tests put holes, markers and a log start at chosen
// offsets, which a real broker cannot do (the Kafka tier's integration
// tests are in internal/kafka and internal/app).
type kafkaLog struct {
	log   []*Record
	start int64
	err   error
}

// kafkaFrom holds the contiguous records from..to.
func kafkaFrom(from, to int64) kafkaLog { return kafkaLog{log: chain(0, from, to), start: from} }

// without drops the offsets drop reports (transaction markers).
func (d kafkaLog) without(drop func(int64) bool) kafkaLog {
	var keep []*Record
	for _, r := range d.log {
		if !drop(r.Offset) {
			keep = append(keep, r)
		}
	}
	d.log = keep
	return d
}

func (d kafkaLog) ReadAfter(_ context.Context, _ int32, after int64, limit int) ([]*Record, int64, error) {
	if d.err != nil {
		return nil, 0, d.err
	}
	var out []*Record
	for _, r := range d.log {
		if r.Offset > after && r.Offset >= d.start && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, d.start, nil
}

func (d kafkaLog) LogStart(context.Context, int32, time.Duration) (int64, error) {
	return d.start, d.err
}

// Without an answer from Kafka nothing that the memory tier misses is a
// gap, and no cursor it does not cover is stale: the error says
// ErrUnavailable. What memory covers needs no Kafka.
func TestTiersWithoutKafka(t *testing.T) {
	down := errors.New("kafka: dial tcp: connection refused")
	ctx := context.Background()
	for name, deep := range map[string]DeepReader{"unreachable": kafkaLog{start: 0, err: down}, "no Kafka tier": nil} {
		t.Run(name, func(t *testing.T) {
			m := NewMemory(MemoryConfig{})
			m.add(chain(0, 50, 99))
			tiers := NewTiers(m, deep)
			pg, err := tiers.Page(ctx, 0, 10, Limit{100, 1 << 20}, nil)
			if !errors.Is(err, ErrUnavailable) || pg.Gap != nil || len(pg.Records) != 0 {
				t.Fatalf("page below memory: gap %v, %d records, err %v; want ErrUnavailable only", pg.Gap, len(pg.Records), err)
			}
			if _, stale, err := tiers.ProveStale(ctx, 0, 10); !errors.Is(err, ErrUnavailable) || stale {
				t.Fatalf("ProveStale(10) = %v, %v; want ErrUnavailable, not stale", stale, err)
			}
			if _, stale, err := tiers.ProveStale(ctx, 0, 60); err != nil || stale {
				t.Fatalf("ProveStale(60), covered by memory = %v, %v", stale, err)
			}
			pg, err = tiers.Page(ctx, 0, 60, Limit{100, 1 << 20}, nil)
			if err != nil || pg.Gap != nil || len(pg.Records) != 39 {
				t.Fatalf("page covered by memory: gap %v, %d records, err %v", pg.Gap, len(pg.Records), err)
			}
		})
	}
}

// Kafka retaining the range yet returning no record of it (an empty
// fetch) proves nothing either: ErrUnavailable, no gap.
func TestTiersEmptyKafkaAnswer(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	m.add(chain(0, 50, 99))
	tiers := NewTiers(m, kafkaLog{start: 0})
	pg, err := tiers.Page(context.Background(), 0, 10, Limit{100, 1 << 20}, nil)
	if !errors.Is(err, ErrUnavailable) || pg.Gap != nil || len(pg.Records) != 0 {
		t.Fatalf("gap %v, %d records, err %v; want ErrUnavailable only", pg.Gap, len(pg.Records), err)
	}
}

// agedDeep is a DeepReader whose cached log start is 'age' old: LogStart
// answers from the cache only if it is younger than the caller's maxAge,
// else asks "Kafka" (fresh). A fake: the cache's age cannot be set on a
// real deep reader from this package (internal/kafka tests the real one).
type agedDeep struct {
	cached, fresh int64
	age           time.Duration
	asked         *int
}

func (d agedDeep) ReadAfter(_ context.Context, _ int32, after int64, _ int) ([]*Record, int64, error) {
	*d.asked++
	return nil, d.fresh, nil
}

func (d agedDeep) LogStart(_ context.Context, _ int32, maxAge time.Duration) (int64, error) {
	if d.age < maxAge {
		return d.cached, nil
	}
	*d.asked++
	return d.fresh, nil
}

// A cached log start proves a gap only while it is younger than
// ProofMaxAge; an older one is asked for again.
func TestTiersProofAge(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		age        time.Duration
		stale      bool
		oldest     int64
		kafkaAsked int
	}{
		{ProofMaxAge + time.Second, true, 50, 1}, // too old: Kafka says 50
		{ProofMaxAge - time.Second, false, 0, 0}, // recent enough: the cache (0) is proof
	} {
		m := NewMemory(MemoryConfig{})
		m.add(chain(0, 80, 99))
		asked := 0
		tiers := NewTiers(m, agedDeep{cached: 0, fresh: 50, age: tc.age, asked: &asked})
		oldest, stale, err := tiers.ProveStale(ctx, 0, 10)
		if err != nil || stale != tc.stale || (stale && oldest != tc.oldest) || asked != tc.kafkaAsked {
			t.Errorf("cache %v old: ProveStale(10) = %d %v %v, Kafka asked %d times; want stale %v oldest %d, asked %d",
				tc.age, oldest, stale, err, asked, tc.stale, tc.oldest, tc.kafkaAsked)
		}
	}
}

// The caller's page storage is handed back only with memory's records; when
// another tier serves the page, what memory wrote into it is cleared, so a
// long-lived session's storage pins no evicted record.
func TestTiersPageStorage(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	m.add(chain(0, 10, 19)) // 0..9 are only in Kafka
	tiers := NewTiers(m, nil)
	tiers.SetKafka(kafkaFrom(0, 19))
	buf := make([]*Record, 0, 32)

	pg, err := tiers.Page(context.Background(), 0, 12, Limit{100, 1 << 20}, buf)
	if err != nil || pg.Tier != TierMemory || &pg.Records[0] != &buf[:1][0] {
		t.Fatalf("memory page: tier %q, err %v, own storage %v", pg.Tier, err, len(pg.Records) > 0 && &pg.Records[0] == &buf[:1][0])
	}
	checkPage(t, pg, nil, span(13, 19))

	pg, err = tiers.Page(context.Background(), 0, 2, Limit{100, 1 << 20}, buf)
	if err != nil || pg.Tier != TierKafka {
		t.Fatalf("kafka page: tier %q, err %v", pg.Tier, err)
	}
	checkPage(t, pg, nil, span(3, 9))
	for i, r := range buf[:cap(buf)] {
		if r != nil {
			t.Fatalf("storage slot %d still holds offset %d after a Kafka page", i, r.Offset)
		}
	}
}
