package limits

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// OriginAllowed reports whether a WebSocket request may proceed: requests
// without Origin (CLI clients) pass; a browser request passes when its Origin
// host equals the request Host, or when its origin (scheme://host[:port]) is
// in allowed, or allowed holds "*". On a loopback bind (loopbackBind) an
// origin whose host is loopback (any port) passes too, so a dashboard dev
// server proxying /ws to the gateway works (docs/PROTOCOL.md §7); that is
// only safe together with HostAllowed, which keeps a DNS-rebound page from
// posing as loopback. Comparison ignores case and default ports.
func OriginAllowed(r *http.Request, allowed []string, loopbackBind bool) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	o, ok := normalizeOrigin(origin)
	if !ok {
		return false
	}
	scheme, host, _ := strings.Cut(o, "://")
	// The Host header omits the port exactly when it is the default of the
	// scheme the browser used, which for a same-origin request is the
	// Origin's scheme.
	if host == normalizeHost(r.Host, scheme) {
		return true
	}
	if loopbackBind && IsLoopbackHost(host) {
		return true
	}
	for _, a := range allowed {
		if a == "*" {
			return true
		}
		if n, ok := normalizeOrigin(a); ok && n == o {
			return true
		}
	}
	return false
}

// HostAllowed reports whether a request's Host header is acceptable: on a
// loopback bind it must name a loopback host, because a page whose DNS name
// was rebound to 127.0.0.1 reaches a loopback server as same-origin but
// still sends its own name as Host (DNS-rebinding defence). Any Host passes
// on other binds, where authentication is required instead.
func HostAllowed(r *http.Request, loopbackBind bool) bool {
	return !loopbackBind || IsLoopbackHost(r.Host)
}

// IsLoopbackHost reports whether host[:port] names a loopback host:
// "localhost" (any case), an address in 127.0.0.0/8 or ::1 (bracketed when
// a port follows). Names that merely resolve to loopback do not count: a
// name in DNS is exactly what a rebinding attacker controls.
func IsLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}

// IsLoopbackAddr reports whether a listener's address is a loopback IP. A
// wildcard address (0.0.0.0, ::) is not: it also accepts remote clients.
func IsLoopbackAddr(a net.Addr) bool {
	if a == nil {
		return false
	}
	ap, err := netip.ParseAddrPort(a.String())
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// normalizeOrigin lower-cases scheme://host[:port] and drops a default port;
// ok is false for "null" and anything else that is not an http(s) origin.
func normalizeOrigin(s string) (string, bool) {
	u, err := url.Parse(strings.TrimSuffix(strings.TrimSpace(s), "/"))
	if err != nil || u.Host == "" || u.User != nil || u.Path != "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	return scheme + "://" + normalizeHost(u.Host, scheme), true
}

// normalizeHost lower-cases host[:port] and drops the scheme's default port.
func normalizeHost(host, scheme string) string {
	host = strings.ToLower(host)
	if scheme == "https" {
		return strings.TrimSuffix(host, ":443")
	}
	return strings.TrimSuffix(host, ":80")
}
