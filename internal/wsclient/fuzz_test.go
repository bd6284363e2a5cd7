package wsclient

import (
	"errors"
	"testing"
)

// FuzzParseCursor: server text frames are untrusted input. The parser never
// panics, and the fast path agrees with encoding/json.
func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{
		`{"type":"cursor","partition":0,"offset":"41"}`,
		`{"type":"cursor","partition":2147483647,"offset":"9223372036854775807"}`,
		`{"type":"cursor","partition":2147483648,"offset":"1"}`,
		`{"offset":"7","partition":1,"type":"cursor"}`,
		`{"type":"cursor","partition":1,"offset":7}`,
		`{"type":"gap","partition":0}`,
		`{"type":"cursor"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, o, isCursor, err := parseCursor(b)
		if fp, fo, ok := parseCursorFast(b); ok {
			sp, so, sc, serr := parseCursorSlow(b)
			if !sc || serr != nil || sp != fp || so != fo {
				t.Fatalf("fast %d/%d, slow %d/%d %v %v for %q", fp, fo, sp, so, sc, serr, b)
			}
		}
		if isCursor && err == nil && (p < 0 || o < 0) {
			t.Fatalf("negative coordinates %d/%d from %q", p, o, b)
		}
		var pr pairer
		pr.text(b, false)
	})
}

// FuzzV2Message: v2 frames are untrusted input too. v2Message never panics,
// returns a record or a control frame or an error wrapping ErrProtocol, and
// a record has non-negative coordinates.
func FuzzV2Message(f *testing.F) {
	f.Add(true, []byte{0x01, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 41, 0xab})
	f.Add(true, []byte{0x01, 0xff})
	f.Add(false, []byte(`{"type":"record","partition":1,"offset":"2","message":{"event":{}}}`))
	f.Add(false, []byte(`{"type":"replay_complete","totalReplayed":0}`))
	f.Add(false, []byte(`{"type":"cursor","partition":0,"offset":"1"}`))
	f.Add(false, []byte(`{"message":{},"type":"record","offset":-1}`))
	f.Fuzz(func(t *testing.T, binary bool, b []byte) {
		msg, err := v2Message(binary, b)
		switch {
		case err != nil:
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
		case msg.Kind == KindRecord:
			r := msg.Record
			binaryOK := binary && r.JSON == nil && len(r.Value) == len(b)-13
			textOK := !binary && r.Value == nil && len(r.JSON) > 0
			if r.Partition < 0 || r.Offset < 0 || (!binaryOK && !textOK) {
				t.Fatalf("record %+v from %v %q", r, binary, b)
			}
		case msg.Kind != KindControl || msg.Control.Type == "" || binary:
			t.Fatalf("message %+v from %v %q", msg, binary, b)
		}
	})
}
