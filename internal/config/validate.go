package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
)

// topicName is a legal Kafka topic name.
var topicName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// Validate checks the values together; each error names its variable.
func (c *Config) Validate() error {
	var errs []error
	check := func(name string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("config: %s: %w", name, err))
		}
	}
	c.validateKafka(check)
	c.validateServer(check)
	c.validateRedisHA(check)
	c.validateSecurity(check)
	c.validateTracing(check)
	return errors.Join(errs...)
}

type checkFunc func(name string, err error)

func (c *Config) validateKafka(check checkFunc) {
	k := c.Kafka
	for _, b := range k.Brokers {
		check("KAFKA_BROKERS", hostPort(b))
	}
	check("KAFKA_TOPIC", topic(k.Topic))
	check("KAFKA_DLQ_TOPIC", topic(c.DLQ.Topic))
	if c.DLQ.Topic == k.Topic {
		check("KAFKA_DLQ_TOPIC", errors.New("must differ from KAFKA_TOPIC"))
	}
	check("KAFKA_GROUP_ID", nonEmpty(k.GroupID))
	check("INSTANCE_ID", nonEmpty(k.InstanceID))
	check("KAFKA_SASL_MECHANISM", c.saslError())
	check("KAFKA_SSL_KEY_LOCATION", pair(k.SSLCertificateLocation, k.SSLKeyLocation, "KAFKA_SSL_CERTIFICATE_LOCATION"))
	if k.Embedded() {
		check("EMBEDDED_KAFKA_ADDR", hostPort(c.EmbeddedKafka.Addr))
	}
	if c.Log.PprofAddr != "" {
		check("DEBUG_PPROF_ADDR", loopbackHostPort(c.Log.PprofAddr))
	}
}

// loopbackHostPort accepts host:port on a loopback address only: profiles
// expose internals and must never be reachable from the network.
func loopbackHostPort(s string) error {
	if err := hostPort(s); err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(s)
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q is not a loopback address", s)
	}
	return nil
}

func (c *Config) saslError() error {
	k := c.Kafka
	wantSASL := k.SecurityProtocol == "SASL_PLAINTEXT" || k.SecurityProtocol == "SASL_SSL"
	switch {
	case wantSASL && !k.SASL():
		return fmt.Errorf("required with KAFKA_SECURITY_PROTOCOL=%s", k.SecurityProtocol)
	case !wantSASL && k.SASL():
		return fmt.Errorf("needs KAFKA_SECURITY_PROTOCOL SASL_PLAINTEXT or SASL_SSL, not %s", k.SecurityProtocol)
	case k.SASL() && k.SASLPassword == "":
		return errors.New("needs KAFKA_SASL_PASSWORD")
	case k.SASL() && k.SASLMechanism != "OAUTHBEARER" && k.SASLUsername == "":
		return errors.New("needs KAFKA_SASL_USERNAME")
	}
	return nil
}

func (c *Config) validateServer(check checkFunc) {
	check("WEBSOCKET_HOST", nonEmpty(c.Server.Host))
	check("EXPECTED_SCHEMAS_PATH", nonEmpty(c.Schemas.Path))
	if c.Redis.URL != "" {
		check("REDIS_URL", redisURL(c.Redis.URL))
	}
	if c.UI.Dir != "" {
		check("WEBSOCKET_UI_DIR", directory(c.UI.Dir))
	}
	if c.Server.InternalAddr != "" {
		check("INTERNAL_ADDR", c.internalAddrError())
	}
}

// internalAddrError requires host:port with a numeric port that cannot be
// the public listener's address (port 0 picks a free port, so never
// collides).
func (c *Config) internalAddrError() error {
	s := c.Server.InternalAddr
	if err := hostPort(s); err != nil {
		return err
	}
	host, portText, _ := net.SplitHostPort(s)
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return fmt.Errorf("%q has no valid port", s)
	}
	if port != 0 && port == c.Server.Port && sameHost(host, c.Server.Host) {
		return fmt.Errorf("%q must differ from the public address %s", s, c.Server.Addr())
	}
	return nil
}

