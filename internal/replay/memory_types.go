package replay

import "sort"

// The memory tier's index by message type and by event type: per
// partition, the records of each Type, and the records carrying each
// EventType (an EventBatch under each of its inner events' types, once
// per type), in offset order. Like the thread index (memory_threads.go) a
// record is indexed when it is appended and unindexed when it is evicted,
// both in offset order per partition, so each is O(1) amortized and the
// index holds exactly the records held.

// maxIndexedType bounds the message types the index keeps: a filter names
// types by a 16-bit mask (Record.Type is an envelope field number, 1..9
// today). Records of a higher Type are not indexed and cannot be asked for.
const maxIndexedType = 16

// typeIndex is one partition's index by Type and by EventType.
type typeIndex struct {
	byType  [maxIndexedType]recList
	byEvent map[int32]*recList // an event type whose last record left is forgotten
}

// recList is one index list: recs[head:] are live, in ascending offsets.
type recList struct {
	recs []*Record
	head int
}

func (l *recList) live() []*Record { return l.recs[l.head:] }

// push appends r unless it is already the last entry (a batch with two
// events of one type is listed once).
func (l *recList) push(r *Record) {
	if n := len(l.recs); n > l.head && l.recs[n-1] == r {
		return
	}
	l.recs = append(l.recs, r)
}

// pop removes r when it is the first live entry.
func (l *recList) pop(r *Record) {
	if l.head == len(l.recs) || l.recs[l.head] != r {
		return
	}
	l.recs[l.head] = nil
	l.head++
	switch {
	case l.head == len(l.recs):
		l.recs, l.head = l.recs[:0], 0
	case l.head > 32 && l.head*2 > len(l.recs):
		n := copy(l.recs, l.live())
		clear(l.recs[n:])
		l.recs, l.head = l.recs[:n], 0
	}
}

// after returns the live entries above offset after.
func (l *recList) after(after int64) []*Record {
	live := l.live()
	return live[sort.Search(len(live), func(i int) bool { return live[i].Offset > after }):]
}

func (x *typeIndex) index(r *Record) {
	if r.Type < maxIndexedType {
		x.byType[r.Type].push(r)
	}
	for _, e := range r.EventTypes {
		l := x.byEvent[e]
		if l == nil {
			if x.byEvent == nil {
				x.byEvent = map[int32]*recList{}
			}
			l = &recList{}
			x.byEvent[e] = l
		}
		l.push(r)
	}
}

// unindex removes r, the oldest record its partition holds: it is the
// first entry of each of its lists.
func (x *typeIndex) unindex(r *Record) {
	if r.Type < maxIndexedType {
		x.byType[r.Type].pop(r)
	}
	for _, e := range r.EventTypes {
		if l := x.byEvent[e]; l != nil {
			l.pop(r)
			if len(l.live()) == 0 {
				delete(x.byEvent, e)
			}
		}
	}
}

// entries returns how many entries the index holds (for tests: bounded by
// the records held).
func (x *typeIndex) entries() int {
	n := 0
	for i := range x.byType {
		n += len(x.byType[i].live())
	}
	for _, l := range x.byEvent {
		n += len(l.live())
	}
	return n
}

// TypeQuery selects records by message type and event type (ReadTypes).
// A record matches when both fields admit it.
type TypeQuery struct {
	// Types: bit t admits records of Type t (t < 16); 0 admits any type.
	Types uint16
	// Events, when not empty, admits only records carrying an event of one
	// of these EventType values (an Event of that type, an EventBatch with
	// an inner event of it); empty admits any record.
	Events []int32
}

// matches reports whether r is one of the records q selects.
func (q TypeQuery) matches(r *Record) bool {
	if q.Types != 0 && (r.Type >= maxIndexedType || q.Types&(1<<r.Type) == 0) {
		return false
	}
	if len(q.Events) == 0 {
		return true
	}
	for _, e := range r.EventTypes {
		for _, want := range q.Events {
			if e == want {
				return true
			}
		}
	}
	return false
}

// ReadTypes is ReadThreads (same bounds, order, coverage and through) for
// the records q selects: it reads the index lists of q's types or of its
// event types, whichever holds fewer entries in p when q has both, and
// never the partition's other records, so its cost follows the matching
// records, not the topic's. A query with neither field is not served
// (recs empty, through = after, not covered): read p with Tiers.Page.
func (m *Memory) ReadTypes(p int32, after int64, q TypeQuery, lim Limit, buf []*Record) (recs []*Record, through int64, covered bool) {
	if q.Types == 0 && len(q.Events) == 0 {
		return buf[:0], after, false
	}
	return m.readIndexed(p, after, lim, buf, func(l *partLog, recs []*Record, maxN, maxBytes int) ([]*Record, bool) {
		return collectLists(recs, l.types.lists(after, q), after, q.matches, maxN, maxBytes)
	})
}

// lists returns the index lists, cut to the entries above after, that hold
// every record q selects: its types' or its event types' (the fewer
// entries when q has both).
func (x *typeIndex) lists(after int64, q TypeQuery) [][]*Record {
	var byType, byEvent [][]*Record
	nType, nEvent := 0, 0
	for t := range maxIndexedType {
		if q.Types&(1<<t) != 0 {
			nType += len(x.byType[t].live())
			byType = append(byType, x.byType[t].after(after))
		}
	}
	for _, e := range q.Events {
		if l := x.byEvent[e]; l != nil {
			nEvent += len(l.live())
			byEvent = append(byEvent, l.after(after))
		}
	}
	if q.Types == 0 || (len(q.Events) > 0 && nEvent <= nType) {
		return byEvent
	}
	return byType
}

// collectLists appends the records of lists (each in ascending offsets)
// above after that keep accepts, in offset order, each once, up to maxN
// records and about maxBytes. more reports that accepted records remain
// after them.
func collectLists(recs []*Record, lists [][]*Record, after int64, keep func(*Record) bool, maxN, maxBytes int) (_ []*Record, more bool) {
	size, last := 0, after
	for {
		r := nextRecord(lists, last)
		if r == nil {
			return recs, false
		}
		last = r.Offset
		if !keep(r) {
			continue
		}
		if len(recs) == maxN || (len(recs) > 0 && size >= maxBytes) {
			return recs, true
		}
		recs = append(recs, r)
		size += len(r.Frame)
	}
}

// nextRecord is nextOf for lists of records.
func nextRecord(lists [][]*Record, last int64) *Record {
	var best *Record
	for k := range lists {
		for len(lists[k]) > 0 && lists[k][0].Offset <= last {
			lists[k] = lists[k][1:]
		}
		if len(lists[k]) > 0 && (best == nil || lists[k][0].Offset < best.Offset) {
			best = lists[k][0]
		}
	}
	return best
}
