package replay

import "context"

// Gap is an inclusive range of offsets that no tier holds any more.
type Gap struct {
	From, To int64
}

// Page is one bounded read of a partition: an optional gap (records that are
// gone from every tier) followed by records in offset order.
type Page struct {
	Gap     *Gap
	Records []*Record
}

// Limit bounds one page.
type Limit struct {
	Records int
	Bytes   int
}

// Tiers reads a partition from the replay tiers in order, merging them by
// offset ranges so that no range is ever jumped over: what a tier does not
// hold is asked of the next one, and only what no tier holds becomes a Gap.
type Tiers struct {
	Memory *Memory
}

// Page returns records of p with offset > after.
func (t *Tiers) Page(_ context.Context, p int32, after int64, lim Limit) (Page, error) {
	recs, covered, newest := t.Memory.read(p, after, lim.Records, lim.Bytes)
	switch {
	case covered:
		return Page{Records: recs}, nil
	case len(recs) == 0: // everything up to the newest is gone
		return Page{Gap: &Gap{From: after + 1, To: newest}}, nil
	case recs[0].Offset-1 < after+1: // a Prev that is not below its offset
		return Page{Records: recs}, nil
	}
	return Page{Gap: &Gap{From: after + 1, To: recs[0].Offset - 1}, Records: recs}, nil
}

// Oldest returns the oldest offset any tier holds for p.
func (t *Tiers) Oldest(p int32) (int64, bool) {
	o, _, ok := t.Memory.Bounds(p)
	return o, ok
}

// Covers reports whether the tiers hold every record of p after 'after'.
func (t *Tiers) Covers(p int32, after int64) bool {
	_, covered := t.Memory.Read(p, after, 1, 1)
	return covered
}

// Backlog returns the bytes of p held after 'after' and whether some of them
// are no longer in memory.
func (t *Tiers) Backlog(p int32, after int64) (int64, bool) {
	return t.Memory.Backlog(p, after)
}
