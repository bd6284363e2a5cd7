package dashstream

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncateID(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"short kept", "abc", 5, "abc"},
		{"exact kept", "abc", 3, "abc"},
		{"ascii cut", "abcdef", 4, "abcd"},
		{"zero max", "abc", 0, ""},
		{"negative max", "abc", -1, ""},
		{"2-byte rune kept whole", "aé", 3, "aé"},
		{"2-byte rune not split", "aéb", 2, "a"},
		{"3-byte rune not split 1", "a✓b", 2, "a"},
		{"3-byte rune not split 2", "a✓b", 3, "a"},
		{"3-byte rune fits", "a✓b", 4, "a✓"},
		{"4-byte rune not split 1", "a🚀b", 2, "a"},
		{"4-byte rune not split 3", "a🚀b", 4, "a"},
		{"4-byte rune fits", "a🚀b", 5, "a🚀"},
		{"only a 4-byte rune", "🚀", 3, ""},
		{"invalid bytes are one-byte runes", "\xff\xfe\xfd", 2, "\xff\xfe"},
		{"stray continuation bytes", "a\x80\x80\x80\x80\x80", 4, "a\x80\x80\x80"},
		{"truncated lead byte kept", "a\xe2\x9cb", 2, "a\xe2"},
		{"incomplete sequence is invalid bytes", "ab\xf0\x9f\x9a", 4, "ab\xf0\x9f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := TruncateID(tt.in, tt.max)
			if got != tt.want {
				t.Errorf("TruncateID(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
		})
	}
}

func TestTruncateIDNeverSplitsARune(t *testing.T) {
	s := strings.Repeat("aé✓🚀", 100) // 1+2+3+4 bytes
	for limit := 0; limit <= len(s); limit++ {
		got := TruncateID(s, limit)
		if len(got) > limit || !utf8.ValidString(got) || !strings.HasPrefix(s, got) {
			t.Fatalf("TruncateID(.., %d) = %q (%d bytes)", limit, got, len(got))
		}
		if limit-len(got) > 3 {
			t.Fatalf("TruncateID(.., %d) dropped %d bytes", limit, limit-len(got))
		}
	}
	thread300 := strings.Repeat("✓", 100) // 300 bytes
	if got := TruncateID(thread300, LogIDMax); len(got) != 255 {
		t.Errorf("300-byte id cut to %d bytes, want 255", len(got))
	}
}

func TestKeyID(t *testing.T) {
	ids := []string{"", "a", "a:b", "a/b", "a_b", "a-b", "a\x00", "é", "\xff", strings.Repeat("x", 300)}
	seen := map[string]string{}
	for _, id := range ids {
		k := KeyID(id)
		if prev, dup := seen[k]; dup {
			t.Errorf("KeyID(%q) == KeyID(%q) == %q", id, prev, k)
		}
		seen[k] = id
		if strings.ContainsAny(k, ":/+={}") {
			t.Errorf("KeyID(%q) = %q contains a separator", id, k)
		}
	}
}
