package hub

import (
	"net/http"
	"strings"

	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// offersV2 reports whether the upgrade request offers the subprotocol
// dashstream.v2 (docs/PROTOCOL.md §3.8), anywhere in its list: a browser
// that authenticates offers "dashstream.v2, bearer, <token>".
func offersV2(r *http.Request) bool {
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if strings.TrimSpace(p) == wsproto.SubprotocolV2 {
				return true
			}
		}
	}
	return false
}

// add gathers r's frames into b in the client's format: v1 the shared
// cursor and binary frames; v2 one binary frame, written as its shared
// head (frame header and envelope) and the shared value, so that no value
// is copied; v2 JSON the shared JSON text frame, encoded at most once per
// record. A skipped marker is the same control frame in v1 and v2.
func (d *delivery) add(b *batch, r *replay.Record) {
	switch {
	case !d.v2 || r.Skipped != "":
		b.add(r, r.Frame)
	case d.json:
		b.add(r, r.JSONFrame(d.h.encodeJSON))
	default:
		b.add(r, r.V2Head())
		if len(r.Value) > 0 {
			b.frames = append(b.frames, r.Value)
			b.budget -= len(r.Value)
			b.bytes += len(r.Value)
		}
	}
}

// encodeJSON makes the v2 JSON record frame of r: the decoded message in
// protobuf's canonical JSON mapping. A value that does not decode (it did
// when the consumer read it, so only a different payload cap could) is
// announced as a skipped offset instead, like any record no client can
// read.
func (h *Hub) encodeJSON(r *replay.Record) []byte {
	h.m.JSONEncodes.Inc()
	msg, err := h.dec.ProtoJSON(r.Value)
	if err != nil {
		h.log.Warn("record not encodable as JSON", "partition", r.Partition, "offset", r.Offset, "err", err)
		return wsproto.SkippedFrame(r.Partition, r.Offset, "json_encode")
	}
	return wsproto.RecordFrameJSON(r.Partition, r.Offset, msg)
}
