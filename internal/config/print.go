package config

import (
	"fmt"
	"io"
	"net/url"
	"strings"
)

// redacted replaces secrets in printed configuration and error messages.
const redacted = "<redacted>"

// Redacted returns every variable's effective value by name, secrets shown
// as <redacted> when set and the Redis URL with its password redacted.
func (c *Config) Redacted() map[string]string {
	out := map[string]string{}
	for _, v := range c.vars() {
		out[v.name] = redactedValue(v)
	}
	return out
}

// Print writes NAME=value lines in a stable order, secrets redacted, then
// the derived tracing lines: TRACING=on|off, the traces endpoint in effect
// (OTEL_TRACES_ENDPOINT, its password redacted) and OTEL_SERVICE_NAME.
func (c *Config) Print(w io.Writer) error {
	for _, v := range c.vars() {
		if _, err := fmt.Fprintf(w, "%s=%s\n", v.name, redactedValue(v)); err != nil {
			return fmt.Errorf("config: print: %w", err)
		}
	}
	if err := c.printTracing(w); err != nil {
		return fmt.Errorf("config: print: %w", err)
	}
	return nil
}

func redactedValue(v variable) string {
	s := v.v.String()
	switch {
	case s == "":
		return ""
	case v.name == "REDIS_URL":
		return redactURL(s)
	case v.name == "REDIS_CLUSTER_ADDRS" || v.name == "REDIS_SENTINEL_ADDRS":
		parts := strings.Split(s, ",")
		for i, p := range parts {
			if strings.Contains(p, "://") {
				parts[i] = redactURL(p)
			}
		}
		return strings.Join(parts, ",")
	case v.secret:
		return redacted
	}
	return s
}

// redactURL hides the password of a URL; an unparsable URL is hidden whole.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return redacted
	}
	if _, ok := u.User.Password(); !ok {
		return s
	}
	const mark = "REDACTEDPASSWORD"
	u.User = url.UserPassword(u.User.Username(), mark)
	return strings.Replace(u.String(), mark, redacted, 1)
}
