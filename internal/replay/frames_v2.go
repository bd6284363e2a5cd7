package replay

import (
	"sync"

	"github.com/gobwas/ws"

	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// V2Head returns the start of the record's protocol v2 binary frame: the
// WebSocket frame header and the 13-byte envelope (docs/PROTOCOL.md §3.8).
// The frame continues with Value, which is not copied: a v2 client writes
// V2Head and Value as two buffers of one writev, so each value is held
// once, inside Frame. Made on first use, race-free, then shared. Not for a
// skipped record (its Frame is the same control frame in v1 and v2).
func (r *Record) V2Head() []byte {
	if h := r.v2Head.Load(); h != nil {
		return *h
	}
	n := wsproto.RecordV2HeaderSize + len(r.Value)
	h := wsproto.AppendFrameHeader(make([]byte, 0, wsproto.MaxFrameHeader+wsproto.RecordV2HeaderSize), ws.OpBinary, n)
	h = wsproto.AppendRecordV2(h, r.Partition, r.Offset, nil)
	r.v2Head.CompareAndSwap(nil, &h) // a concurrent first use made the same bytes
	return *r.v2Head.Load()
}

// lazyFrame is a frame made at most once.
type lazyFrame struct {
	once  sync.Once
	frame []byte
}

// JSONFrame returns the record's protocol v2 JSON text frame, made by
// encode on first use — at most once per record, however many clients ask
// at the same time — and then shared.
func (r *Record) JSONFrame(encode func(*Record) []byte) []byte {
	lf := r.json.Load()
	if lf == nil {
		r.json.CompareAndSwap(nil, &lazyFrame{})
		lf = r.json.Load()
	}
	lf.once.Do(func() { lf.frame = encode(r) })
	return lf.frame
}
