package wsclient

import (
	"bytes"
	"fmt"

	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

var recordTypePrefix = []byte(`{"type":"record",`)

// ParseV2Frame is what Next makes of one v2 data frame (see NextFrame);
// like there, the message's bytes alias payload.
func ParseV2Frame(text bool, payload []byte) (Message, error) {
	return v2Message(!text, payload)
}

// v2Message turns one v2 data frame into a message (docs/PROTOCOL.md §3.8):
// a binary frame is a record behind the 13-byte envelope, a text frame a
// JSON record or a control frame. Values alias b. There is no pairing in
// v2: a cursor frame is a protocol violation.
func v2Message(binary bool, b []byte) (Message, error) {
	if binary {
		rec, err := wsproto.ParseRecordV2(b)
		if err != nil {
			return Message{}, fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		return Message{Kind: KindRecord, Record: Record{Partition: rec.Partition, Offset: rec.Offset, Value: rec.Value}}, nil
	}
	if bytes.HasPrefix(b, recordTypePrefix) || bytes.Contains(b, []byte(`"record"`)) {
		rec, ok, err := wsproto.ParseRecordJSON(b)
		if err != nil {
			return Message{}, fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		if ok {
			return Message{Kind: KindRecord, Record: Record{Partition: rec.Partition, Offset: rec.Offset, JSON: rec.Message}}, nil
		}
	}
	typ, err := controlType(b)
	if err != nil {
		return Message{}, err
	}
	if typ == wsproto.TypeCursor {
		return Message{}, fmt.Errorf("%w: cursor frame on a v2 connection", ErrProtocol)
	}
	return Message{Kind: KindControl, Control: Control{Type: typ, Raw: b}}, nil
}
