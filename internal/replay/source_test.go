package replay

import (
	"context"
	"slices"
	"testing"
)

func TestTiersPage(t *testing.T) {
	type want struct {
		gap     *Gap
		offsets []int64
	}
	cases := []struct {
		name  string
		log   []*Record
		after int64
		lim   Limit
		want  want
	}{
		{"covered", chain(0, 10, 19), 14, Limit{100, 1 << 20}, want{nil, span(15, 19)}},
		{"from the oldest", chain(0, 10, 19), 9, Limit{3, 1 << 20}, want{nil, span(10, 12)}},
		{"evicted before the oldest", chain(0, 10, 19), 4, Limit{100, 1 << 20}, want{&Gap{5, 9}, span(10, 19)}},
		{"nothing after", chain(0, 10, 19), 19, Limit{100, 1 << 20}, want{nil, nil}},
		{"offset 0", chain(0, 0, 4), -1, Limit{100, 1 << 20}, want{nil, span(0, 4)}},
		{"markers are not gaps", []*Record{rec(0, 10, 7), rec(0, 13, 10)}, 7, Limit{100, 1 << 20},
			want{nil, []int64{10, 13}}},
		{"markers after a real gap", []*Record{rec(0, 10, 7), rec(0, 13, 10)}, 5, Limit{100, 1 << 20},
			want{&Gap{6, 9}, []int64{10, 13}}},
		{"stops before a hole", []*Record{rec(0, 10, 9), rec(0, 11, 10), rec(0, 15, 14)}, 9, Limit{100, 1 << 20},
			want{nil, []int64{10, 11}}},
		{"reports the hole", []*Record{rec(0, 10, 9), rec(0, 11, 10), rec(0, 15, 14)}, 11, Limit{100, 1 << 20},
			want{&Gap{12, 14}, []int64{15}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMemory(MemoryConfig{})
			m.Append(tc.log)
			tiers := NewTiers(m, nil)
			pg, err := tiers.Page(context.Background(), 0, tc.after, tc.lim, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkPage(t, pg, tc.want.gap, tc.want.offsets)
		})
	}
	t.Run("fully evicted partition", func(t *testing.T) {
		m := NewMemory(MemoryConfig{MaxBytes: 5 * recSize})
		m.Append(chain(0, 0, 4))
		m.Append(chain(1, 0, 4))
		tiers := NewTiers(m, nil)
		pg, _ := tiers.Page(context.Background(), 0, 1, Limit{100, 1 << 20}, nil)
		checkPage(t, pg, &Gap{2, 4}, nil)
		pg, _ = tiers.Page(context.Background(), 0, 4, Limit{100, 1 << 20}, nil)
		checkPage(t, pg, nil, nil)
		// Nothing is retained to compare with: not cursor_stale; the page
		// above already reported the missing records as a gap.
		if _, stale := tiers.Stale(0, 1); stale {
			t.Fatal("a cursor of a partition no tier retains anything of is stale")
		}
		if _, stale := tiers.Stale(0, 4); stale {
			t.Fatal("a cursor at an evicted partition's newest offset is stale")
		}
	})
}

// TestTiersPageWalk pages through a partition with holes and markers and
// checks that records plus gaps account for every offset exactly once.
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
	m.Append(log)
	tiers := NewTiers(m, nil)
	seen := map[int64]string{}
	after := int64(-1)
	for pages := 0; after < 299; pages++ {
		if pages > 1000 {
			t.Fatal("paging does not progress")
		}
		pg, _ := tiers.Page(context.Background(), 0, after, Limit{Records: 7, Bytes: 1 << 20}, nil)
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
			if seen[o] == "gap" && (o-1)%41 == 3 {
				want = "gap" // ...unless it sits right behind a lost record
			}
		case o%41 == 3:
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
	m.Append(chain(2, 40, 49))
	tiers := NewTiers(m, nil)
	if o, ok := tiers.Oldest(2); !ok || o != 40 {
		t.Fatalf("oldest = %d %v", o, ok)
	}
	if _, ok := tiers.Oldest(3); ok {
		t.Fatal("oldest of an unknown partition")
	}
	for _, tc := range []struct {
		after  int64
		covers bool
	}{{39, true}, {38, false}, {45, true}, {49, true}, {1000, true}} {
		if _, stale := tiers.Stale(2, tc.after); stale == tc.covers {
			t.Errorf("Stale(%d) = %v", tc.after, stale)
		}
	}
	if b, ev := tiers.Backlog(2, 44); b != 5*recSize || ev {
		t.Fatalf("backlog = %d %v", b, ev)
	}
}

// logDeep is a DeepReader over a fixed log, starting at offset 0.
type logDeep struct{ log []*Record }

func (d logDeep) ReadAfter(_ context.Context, _ int32, after int64, max int) ([]*Record, int64, error) {
	var out []*Record
	for _, r := range d.log {
		if r.Offset > after && len(out) < max {
			out = append(out, r)
		}
	}
	return out, 0, nil
}

func (d logDeep) LogStart(context.Context, int32) (int64, error) { return 0, nil }

// The caller's page storage is handed back only with memory's records; when
// another tier serves the page, what memory wrote into it is cleared, so a
// long-lived session's storage pins no evicted record.
func TestTiersPageStorage(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	m.Append(chain(0, 10, 19)) // 0..9 are only in Kafka
	tiers := NewTiers(m, nil)
	tiers.SetKafka(logDeep{chain(0, 0, 19)})
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
