package wsclient

import "testing"

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
