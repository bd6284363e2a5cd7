package wsclient

import (
	"cmp"
	"maps"
	"slices"
)

// Verdict says what Cursor.Apply made of a record.
type Verdict uint8

// Verdicts.
const (
	// Applied: the next record of its partition (or its first).
	Applied Verdict = iota + 1
	// AppliedAfterHole: applied, but offsets before it were jumped over
	// without a gap or skipped frame announcing them (Cursor.Missing).
	AppliedAfterHole
	// Duplicate: at or below the cursor and already applied; drop it.
	Duplicate
	// Late: below the cursor but inside an earlier hole: new, out of order.
	Late
)

// maxSpans bounds the holes and announcements remembered per partition.
const maxSpans = 64

type span struct{ from, to int64 }

type partCursor struct {
	last      int64  // last applied (or announced-and-passed) offset
	holes     []span // unannounced offsets jumped over, ascending
	announced []span // gap/skipped ranges above last+1, ascending
}

// Cursor is a client's position: the last offset applied per partition.
// Offsets strictly increase per partition; a jump is fine only when a gap or
// skipped frame announced it (docs/PROTOCOL.md §3.4). Not safe for concurrent use.
type Cursor struct {
	// Namespace is the resume namespace the offsets belong to.
	Namespace string
	parts     map[int32]*partCursor

	Duplicates int64 // records at or below the cursor seen again
	OutOfOrder int64 // records that arrived after a higher offset (Late)
	Missing    int64 // offsets jumped over unannounced and still missing
	Announced  int64 // offsets announced by gap and skipped frames
}

// NewCursor returns an empty cursor.
func NewCursor() *Cursor { return &Cursor{parts: map[int32]*partCursor{}} }

// Set positions partition p at offset o (last applied; -1: nothing yet).
func (c *Cursor) Set(p int32, o int64) { c.parts[p] = &partCursor{last: o} }

// Forget drops partition p: its next record is accepted wherever it starts.
func (c *Cursor) Forget(p int32) { delete(c.parts, p) }

// Last returns the last applied offset of p.
func (c *Cursor) Last(p int32) (int64, bool) {
	st, ok := c.parts[p]
	if !ok {
		return 0, false
	}
	return st.last, true
}

// Offsets returns a copy of the last applied offset per partition.
func (c *Cursor) Offsets() map[int32]int64 {
	out := make(map[int32]int64, len(c.parts))
	for p, st := range c.parts {
		out[p] = st.last
	}
	return out
}

// Partitions returns the known partitions, sorted.
func (c *Cursor) Partitions() []int32 { return slices.Sorted(maps.Keys(c.parts)) }

// Resume returns a resume frame continuing from this cursor.
func (c *Cursor) Resume(from string) *Resume {
	return &Resume{From: from, Offsets: c.Offsets(), Namespace: c.Namespace}
}

// Apply records that r was received and says whether to use it.
func (c *Cursor) Apply(r Record) Verdict {
	st, ok := c.parts[r.Partition]
	if !ok {
		c.parts[r.Partition] = &partCursor{last: r.Offset}
		return Applied
	}
	if r.Offset <= st.last {
		return c.below(st, r.Offset)
	}
	missing := st.jump(r.Offset)
	st.last = r.Offset
	if missing > 0 {
		c.Missing += missing
		return AppliedAfterHole
	}
	return Applied
}

// below classifies an offset at or below the cursor.
func (c *Cursor) below(st *partCursor, o int64) Verdict {
	if removeOffset(&st.holes, o, o) > 0 {
		c.OutOfOrder++
		c.Missing--
		return Late
	}
	c.Duplicates++
	return Duplicate
}

// jump accounts for offsets last+1..o-1: announced ones are consumed, the
// others become holes. It returns how many were unannounced.
func (st *partCursor) jump(o int64) int64 {
	var missing int64
	next := st.last + 1
	for len(st.announced) > 0 && st.announced[0].from < o {
		a := st.announced[0]
		missing += st.hole(next, a.from-1)
		next = max(next, a.to+1)
		if a.to >= o { // an announced range running past o keeps its rest
			st.announced[0].from = o + 1
			break
		}
		st.announced = st.announced[1:]
	}
	return missing + st.hole(next, o-1)
}

// hole remembers from..to as missing and returns its size.
func (st *partCursor) hole(from, to int64) int64 {
	if from > to {
		return 0
	}
	st.holes = appendBounded(st.holes, span{from, to})
	return to - from + 1
}

// Announce records that offsets from..to of p will never be delivered (a gap
// or a skipped frame): the cursor may pass them.
func (c *Cursor) Announce(p int32, from, to int64) {
	if from > to {
		return
	}
	c.Announced += to - from + 1
	st, ok := c.parts[p]
	if !ok {
		c.parts[p] = &partCursor{last: to}
		return
	}
	c.Missing -= removeOffset(&st.holes, from, min(to, st.last)) // announced after the fact
	switch {
	case to <= st.last:
	case from <= st.last+1:
		st.last = to
		st.absorb()
	default:
		st.announced = insertSpan(st.announced, span{max(from, st.last+1), to})
	}
}

// absorb passes announcements that became contiguous with the cursor.
func (st *partCursor) absorb() {
	for len(st.announced) > 0 && st.announced[0].from <= st.last+1 {
		st.last = max(st.last, st.announced[0].to)
		st.announced = st.announced[1:]
	}
}

// advance moves p forward to o if it is behind (replay_complete positions).
func (c *Cursor) advance(p int32, o int64) {
	st, ok := c.parts[p]
	if !ok {
		c.parts[p] = &partCursor{last: o}
		return
	}
	if o > st.last {
		st.last = o
		st.announced = nil
	}
}

func appendBounded(s []span, sp span) []span {
	if len(s) == maxSpans {
		s = slices.Delete(s, 0, 1)
	}
	return append(s, sp)
}

func insertSpan(s []span, sp span) []span {
	i, _ := slices.BinarySearchFunc(s, sp.from, func(e span, from int64) int { return cmp.Compare(e.from, from) })
	s = slices.Insert(s, i, sp)
	if len(s) > maxSpans {
		s = s[:maxSpans]
	}
	return s
}

// removeOffset removes from..to from the spans and returns how many offsets
// were removed.
func removeOffset(s *[]span, from, to int64) int64 {
	var removed int64
	out := (*s)[:0:0]
	for _, sp := range *s {
		lo, hi := max(sp.from, from), min(sp.to, to)
		if lo > hi {
			out = append(out, sp)
			continue
		}
		removed += hi - lo + 1
		if sp.from < lo {
			out = append(out, span{sp.from, lo - 1})
		}
		if hi < sp.to {
			out = append(out, span{hi + 1, sp.to})
		}
	}
	*s = out
	return removed
}
