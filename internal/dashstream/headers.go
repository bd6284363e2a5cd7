package dashstream

import (
	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// HeaderRef is what replay indexing, sequence tracking and metrics need from
// a header (docs/PROTOCOL.md §2.5). ThreadID is untrusted: see TruncateID and KeyID.
type HeaderRef struct {
	ThreadID    string
	Sequence    uint64 // 0 means absent
	TimestampUs int64
}

func refOf(h *dashstreampb.Header) HeaderRef {
	return HeaderRef{ThreadID: h.GetThreadId(), Sequence: h.GetSequence(), TimestampUs: h.GetTimestampUs()}
}

// headerRefs lists the headers to index: every inner event of a batch (one
// entry per event, even a header-less one, so indexes line up with events),
// else the body header when there is one.
func headerRefs(m *dashstreampb.DashStreamMessage) []HeaderRef {
	if batch := m.GetEventBatch(); batch != nil {
		refs := make([]HeaderRef, len(batch.GetEvents()))
		for i, ev := range batch.GetEvents() {
			refs[i] = refOf(ev.GetHeader())
		}
		return refs
	}
	if h := bodyHeader(m); h != nil {
		return []HeaderRef{refOf(h)}
	}
	return nil
}
