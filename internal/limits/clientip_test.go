package limits

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseTrusted(t *testing.T) {
	tp, err := ParseTrusted([]string{"10.0.0.0/8", " 192.168.1.1 ", "2001:db8::/32", "::1", "::ffff:172.16.0.0/108"})
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]bool{
		"10.2.3.4": true, "192.168.1.1": true, "192.168.1.2": false, "2001:db8::5": true,
		"::1": true, "::ffff:10.0.0.1": true, "172.16.3.3": true, "172.32.0.1": false, "8.8.8.8": false,
	} {
		if got := tp.Contains(netip.MustParseAddr(s)); got != want {
			t.Errorf("Contains(%s) = %v", s, got)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "nope", "", "1.2.3.4:80"} {
		if _, err := ParseTrusted([]string{bad}); err == nil {
			t.Errorf("ParseTrusted(%q) accepted", bad)
		}
	}
	var none *TrustedProxies
	if none.Contains(netip.MustParseAddr("10.0.0.1")) {
		t.Error("nil set trusts")
	}
}

func TestClientIP(t *testing.T) {
	tp, err := ParseTrusted([]string{"10.0.0.0/8", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"no header", "203.0.113.5:4000", nil, "203.0.113.5"},
		{"untrusted peer ignores header", "203.0.113.5:4000", []string{"1.1.1.1"}, "203.0.113.5"},
		{"trusted peer", "10.0.0.1:4000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"skip trusted hops", "10.0.0.1:4000", []string{"198.51.100.7, 10.1.1.1, 10.2.2.2"}, "198.51.100.7"},
		{"spoofed left ignored", "10.0.0.1:4000", []string{"6.6.6.6, 198.51.100.7"}, "198.51.100.7"},
		{"multiple headers", "10.0.0.1:4000", []string{"6.6.6.6", "198.51.100.7, 10.3.3.3"}, "198.51.100.7"},
		{"all trusted gives leftmost", "10.0.0.1:4000", []string{"10.9.9.9, 10.1.1.1"}, "10.9.9.9"},
		{"malformed gives peer", "10.0.0.1:4000", []string{"1.1.1.1, garbage"}, "10.0.0.1"},
		{"empty entry gives peer", "10.0.0.1:4000", []string{"1.1.1.1,,"}, "10.0.0.1"},
		{"hop with port", "10.0.0.1:4000", []string{"198.51.100.7:1234"}, "198.51.100.7"},
		{"ipv6 peer", "[2001:db8::1]:4000", nil, "2001:db8::1"},
		{"ipv6 trusted", "[fd00::1]:4000", []string{"2001:db8::9"}, "2001:db8::9"},
		{"mapped peer", "[::ffff:10.0.0.1]:4000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"zone stripped", "[fe80::1%eth0]:4000", nil, "fe80::1"},
		{"bare ip remote", "203.0.113.9", nil, "203.0.113.9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/ws", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := ClientIP(r, tp); got != netip.MustParseAddr(tc.want) {
				t.Fatalf("ClientIP = %v, want %s", got, tc.want)
			}
		})
	}
}

func TestClientIPUnreadablePeer(t *testing.T) {
	r := httptest.NewRequest("GET", "/ws", nil)
	r.RemoteAddr = "pipe"
	if got := ClientIP(r, nil); got.IsValid() {
		t.Fatalf("got %v", got)
	}
}

func TestClientIPLongTrustedChain(t *testing.T) {
	tp, _ := ParseTrusted([]string{"10.0.0.0/8"})
	r := httptest.NewRequest("GET", "/ws", nil)
	r.RemoteAddr = "10.0.0.1:1"
	for range maxForwardedHops + 5 {
		r.Header.Add("X-Forwarded-For", "10.1.1.1")
	}
	if got := ClientIP(r, tp); got != netip.MustParseAddr("10.0.0.1") {
		t.Fatalf("got %v, want the peer", got)
	}
}

func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:1", "1.2.3.4, 10.0.0.2")
	f.Add("[::1]:1", "garbage")
	tp, _ := ParseTrusted([]string{"10.0.0.0/8", "::1"})
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest("GET", "/ws", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		ClientIP(r, tp)
	})
}
