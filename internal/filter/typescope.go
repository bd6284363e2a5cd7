package filter

import "github.com/dashflow/dashstream-gateway/internal/replay"

// TypeScope returns the part of f an index by message type and event type
// can serve (replay.Memory.ReadTypes): the message types a matching record
// can have (AdmitsType's: "event" admits EventBatches, "event_types" only
// events and batches) and the event types one of its events must have. A
// filter with neither "types" nor "event_types" returns the zero query
// (any record). The scope is necessary, not sufficient: Match decides.
func (f *Filter) TypeScope() replay.TypeQuery {
	if f == nil || (f.types == 0 && !f.hasEvents) {
		return replay.TypeQuery{}
	}
	var q replay.TypeQuery
	if f.types != 0 {
		for t := range uint8(16) {
			if f.AdmitsType(t) {
				q.Types |= 1 << t
			}
		}
	}
	for e := range int32(128) {
		if f.event(e) {
			q.Events = append(q.Events, e)
		}
	}
	return q
}
