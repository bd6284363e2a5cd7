package limits

import (
	"net/http"
	"net/url"
	"strings"
)

// OriginAllowed reports whether a WebSocket request may proceed: requests
// without Origin (CLI clients) pass; a browser request passes when its Origin
// host equals the request Host, or when its origin (scheme://host[:port]) is
// in allowed, or allowed holds "*". Comparison ignores case and default ports.
func OriginAllowed(r *http.Request, allowed []string) bool {
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