// sameHost reports whether listeners on hosts a and b could share an
// address: equal, either a wildcard, or both loopback.
func sameHost(a, b string) bool {
	wildcard := func(h string) bool { ip := net.ParseIP(h); return h == "" || (ip != nil && ip.IsUnspecified()) }
	loopback := func(h string) bool { ip := net.ParseIP(h); return h == "localhost" || (ip != nil && ip.IsLoopback()) }
	ipa, ipb := net.ParseIP(a), net.ParseIP(b)
	return a == b || wildcard(a) || wildcard(b) || (ipa != nil && ipa.Equal(ipb)) || (loopback(a) && loopback(b))
}

func (c *Config) validateSecurity(check checkFunc) {
	s := c.Security
	for _, o := range s.AllowedOrigins {
		check("WEBSOCKET_ALLOWED_ORIGINS", origin(o))
	}
	for _, p := range s.TrustedProxies {
		check("WEBSOCKET_TRUSTED_PROXY_IPS", ipOrCIDR(p))
	}
	check("TLS_KEY_FILE", pair(s.TLSCertFile, s.TLSKeyFile, "TLS_CERT_FILE"))
	c.validateJWT(check)
}

func (c *Config) validateJWT(check checkFunc) {
	s := c.Security
	if s.JWTTenantClaim != "" && !s.JWTConfigured() {
		check("WEBSOCKET_JWT_TENANT_CLAIM", errors.New("needs WEBSOCKET_JWT_SECRET, WEBSOCKET_JWT_PUBLIC_KEY_FILE, "+
			"WEBSOCKET_JWT_JWKS_URL or WEBSOCKET_OIDC_ISSUER_URL"))
	}
	if s.JWTJWKSURL != "" {
		check("WEBSOCKET_JWT_JWKS_URL", providerURL(s.JWTJWKSURL))
	}
	if s.OIDCIssuerURL != "" {
		check("WEBSOCKET_OIDC_ISSUER_URL", providerURL(s.OIDCIssuerURL))
	}
	if (s.JWTIssuer != "" || len(s.JWTAudience) > 0) && !s.JWTConfigured() {
		check("WEBSOCKET_JWT_ISSUER", errors.New("iss and aud checks need a JWT key source"))
	}
}

// providerURL accepts an https URL, or http to a loopback host: keys
// fetched over plain HTTP from elsewhere could be swapped on the way.
func providerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%q is not an absolute URL", s)
	}
	if u.Scheme == "https" {
		return nil
	}
	ip := net.ParseIP(u.Hostname())
	if u.Scheme == "http" && (u.Hostname() == "localhost" || ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("%q: must be https (plain http only to a loopback host)", s)
}

func nonEmpty(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	return nil
}

func topic(s string) error {
	if !topicName.MatchString(s) || s == "." || s == ".." {
		return fmt.Errorf("%q is not a valid topic name", s)
	}
	return nil
}

func hostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("%q is not host:port", s)
	}
	return nil
}

// pair requires a and b to be both set or both empty.
func pair(a, b, aName string) error {
	if (a == "") != (b == "") {
		return fmt.Errorf("must be set together with %s", aName)
	}
	return nil
}

// origin accepts "*" or scheme://host[:port] with nothing after it.
func origin(s string) error {
	if s == "*" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an origin (scheme://host[:port]) or *", s)
	}
	return nil
}

func ipOrCIDR(s string) error {
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	if _, err := netip.ParsePrefix(s); err == nil {
		return nil
	}
	return fmt.Errorf("%q is neither an IP address nor a CIDR", s)
}

func redisURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
		return errors.New("not a redis://, rediss:// or unix:// URL")
	}
	if u.Scheme != "unix" && u.Host == "" {
		return errors.New("has no host")
	}
	return nil
}

func directory(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", path)
	}
	return nil
}
