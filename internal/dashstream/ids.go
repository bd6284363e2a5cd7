package dashstream

import (
	"encoding/base64"
	"unicode/utf8"
)

// LogIDMax is the byte bound for untrusted ids (thread ids) in logs.
const LogIDMax = 256

// TruncateID bounds an untrusted id to at most limit bytes without splitting
// a UTF-8 sequence: the cut moves back to the start of the rune it would
// split. Bytes that are not valid UTF-8 count as one-byte runes. A limit <= 0
// yields "".
func TruncateID(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	if limit <= 0 {
		return ""
	}
	cut := limit
	// Back up over continuation bytes (at most 3) to a rune start, then keep
	// that rune only if it ends within the bound.
	start := cut
	for start > 0 && start > cut-utf8.UTFMax && !utf8.RuneStart(s[start]) {
		start--
	}
	if _, size := utf8.DecodeRuneInString(s[start:]); start+size > cut {
		cut = start
	}
	return s[:cut]
}

// KeyID encodes an id for use inside a storage key: unpadded base64url of
// all its bytes, so distinct ids never collide and no separator can appear.
func KeyID(s string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}
