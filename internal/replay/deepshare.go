package replay

import "sync"

// deepShareBytes bounds the records deepShare keeps (their Size).
const deepShareBytes = 16 << 20

// deepShare keeps the records read from Redis and Kafka most recently, so
// that clients reading the same range share one *Record, as clients share
// the memory tier's: its frames, and the JSON and base64 frames made of it
// on first use, are made once however many clients read it
// (docs/PROTOCOL.md §3.8), instead of once per client and per read. A
// replay storm of many clients from the same old cursor then costs one
// read's worth of records and encodings, not one per client.
//
// It is bounded in bytes and forgets oldest-inserted first. Records are
// keyed by partition and offset, which name one record only within one
// topic identity: Tiers.Forget empties it when that changes. Safe for
// concurrent use.
type deepShare struct {
	mu    sync.Mutex
	max   int
	bytes int
	byKey map[recKey]*Record
	order []*Record // insertion order; order[head:] are held
	head  int
}

type recKey struct {
	p int32
	o int64
}

func newDeepShare(maxBytes int) *deepShare {
	return &deepShare{max: maxBytes, byKey: map[recKey]*Record{}}
}

// share replaces each record of recs (a slice the caller owns; frames
// maybe not encoded yet) that an earlier read already shares by that one, and shares
// the others, encoding their frames.
func (s *deepShare) share(recs []*Record) {
	missing := s.swapHeld(recs)
	if missing == 0 {
		return
	}
	for _, r := range recs {
		r.EncodeFrames() // a no-op for the shared ones
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range recs {
		k := recKey{r.Partition, r.Offset}
		if held, ok := s.byKey[k]; ok {
			recs[i] = held // shared since (a concurrent read)
			continue
		}
		s.byKey[k] = r
		s.order = append(s.order, r)
		s.bytes += r.Size()
	}
	s.evictLocked()
}

// swapHeld replaces the records already shared and returns how many are
// not.
func (s *deepShare) swapHeld(recs []*Record) (missing int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range recs {
		if held, ok := s.byKey[recKey{r.Partition, r.Offset}]; ok {
			recs[i] = held
		} else {
			missing++
		}
	}
	return missing
}

func (s *deepShare) evictLocked() {
	for s.bytes > s.max && s.head < len(s.order) {
		r := s.order[s.head]
		s.order[s.head] = nil
		s.head++
		s.bytes -= r.Size()
		k := recKey{r.Partition, r.Offset}
		if s.byKey[k] == r {
			delete(s.byKey, k)
		}
	}
	if s.head > 1024 && s.head*2 > len(s.order) {
		n := copy(s.order, s.order[s.head:])
		clear(s.order[n:])
		s.order, s.head = s.order[:n], 0
	}
}

// forget drops every shared record.
func (s *deepShare) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byKey = map[recKey]*Record{}
	s.order, s.head, s.bytes = nil, 0, 0
}

// held reports how many records are shared (tests).
func (s *deepShare) held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byKey)
}
