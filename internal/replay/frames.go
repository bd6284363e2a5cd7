package replay

import "github.com/dashflow/dashstream-gateway/internal/wsproto"

// EncodeFrames sets r.Frame once: the cursor and binary frames of a record,
// or the "skipped" frame of a dead-lettered offset. Value then points into
// Frame, so one copy of the bytes is kept (and a fetch buffer the value came
// from can be released). It must run before r is shared: whoever makes a
// record calls it (hub.Publish for consumed records, the Kafka deep reader
// inside its coalesced fetch, Tiers for records read from Redis).
//
// This is the one place below the hub that knows the WebSocket format, and
// the layering's single exception (docs/ARCHITECTURE.md, "Records and
// offsets"): a record carries its frames and its Value points into them, so
// each value exists once in memory however many tiers, sessions and pages
// share the record. Encoding elsewhere would mean a second copy of every
// value, or frames built per client.
func (r *Record) EncodeFrames() {
	if len(r.Frame) > 0 {
		return
	}
	if r.Skipped != "" {
		r.Frame = wsproto.SkippedFrame(r.Partition, r.Offset, r.Skipped)
		return
	}
	frames, at := wsproto.RecordFrames(r.Partition, r.Offset, r.Value)
	r.Frame, r.Value = frames, frames[at:]
}
