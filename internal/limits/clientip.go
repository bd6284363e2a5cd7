// Package limits decides how many connections, and from where, the gateway
// accepts: the client IP (honouring X-Forwarded-For only from trusted
// proxies), per-IP connection and rate limits, the Origin and loopback Host
// checks against cross-site WebSocket hijacking and DNS rebinding, the
// descriptor budget and the counting listener. Who a client is (its token)
// is decided by package auth. Everything here is safe for concurrent use.
package limits

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// maxForwardedHops bounds how many X-Forwarded-For entries are examined.
const maxForwardedHops = 32

// TrustedProxies is a set of IP prefixes allowed to set X-Forwarded-For. A
// nil *TrustedProxies trusts nobody.
type TrustedProxies struct {
	prefixes []netip.Prefix
}

// ParseTrusted parses IPv4/IPv6 addresses and CIDRs.
func ParseTrusted(list []string) (*TrustedProxies, error) {
	t := &TrustedProxies{}
	for _, s := range list {
		p, err := parsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("limits: trusted proxy %q: %w", s, err)
		}
		t.prefixes = append(t.prefixes, p)
	}
	return t, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(p.Addr().Unmap(), unmappedBits(p)).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// unmappedBits converts the length of a ::ffff:a.b.c.d/n prefix to IPv4.
func unmappedBits(p netip.Prefix) int {
	if p.Addr().Is4In6() {
		return max(p.Bits()-96, 0)
	}
	return p.Bits()
}

// Contains reports whether a is a trusted proxy.
func (t *TrustedProxies) Contains(a netip.Addr) bool {
	if t == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP is the address of the client behind r. X-Forwarded-For is used
// only when the peer is trusted: walking it right to left, trusted hops are
// skipped and the first untrusted address is the client. A malformed entry,
// or a chain of only trusted hops longer than we examine, yields the peer.
// The zero Addr means the peer address itself was unreadable.
func ClientIP(r *http.Request, trusted *TrustedProxies) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !trusted.Contains(peer) {
		return peer
	}
	hops := forwardedHops(r.Header.Values("X-Forwarded-For"))
	for i := len(hops) - 1; i >= 0 && i >= len(hops)-maxForwardedHops; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			return peer
		}
		if !trusted.Contains(a) || i == 0 {
			return a
		}
	}
	return peer
}

// peerAddr parses http.Request.RemoteAddr ("ip:port", or a bare IP).
func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	if a, err := netip.ParseAddr(remote); err == nil {
		return a.Unmap().WithZone("")
	}
	return netip.Addr{}
}

// forwardedHops joins every X-Forwarded-For header, in order, into entries.
func forwardedHops(values []string) []string {
	var hops []string
	for _, v := range values {
		hops = append(hops, strings.Split(v, ",")...)
	}
	return hops
}

// parseHop reads one X-Forwarded-For entry: an IP, or an IP with a port.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}
