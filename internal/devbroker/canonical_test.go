package devbroker

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
)

func TestCanonicalJSONGolden(t *testing.T) {
	in := json.RawMessage(`{"b":2,"a":1,"nested":{"z":"x","y":[true,null]}}`)
	const want = `{"a":1,"b":2,"nested":{"y":[true,null],"z":"x"}}`
	const wantSHA = "f35279c8aa6b00bc82d43a191596cc3b41b7de7899ee16e36a08efe3afc45103"
	got, err := CanonicalJSON(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("CanonicalJSON = %s, want %s", got, want)
	}
	if sum := sha256.Sum256(got); hex.EncodeToString(sum[:]) != wantSHA {
		t.Fatalf("sha256 = %x, want %s", sum, wantSHA)
	}
}

func TestCanonicalJSON(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"go map sorted", map[string]any{"b": 1, "a": []any{map[string]any{"d": 1, "c": 2}}}, `{"a":[{"c":2,"d":1}],"b":1}`},
		{"struct", struct {
			Z int    `json:"z"`
			A string `json:"a"`
		}{1, "x"}, `{"a":"x","z":1}`},
		{"whitespace removed", json.RawMessage(" { \"a\" : [ 1 , 2 ] } "), `{"a":[1,2]}`},
		{"float with zero fraction", json.RawMessage(`[1.0,-0,2.50,1e2]`), `[1,0,2.5,100]`},
		{"float64 values", []any{0.1, 1e21, 1e-7, 123456.789}, `[0.1,1e+21,1e-7,123456.789]`},
		{"big integer kept", json.RawMessage(`[18446744073709551615,-9223372036854775808]`), `[18446744073709551615,-9223372036854775808]`},
		{"html not escaped", "<a href=\"x\">&amp;</a>", `"<a href=\"x\">&amp;</a>"`},
		{"unicode kept", "héllo ✓ \u2028", "\"héllo ✓ \u2028\""},
		{"control characters", "a\nb\tc\u0001\u001f\\", `"a\nb\tc\u0001\u001f\\"`},
		{"empty containers", map[string]any{"a": []any{}, "b": map[string]any{}}, `{"a":[],"b":{}}`},
		{"null", nil, `null`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CanonicalJSON(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestCanonicalJSONRejectsUnmarshalable(t *testing.T) {
	if _, err := CanonicalJSON(map[string]any{"f": func() {}}); err == nil {
		t.Fatal("want error for a func value")
	}
}
