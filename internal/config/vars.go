package config

import (
	"math"
	"strings"
	"time"
)

// variable is one environment variable with its flag, default and field.
type variable struct {
	name   string // environment name; the flag is its kebab-case lower form
	def    string // default, parsed like any input; "" leaves the zero value
	help   string
	v      value
	secret bool   // shown as <redacted> when set
	alias  string // extra flag name, e.g. "ui-dir"
	isBool bool   // the flag may be given without a value
}

// flagName is the flag of an environment variable: KAFKA_BROKERS → kafka-brokers.
func flagName(env string) string {
	return strings.ToLower(strings.ReplaceAll(env, "_", "-"))
}

const (
	mib      = 1 << 20
	maxSecs  = 365 * 24 * 3600
	minSecs  = 0.001
	maxCount = math.MaxInt32
)

func secs(p *time.Duration, lowest float64) durationValue {
	return durationValue{p: p, unit: time.Second, min: lowest, max: maxSecs}
}

// vars lists every variable bound to the fields of c, in the order Print
// shows them.
func (c *Config) vars() []variable {
	var vs []variable
	vs = append(vs, c.kafkaVars()...)
	vs = append(vs, c.dlqVars()...)
	vs = append(vs, c.serverVars()...)
	vs = append(vs, c.replayVars()...)
	vs = append(vs, c.redisHAVars()...)
	vs = append(vs, c.securityVars()...)
	vs = append(vs, c.jwtVars()...)
	vs = append(vs, c.tlsVars()...)
	return append(vs, c.processVars()...)
}

