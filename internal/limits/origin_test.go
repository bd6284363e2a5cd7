package limits

import (
	"net/http/httptest"
	"testing"
)

func TestOriginAllowed(t *testing.T) {
	cases := []struct {
		name    string
		origin  string
		host    string
		allowed []string
		want    bool
	}{
		{"no origin", "", "localhost:3002", nil, true},
		{"same origin", "http://localhost:3002", "localhost:3002", nil, true},
		{"same origin case", "http://LOCALHOST:3002", "localhost:3002", nil, true},
		{"same origin default port", "https://dash.example", "dash.example", nil, true},
		{"explicit default port", "http://dash.example:80", "dash.example", nil, true},
		{"cross site", "https://evil.example", "localhost:3002", nil, false},
		{"other port", "http://localhost:5173", "localhost:3002", nil, false},
		{"allow listed", "http://localhost:5173", "localhost:3002", []string{"http://localhost:5173"}, true},
		{"allow listed trailing slash", "http://localhost:5173", "localhost:3002", []string{"http://localhost:5173/"}, true},
		{"scheme matters", "https://localhost:5173", "localhost:3002", []string{"http://localhost:5173"}, false},
		{"wildcard", "https://evil.example", "localhost:3002", []string{"*"}, true},
		{"null origin", "null", "localhost:3002", nil, false},
		{"null origin allow list", "null", "localhost:3002", []string{"http://localhost:5173"}, false},
		{"garbage", "::::", "localhost:3002", nil, false},
		{"non http scheme", "file://localhost:3002", "localhost:3002", nil, false},
		{"ipv6", "http://[::1]:3002", "[::1]:3002", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/ws", nil)
			r.Host = tc.host
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if got := OriginAllowed(r, tc.allowed); got != tc.want {
				t.Fatalf("OriginAllowed = %v, want %v", got, tc.want)
			}
		})
	}
}
