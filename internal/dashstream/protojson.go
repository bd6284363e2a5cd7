package dashstream

import (
	"bytes"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
)

// jsonOptions is protobuf's canonical JSON mapping: lowerCamelCase field
// names, 64-bit integers as decimal strings, enums by name, bytes as
// standard base64, only populated fields (explicit zeros of optional and
// oneof fields included).
var jsonOptions = protojson.MarshalOptions{}

// AppendProtoJSON appends the decoded message in protobuf's canonical JSON
// mapping, compact (docs/PROTOCOL.md §3.8, the "message" of a v2 JSON
// record). For a zstd-framed record it is the JSON of the inflated message:
// the framing is not visible. Unknown fields are not shown.
//
// Cost: a reflection walk of the message (protojson) plus one compaction
// pass, several times the decode: on the 2-core reference machine about
// 10–12 µs per 100 bytes of protobuf (a 186-byte Event: 23 µs, 127
// allocations, 5.5 KB; BenchmarkProtoJSON), i.e. about 8–10 MB/s per core.
// It is meant to run once per record (the gateway shares the result among
// every JSON client), never per client. ProtoJSON adds the decode (and
// inflation of a zstd frame) on top.
func (d *Decoded) AppendProtoJSON(dst []byte) ([]byte, error) {
	raw, err := jsonOptions.Marshal(d.Message)
	if err != nil {
		return dst, fmt.Errorf("dashstream: protojson: %w", err)
	}
	// protojson's spacing is deliberately unstable; compact it so that the
	// bytes are the same on every run and every instance.
	buf := bytes.NewBuffer(dst)
	if err := json.Compact(buf, raw); err != nil {
		return dst, fmt.Errorf("dashstream: compact protojson: %w", err)
	}
	return buf.Bytes(), nil
}

// ProtoJSON decodes a record value (any framing, zstd inflated within the
// payload cap) and returns its canonical JSON: see Decoded.AppendProtoJSON.
// A value that does not decode returns the *DecodeError of Decode.
func (dec *Decoder) ProtoJSON(value []byte) ([]byte, error) {
	d, err := dec.Decode(value)
	if err != nil {
		return nil, err
	}
	return d.AppendProtoJSON(nil)
}