func (c *Config) kafkaVars() []variable {
	k := &c.Kafka
	return []variable{
		{name: "KAFKA_BROKERS", help: "comma-separated host:port seed brokers; empty starts the embedded development broker (loopback binds only)", v: listValue{&k.Brokers}},
		{name: "KAFKA_TOPIC", def: "dashstream-quality", help: "DashStream topic", v: stringValue{&k.Topic}},
		{name: "KAFKA_GROUP_ID", def: "websocket-server-v4", help: "prefix of the per-instance progress group <group>.<instance>", v: stringValue{&k.GroupID}},
		{name: "INSTANCE_ID", help: "instance name (default host name + \"-\" + port)", v: stringValue{&k.InstanceID}},
		{name: "KAFKA_AUTO_OFFSET_RESET", def: "latest", help: "start of a partition without saved progress: latest (warm replay window) or earliest", v: enumValue{&k.AutoOffsetReset, []string{"latest", "earliest"}}},
		{name: "KAFKA_SCHEMA_VERSION_MAX", help: "reject records with a higher schema_version (unset: not enforced)", v: uint32Value{&k.SchemaVersionMax}},
		{name: "KAFKA_ON_DECODE_ERROR", def: "skip", help: "decode failure policy: skip (dead-letter and go on) or pause (stop the partition)", v: enumValue{&k.OnDecodeError, []string{"skip", "pause"}}},
		{name: "KAFKA_SECURITY_PROTOCOL", def: "PLAINTEXT", help: "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", v: enumValue{&k.SecurityProtocol, []string{"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}}},
		{name: "KAFKA_SASL_MECHANISM", help: "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", v: enumValue{&k.SASLMechanism, []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"}}},
		{name: "KAFKA_SASL_USERNAME", help: "SASL user name", v: stringValue{&k.SASLUsername}},
		{name: "KAFKA_SASL_PASSWORD", help: "SASL password (or OAUTHBEARER token)", v: stringValue{&k.SASLPassword}, secret: true},
		{name: "KAFKA_SSL_CA_LOCATION", help: "CA bundle (PEM) for broker certificates", v: stringValue{&k.SSLCALocation}},
		{name: "KAFKA_SSL_CERTIFICATE_LOCATION", help: "client certificate (PEM)", v: stringValue{&k.SSLCertificateLocation}},
		{name: "KAFKA_SSL_KEY_LOCATION", help: "client key (PEM)", v: stringValue{&k.SSLKeyLocation}},
		{name: "KAFKA_LAG_CHECK_INTERVAL_SECS", def: "10", help: "seconds between lag polls", v: secs(&k.LagCheckInterval, minSecs)},
		{name: "KAFKA_PROGRESS_INTERVAL_SECS", def: "5", help: "seconds between progress saves", v: secs(&k.ProgressInterval, minSecs)},
	}
}

func (c *Config) dlqVars() []variable {
	d := &c.DLQ
	return []variable{
		{name: "KAFKA_DLQ_TOPIC", help: "dead-letter topic (default <topic>-dlq)", v: stringValue{&d.Topic}},
		{name: "MAX_CONCURRENT_DLQ_SENDS", def: "100", help: "in-flight dead-letter sends", v: intValue{&d.MaxConcurrentSends, 1, 100000}},
		{name: "DLQ_SEND_TIMEOUT_SECS", def: "5", help: "seconds one dead-letter send may take", v: secs(&d.SendTimeout, minSecs)},
		{name: "DLQ_INCLUDE_FULL_PAYLOAD", def: "false", help: "include the payload (base64, up to 512 KiB) in dead-letter records", v: boolValue{&d.IncludeFullPayload}, isBool: true},
	}
}

func (c *Config) serverVars() []variable {
	s, sc := &c.Server, &c.SlowClient
	return []variable{
		{name: "WEBSOCKET_HOST", def: "127.0.0.1", help: "bind address; non-loopback needs KAFKA_BROKERS, and auth or --insecure-public", v: stringValue{&s.Host}},
		{name: "WEBSOCKET_PORT", def: "3002", help: "bind port (0: any free port)", v: intValue{&s.Port, 0, 65535}},
		{name: "WEBSOCKET_MAX_PAYLOAD_BYTES", def: "10485760", help: "largest record value, also after decompression", v: intValue{&s.MaxPayloadBytes, 1024, 1 << 30}},
		{name: "WEBSOCKET_SEND_TIMEOUT_SECS", def: "5", help: "seconds one WebSocket write may take", v: secs(&s.SendTimeout, minSecs)},
		{name: "WEBSOCKET_CLIENT_QUEUE_BYTES", def: "4194304", help: "backlog beyond which a client is catching up", v: intValue{&s.ClientBacklogBytes, 64 << 10, 1 << 30}},
		{name: "WEBSOCKET_RESUME_WAIT_MS", def: "1000", help: "milliseconds to wait for a client's first resume before from:latest", v: durationValue{&s.ResumeWait, time.Millisecond, 1, 600000}},
		{name: "WEBSOCKET_LATEST_JOIN", def: "none", help: "v1 from:latest first replays each active thread from its latest full-state record (checkpoint) or not (none)", v: enumValue{&s.LatestJoin, []string{"none", "checkpoint"}}},
		{name: "WEBSOCKET_JOIN_WINDOW_SECS", def: "300", help: "seconds since its last record within which a thread counts as active for a join", v: secs(&s.JoinWindow, minSecs)},
		{name: "WEBSOCKET_FILTER_INDEX", def: "on", help: "clients filtered to threads, message types or event types read the memory tier's thread or type index and are woken only by their records (on), or scan every record (off: for benchmark comparisons)", v: enumValue{&s.FilterIndex, []string{"on", "off"}}},
		{name: "WEBSOCKET_PING_INTERVAL_SECS", def: "20", help: "seconds between pings (two missed pongs close)", v: secs(&s.PingInterval, minSecs)},
		{name: "WEBSOCKET_MAX_CONNECTIONS", def: "0", help: "live WebSocket sessions over all clients, beyond which upgrades get 503 (0: the open-file limit minus a reserve)", v: intValue{&s.MaxConnections, 0, maxCount}},
		{name: "INTERNAL_ADDR", help: "host:port serving /healthz, /readyz, /metrics, /debug/pprof and /api/admin/* apart from client traffic (unset: off)", v: stringValue{&s.InternalAddr}},
		{name: "SLOW_CLIENT_DISCONNECT_THRESHOLD", def: "1000", help: "catch-up records per lag window before a slow client is disconnected", v: intValue{&sc.DisconnectThreshold, 1, maxCount}},
		{name: "SLOW_CLIENT_LAG_WINDOW_SECS", def: "60", help: "lag window in seconds", v: secs(&sc.LagWindow, minSecs)},
		{name: "SLOW_CLIENT_MAX_CATCHUP_SECS", def: "120", help: "longest catch-up in seconds", v: secs(&sc.MaxCatchup, minSecs)},
	}
}

func (c *Config) replayVars() []variable {
	r, rd := &c.Replay, &c.Redis
	return []variable{
		{name: "REPLAY_TIMEOUT_SECS", def: "30", help: "seconds the replay part of a resume may take", v: secs(&r.Timeout, minSecs)},
		{name: "REPLAY_MAX_TOTAL", def: "10000", help: "records per replay before it continues as catch-up", v: intValue{&r.MaxTotal, 1, maxCount}},
		{name: "REPLAY_MAX_BYTES", def: "67108864", help: "bytes per replay before it continues as catch-up", v: int64Value{&r.MaxBytes, 1024, math.MaxInt64}},
		{name: "REPLAY_MAX_CONCURRENT", def: "32", help: "replays running at once (others wait within the replay timeout)", v: intValue{&r.MaxConcurrent, 1, 100000}},
		{name: "REPLAY_BUFFER_MEMORY_SIZE", def: "1000", help: "records kept in memory per partition", v: intValue{&r.MemorySize, 1, maxCount}},
		{name: "REPLAY_BUFFER_MEMORY_BYTES", def: "67108864", help: "bytes kept in memory over all partitions", v: int64Value{&r.MemoryBytes, 1024, math.MaxInt64}},
		{name: "REDIS_URL", help: "redis://[user:password@]host:port[/db]; empty: memory-only replay", v: stringValue{&rd.URL}, secret: true},
		{name: "REDIS_MESSAGE_TTL_SECS", def: "3600", help: "seconds every Redis key lives after its last write", v: secs(&rd.MessageTTL, 1)},
		{name: "REDIS_MAX_SEQUENCES", def: "10000", help: "records kept in Redis per partition", v: intValue{&rd.MaxSequences, 1, maxCount}},
		{name: "REDIS_MAX_CONCURRENT_WRITES", def: "100", help: "in-flight Redis writes", v: intValue{&rd.MaxConcurrentWrites, 1, 100000}},
	}
}

func (c *Config) securityVars() []variable {
	s := &c.Security
	return []variable{
		{name: "WEBSOCKET_ALLOWED_ORIGINS", help: "comma-separated scheme://host[:port] origins allowed besides the same origin, or *", v: listValue{&s.AllowedOrigins}},
		{name: "WEBSOCKET_TRUSTED_PROXY_IPS", help: "comma-separated IPs and CIDRs allowed to set X-Forwarded-For", v: listValue{&s.TrustedProxies}},
		{name: "WEBSOCKET_MAX_CONNECTIONS_PER_IP", def: "10", help: "concurrent connections per client IP (IPv6 per /64)", v: intValue{&s.MaxConnectionsPerIP, 1, 1000000}},
		{name: "WEBSOCKET_CONNECT_RATE_PER_IP", def: "20", help: "new connections per second per client IP", v: floatValue{&s.ConnectRatePerIP, 0.001, 1e6}},
		{name: "WEBSOCKET_CONNECT_BURST_PER_IP", def: "40", help: "connection burst per client IP", v: intValue{&s.ConnectBurstPerIP, 1, 1000000}},
		{name: "WEBSOCKET_AUTH_TOKEN", help: "static bearer token required from clients", v: stringValue{&s.AuthToken}, secret: true},
		{name: "WEBSOCKET_JWT_SECRET", help: "HMAC key of client JWTs (HS256, HS384, HS512)", v: stringValue{&s.JWTSecret}, secret: true},
		{name: "WEBSOCKET_JWT_PUBLIC_KEY_FILE", help: "RSA, ECDSA or Ed25519 public key (PEM) of client JWTs", v: stringValue{&s.JWTPublicKeyFile}},
		{name: "WEBSOCKET_JWT_TENANT_CLAIM", help: "JWT claim restricting a client to one tenant", v: stringValue{&s.JWTTenantClaim}},
	}
}

// jwtVars are the JWT key sources and claim checks besides the secret and
// key file.
func (c *Config) jwtVars() []variable {
	s := &c.Security
	return []variable{
		{name: "WEBSOCKET_JWT_JWKS_URL", help: "JSON Web Key Set of the token issuer (https, or http to loopback)", v: stringValue{&s.JWTJWKSURL}},
		{name: "WEBSOCKET_OIDC_ISSUER_URL", help: "OpenID Connect issuer; its discovery document gives the JWKS and the expected iss", v: stringValue{&s.OIDCIssuerURL}},
		{name: "WEBSOCKET_JWT_ISSUER", help: "required iss claim (default: WEBSOCKET_OIDC_ISSUER_URL; unset without it: not checked)", v: stringValue{&s.JWTIssuer}},
		{name: "WEBSOCKET_JWT_AUDIENCE", help: "comma-separated aud values, one of which a JWT must name (unset: not checked)", v: listValue{&s.JWTAudience}},
		{name: "WEBSOCKET_JWT_LEEWAY_SECS", def: "10", help: "tolerated clock skew on exp and nbf, in seconds", v: durationValue{&s.JWTLeeway, time.Second, 0, 300}},
		{name: "WEBSOCKET_JWT_JWKS_REFRESH_SECS", def: "900", help: "seconds between JWKS refreshes (an unknown kid also refreshes, at most once per 10 s)", v: secs(&s.JWKSRefresh, 1)},
	}
}

func (c *Config) tlsVars() []variable {
	s := &c.Security
	return []variable{
		{name: "TLS_CERT_FILE", help: "HTTPS certificate (PEM)", v: stringValue{&s.TLSCertFile}},
		{name: "TLS_KEY_FILE", help: "HTTPS key (PEM)", v: stringValue{&s.TLSKeyFile}},
		{name: "ADMIN_TOKEN", help: "bearer token of admin endpoints; empty refuses them", v: stringValue{&c.Admin.Token}, secret: true},
	}
}

func (c *Config) processVars() []variable {
	return []variable{
		{name: "SHUTDOWN_TIMEOUT_SECS", def: "15", help: "seconds the ordered shutdown may take", v: secs(&c.Shutdown.Timeout, minSecs)},
		{name: "STALL_RESTART_SECS", def: "0", help: "exit non-zero after this long without progress while records wait (0: never)", v: secs(&c.Shutdown.StallRestart, 0)},
		{name: "EMBEDDED_KAFKA_ADDR", def: "127.0.0.1:9092", help: "embedded development broker address (without KAFKA_BROKERS)", v: stringValue{&c.EmbeddedKafka.Addr}},
		{name: "EMBEDDED_KAFKA_PARTITIONS", def: "4", help: "partitions of the embedded broker's topic", v: intValue{&c.EmbeddedKafka.Partitions, 1, 1024}},
		{name: "EXPECTED_SCHEMAS_PATH", def: ".dashflow/expected_schemas.json", help: "file of pinned expected graph schemas", v: stringValue{&c.Schemas.Path}},
		{name: "WEBSOCKET_UI_DIR", alias: "ui-dir", help: "serve this static build at / instead of the built-in UI", v: stringValue{&c.UI.Dir}},
		{name: "INSECURE_PUBLIC", def: "false", help: "allow binding a non-loopback address without client auth (KAFKA_BROKERS is still required there)", v: boolValue{&c.InsecurePublic}, isBool: true},
		{name: "LOG_LEVEL", def: "info", help: "debug, info, warn or error", v: enumValue{&c.Log.Level, []string{"debug", "info", "warn", "error"}}},
		{name: "LOG_FORMAT", def: "text", help: "text or json", v: enumValue{&c.Log.Format, []string{"text", "json"}}},
		{name: "DEBUG_PPROF_ADDR", help: "serve Go's /debug/pprof on this loopback host:port (unset: off)", v: stringValue{&c.Log.PprofAddr}},
	}
}
