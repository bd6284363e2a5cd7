package limits

import (
	"fmt"
	"net"
	"net/http/httptest"
	"testing"
)

func TestOriginAllowed(t *testing.T) {
	cases := []struct {
		name     string
		origin   string
		host     string
		allowed  []string
		loopback bool // served on a loopback bind
		want     bool
	}{
		{"no origin", "", "localhost:3002", nil, false, true},
		{"same origin", "http://localhost:3002", "localhost:3002", nil, false, true},
		{"same origin case", "http://LOCALHOST:3002", "localhost:3002", nil, false, true},
		{"same origin default port", "https://dash.example", "dash.example", nil, false, true},
		{"explicit default port", "http://dash.example:80", "dash.example", nil, false, true},
		{"cross site", "https://evil.example", "localhost:3002", nil, false, false},
		{"other port", "http://localhost:5173", "localhost:3002", nil, false, false},
		{"allow listed", "http://localhost:5173", "localhost:3002", []string{"http://localhost:5173"}, false, true},
		{"allow listed trailing slash", "http://localhost:5173", "localhost:3002", []string{"http://localhost:5173/"}, false, true},
		{"scheme matters", "https://localhost:5173", "localhost:3002", []string{"http://localhost:5173"}, false, false},
		{"wildcard", "https://evil.example", "localhost:3002", []string{"*"}, false, true},
		{"null origin", "null", "localhost:3002", nil, false, false},
		{"null origin allow list", "null", "localhost:3002", []string{"http://localhost:5173"}, false, false},
		{"garbage", "::::", "localhost:3002", nil, false, false},
		{"non http scheme", "file://localhost:3002", "localhost:3002", nil, false, false},
		{"ipv6", "http://[::1]:3002", "[::1]:3002", nil, false, true},
		// A loopback bind also accepts loopback origins on any port (a Vite
		// dev server on :5173 proxying /ws), and only those.
		{"loopback bind dev server", "http://localhost:5173", "localhost:3002", nil, true, true},
		{"loopback bind dev server proxied host", "http://localhost:5173", "localhost:5173", nil, true, true},
		{"loopback bind 127/8", "http://127.0.0.2:8080", "127.0.0.1:3002", nil, true, true},
		{"loopback bind ipv6", "http://[::1]:5173", "127.0.0.1:3002", nil, true, true},
		{"loopback bind https default port", "https://LOCALHOST", "127.0.0.1:3002", nil, true, true},
		{"loopback bind cross site", "https://evil.example", "localhost:3002", nil, true, false},
		{"loopback bind rebinding name", "http://localhost.evil.example:3002", "localhost:3002", nil, true, false},
		{"loopback bind subdomain of localhost", "http://app.localhost:5173", "localhost:3002", nil, true, false},
		{"loopback bind private address", "http://10.0.0.1:5173", "localhost:3002", nil, true, false},
		{"loopback bind unspecified address", "http://0.0.0.0:5173", "localhost:3002", nil, true, false},
		{"loopback bind null", "null", "localhost:3002", nil, true, false},
		{"loopback bind file scheme", "file://localhost", "localhost:3002", nil, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/ws", nil)
			r.Host = tc.host
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if got := OriginAllowed(r, tc.allowed, tc.loopback); got != tc.want {
				t.Fatalf("OriginAllowed = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestHostAllowed(t *testing.T) {
	cases := []struct {
		host     string
		loopback bool
		want     bool
	}{
		{"localhost:3002", true, true},
		{"LocalHost", true, true},
		{"localhost:", true, true},
		{"127.0.0.1:3002", true, true},
		{"127.255.0.9", true, true},
		{"[::1]:3002", true, true},
		{"[::1]", true, true},
		{"[::ffff:127.0.0.1]:3002", true, true},
		// DNS rebinding: the attacker's name, now resolving to 127.0.0.1.
		{"rebind.evil.example:3002", true, false},
		{"localhost.evil.example:3002", true, false},
		{"app.localhost:3002", true, false},
		{"127.0.0.1.nip.io:3002", true, false},
		{"0.0.0.0:3002", true, false},
		{"[::]:3002", true, false},
		{"192.168.1.10:3002", true, false},
		{"[fe80::1%25lo]:3002", true, false},
		{"2130706433:3002", true, false}, // 127.0.0.1 as one number: not a literal we accept
		{"", true, false},
		// Other binds accept any Host (authentication guards them).
		{"rebind.evil.example:3002", false, true},
		{"", false, true},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/loopback=%v", tc.host, tc.loopback), func(t *testing.T) {
			r := httptest.NewRequest("GET", "/health", nil)
			r.Host = tc.host
			if got := HostAllowed(r, tc.loopback); got != tc.want {
				t.Fatalf("HostAllowed(%q, %v) = %v, want %v", tc.host, tc.loopback, got, tc.want)
			}
		})
	}
}

func TestIsLoopbackAddr(t *testing.T) {
	cases := []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3002}, true},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 3002}, true},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 3002}, false},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 3002}, false},
		{&net.TCPAddr{IP: net.IPv4(192, 168, 1, 10), Port: 3002}, false},
		{&net.UnixAddr{Name: "/tmp/gw.sock", Net: "unix"}, false},
		{nil, false},
	}
	for _, tc := range cases {
		if got := IsLoopbackAddr(tc.addr); got != tc.want {
			t.Errorf("IsLoopbackAddr(%v) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}
