package replay

import "github.com/dashflow/dashstream-gateway/internal/wsproto"

// EncodeFrames sets r.Frame once: the cursor and binary frames of a record,
// or the "skipped" frame of a dead-lettered offset. Value then points into
// Frame, so one copy of the bytes is kept (and a fetch buffer the value came
// from can be released). It must run before r is shared.
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
