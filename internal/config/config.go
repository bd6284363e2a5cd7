// Package config is the only package that reads the environment and the
// command line. Load builds a Config from flags (which win) and environment
// variables (the reference names of README.md, Configuration), rejects
// every invalid value with an error naming the variable, and fills derived
// defaults. A Config is a plain value: read it freely, do not mutate it
// after Load.
package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Config is the whole effective configuration, one struct per component.
type Config struct {
	Kafka         Kafka
	DLQ           DLQ
	Server        Server
	Replay        Replay
	Redis         Redis
	SlowClient    SlowClient
	Security      Security
	Admin         Admin
	Shutdown      Shutdown
	EmbeddedKafka EmbeddedKafka
	Schemas       Schemas
	UI            UI
	Log           Log
	Tracing       Tracing

	// InsecurePublic allows binding a non-loopback address without auth
	// (--insecure-public, INSECURE_PUBLIC). False: such a start is refused.
	// It never waives KAFKA_BROKERS on such an address (CheckBind).
	InsecurePublic bool
	// Args are the command-line arguments left after the flags.
	Args []string
}

// Kafka configures every Kafka client (consumer, DLQ producer, deep replay).
type Kafka struct {
	// Brokers are host:port seed brokers (KAFKA_BROKERS). Empty: the
	// embedded development broker is used (see Embedded), on a loopback
	// bind only (CheckBind).
	Brokers []string
	// Topic is the DashStream topic (KAFKA_TOPIC). Never empty after Load.
	Topic string
	// GroupID prefixes the per-instance progress group (KAFKA_GROUP_ID).
	GroupID string
	// InstanceID names this instance (INSTANCE_ID). Empty in the input: host
	// name + "-" + port.
	InstanceID string
	// AutoOffsetReset is "latest" or "earliest" (KAFKA_AUTO_OFFSET_RESET).
	AutoOffsetReset string
	// SchemaVersionMax rejects records with a higher schema_version
	// (KAFKA_SCHEMA_VERSION_MAX). 0: not enforced.
	SchemaVersionMax uint32
	// OnDecodeError is "skip" or "pause" (KAFKA_ON_DECODE_ERROR).
	OnDecodeError string
	// SecurityProtocol is PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
	// (KAFKA_SECURITY_PROTOCOL).
	SecurityProtocol string
	// SASLMechanism is PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER
	// (KAFKA_SASL_MECHANISM). Empty: no SASL.
	SASLMechanism string
	// SASLUsername and SASLPassword are the SASL credentials. Empty: none.
	SASLUsername string
	SASLPassword string
	// SSLCALocation, SSLCertificateLocation and SSLKeyLocation are PEM file
	// paths. Empty: system roots, no client certificate.
	SSLCALocation          string
	SSLCertificateLocation string
	SSLKeyLocation         string
	// LagCheckInterval is how often partition lag is polled
	// (KAFKA_LAG_CHECK_INTERVAL_SECS). Never zero after Load.
	LagCheckInterval time.Duration
	// ProgressInterval is how often progress is saved
	// (KAFKA_PROGRESS_INTERVAL_SECS). Never zero after Load.
	ProgressInterval time.Duration
}

// Embedded reports whether no brokers are configured, so the embedded
// development broker must be started.
func (k Kafka) Embedded() bool { return len(k.Brokers) == 0 }

// ProgressGroup is the consumer group under which this instance saves its
// progress: <GroupID>.<InstanceID>.
func (k Kafka) ProgressGroup() string { return k.GroupID + "." + k.InstanceID }

// SASL reports whether a SASL mechanism is configured.
func (k Kafka) SASL() bool { return k.SASLMechanism != "" }

// TLS reports whether the security protocol uses TLS.
func (k Kafka) TLS() bool { return k.SecurityProtocol == "SSL" || k.SecurityProtocol == "SASL_SSL" }

// DLQ configures the dead-letter producer.
type DLQ struct {
	// Topic is the dead-letter topic (KAFKA_DLQ_TOPIC). Empty in the input:
	// "<Kafka.Topic>-dlq".
	Topic string
	// MaxConcurrentSends bounds in-flight DLQ sends (MAX_CONCURRENT_DLQ_SENDS).
	MaxConcurrentSends int
	// SendTimeout bounds one DLQ send (DLQ_SEND_TIMEOUT_SECS).
	SendTimeout time.Duration
	// IncludeFullPayload adds the base64 payload (DLQ_INCLUDE_FULL_PAYLOAD).
	// False: only digests and the first/last bytes.
	IncludeFullPayload bool
}

// Server configures the HTTP listener and WebSocket connections.
type Server struct {
	// Host is the bind address (WEBSOCKET_HOST), 127.0.0.1 by default.
	Host string
	// Port is the bind port (WEBSOCKET_PORT). 0: any free port (tests).
	Port int
	// MaxPayloadBytes caps a record value, compressed or not
	// (WEBSOCKET_MAX_PAYLOAD_BYTES).
	MaxPayloadBytes int
	// SendTimeout is the deadline of one WebSocket write
	// (WEBSOCKET_SEND_TIMEOUT_SECS).
	SendTimeout time.Duration
	// ClientBacklogBytes is the backlog (bytes between a client's
	// positions and the partition heads; there is no per-client queue)
	// beyond which the client is catching up and its catch-up is accounted
	// (WEBSOCKET_CLIENT_QUEUE_BYTES, named for the contract).
	ClientBacklogBytes int
	// ResumeWait is how long a new client may take to send its first resume
	// before it is treated as from:"latest" (WEBSOCKET_RESUME_WAIT_MS).
	ResumeWait time.Duration
	// LatestJoin is what a v1 resume from "latest" does first
	// (WEBSOCKET_LATEST_JOIN): "none" (nothing) or "checkpoint" (replay each
	// active thread from its latest full-state record, as a v2 resume with
	// join "checkpoint").
	LatestJoin string
	// JoinWindow is how recent a thread's last record must be for the
	// thread to count as active when joining (WEBSOCKET_JOIN_WINDOW_SECS).
	JoinWindow time.Duration
	// FilterIndex is "on" (default: clients filtered to named threads, or
	// to message types or event types, read the memory tier's thread or
	// type index and are woken only by their records) or "off" (they scan
	// every record, as other filters do), a switch for benchmark
	// comparisons (WEBSOCKET_FILTER_INDEX).
	FilterIndex string
	// PingInterval is the WebSocket ping period (WEBSOCKET_PING_INTERVAL_SECS);
	// a peer missing two pongs is closed.
	PingInterval time.Duration
	// MaxConnections bounds live WebSocket sessions over all clients
	// (WEBSOCKET_MAX_CONNECTIONS); beyond it upgrades get 503. 0: derived
	// at start from the open-file limit minus a reserve (limits.BudgetFor).
	MaxConnections int
	// InternalAddr is the host:port of the internal listener serving
	// /healthz, /readyz, /metrics, /debug/pprof and /api/admin/* apart from
	// client traffic (INTERNAL_ADDR). Empty: no internal listener; those
	// routes but pprof stay on the public listener.
	InternalAddr string
}

// Addr is Host:Port for net.Listen.
func (s Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Replay bounds resumes and the in-memory replay tier.
type Replay struct {
	// Timeout bounds the replay part of one resume (REPLAY_TIMEOUT_SECS).
	Timeout time.Duration
	// MaxTotal and MaxBytes cap one replay before it continues as catch-up
	// (REPLAY_MAX_TOTAL, REPLAY_MAX_BYTES).
	MaxTotal int
	MaxBytes int64
	// MaxConcurrent bounds replays running at once; others wait for a slot
	// within Timeout (REPLAY_MAX_CONCURRENT).
	MaxConcurrent int
	// MemorySize is records kept per partition in memory
	// (REPLAY_BUFFER_MEMORY_SIZE).
	MemorySize int
	// MemoryBytes bounds the memory tier over all partitions
	// (REPLAY_BUFFER_MEMORY_BYTES).
	MemoryBytes int64
}

// Redis configures the optional Redis replay tier.
type Redis struct {
	// URL is redis://[user:password@]host:port[/db] (REDIS_URL). Empty:
	// memory-only replay.
	URL string
	// MessageTTL is the expiry of every key after its last write
	// (REDIS_MESSAGE_TTL_SECS).
	MessageTTL time.Duration
	// MaxSequences is the per-partition record cap (REDIS_MAX_SEQUENCES).
	MaxSequences int
	// MaxConcurrentWrites bounds in-flight writes (REDIS_MAX_CONCURRENT_WRITES).
	MaxConcurrentWrites int
	// ClusterAddrs are Redis Cluster seed nodes (REDIS_CLUSTER_ADDRS), each
	// host:port or a URL carrying credentials and TLS as REDIS_URL does.
	// Empty: no cluster.
	ClusterAddrs []string
	// SentinelAddrs are Redis Sentinel addresses (REDIS_SENTINEL_ADDRS),
	// entries as for ClusterAddrs. Empty: no Sentinel.
	SentinelAddrs []string
	// SentinelMaster is the master name the sentinels monitor
	// (REDIS_SENTINEL_MASTER); required with SentinelAddrs.
	SentinelMaster string
	// SentinelPassword authenticates to the sentinels themselves
	// (REDIS_SENTINEL_PASSWORD). Empty: they need none.
	SentinelPassword string
}

// Enabled reports whether the Redis tier is configured (REDIS_URL,
// REDIS_CLUSTER_ADDRS or REDIS_SENTINEL_ADDRS).
func (r Redis) Enabled() bool {
	return r.URL != "" || len(r.ClusterAddrs) > 0 || len(r.SentinelAddrs) > 0
}

// SlowClient configures when a lagging client is disconnected.
type SlowClient struct {
	// DisconnectThreshold is catch-up records allowed within LagWindow
	// (SLOW_CLIENT_DISCONNECT_THRESHOLD).
	DisconnectThreshold int
	// LagWindow is the window of DisconnectThreshold
	// (SLOW_CLIENT_LAG_WINDOW_SECS).
	LagWindow time.Duration
	// MaxCatchup is the longest a client may stay in catch-up
	// (SLOW_CLIENT_MAX_CATCHUP_SECS).
	MaxCatchup time.Duration
}

// Security configures origins, client addresses, limits, auth and TLS.
type Security struct {
	// AllowedOrigins are scheme://host[:port] origins accepted besides the
	// same origin, or "*" (WEBSOCKET_ALLOWED_ORIGINS). Empty: same origin only.
	AllowedOrigins []string
	// TrustedProxies are IPs and CIDRs allowed to set X-Forwarded-For
	// (WEBSOCKET_TRUSTED_PROXY_IPS). Empty: the peer address is the client.
	TrustedProxies []string
	// MaxConnectionsPerIP bounds concurrent connections per client IP (IPv6
	// per /64) (WEBSOCKET_MAX_CONNECTIONS_PER_IP).
	MaxConnectionsPerIP int
	// ConnectRatePerIP is new connections per second per client IP
	// (WEBSOCKET_CONNECT_RATE_PER_IP); ConnectBurstPerIP its bucket size
	// (WEBSOCKET_CONNECT_BURST_PER_IP).
	ConnectRatePerIP  float64
	ConnectBurstPerIP int
	// AuthToken is a static bearer token (WEBSOCKET_AUTH_TOKEN). Empty: none.
	AuthToken string
	// JWTSecret is the HMAC key of HS256/384/512 (WEBSOCKET_JWT_SECRET).
	// Empty: none.
	JWTSecret string
	// JWTPublicKeyFile is an RSA, ECDSA or Ed25519 PEM public key file
	// (WEBSOCKET_JWT_PUBLIC_KEY_FILE). Empty: none.
	JWTPublicKeyFile string
	// JWTJWKSURL is the token issuer's JSON Web Key Set
	// (WEBSOCKET_JWT_JWKS_URL). Empty: none.
	JWTJWKSURL string
	// OIDCIssuerURL is an OpenID Connect issuer whose discovery document
	// gives the JWKS URL and the expected iss (WEBSOCKET_OIDC_ISSUER_URL).
	// Empty: none.
	OIDCIssuerURL string
	// JWTIssuer is the required iss claim (WEBSOCKET_JWT_ISSUER). Empty:
	// OIDCIssuerURL, or not checked.
	JWTIssuer string
	// JWTAudience lists accepted aud values (WEBSOCKET_JWT_AUDIENCE).
	// Empty: aud not checked.
	JWTAudience []string
	// JWTLeeway is the tolerated clock skew on exp and nbf
	// (WEBSOCKET_JWT_LEEWAY_SECS). 0: none.
	JWTLeeway time.Duration
	// JWKSRefresh is the period of JWKS refreshes
	// (WEBSOCKET_JWT_JWKS_REFRESH_SECS).
	JWKSRefresh time.Duration
	// JWTTenantClaim restricts a client to its tenant's records
	// (WEBSOCKET_JWT_TENANT_CLAIM). Empty: no tenant restriction.
	JWTTenantClaim string
	// TLSCertFile and TLSKeyFile enable HTTPS (TLS_CERT_FILE, TLS_KEY_FILE).
	// Empty: plain HTTP.
	TLSCertFile string
	TLSKeyFile  string
}

// TLS reports whether HTTPS is configured.
func (s Security) TLS() bool { return s.TLSCertFile != "" }

// Admin configures the authenticated admin endpoints.
type Admin struct {
	// Token is the bearer token of admin calls (ADMIN_TOKEN). Empty: admin
	// endpoints answer 403.
	Token string
}

// Shutdown configures stopping and self-restart.
type Shutdown struct {
	// Timeout bounds the whole ordered shutdown (SHUTDOWN_TIMEOUT_SECS).
	Timeout time.Duration
	// StallRestart exits non-zero after this long without progress while
	// records wait (STALL_RESTART_SECS). 0: never.
	StallRestart time.Duration
}

// EmbeddedKafka configures the development broker used without Brokers.
type EmbeddedKafka struct {
	// Addr is its listen address (EMBEDDED_KAFKA_ADDR).
	Addr string
	// Partitions of the topic it creates (EMBEDDED_KAFKA_PARTITIONS).
	Partitions int
}

// Schemas configures the pinned expected-schema store.
type Schemas struct {
	// Path is the JSON file (EXPECTED_SCHEMAS_PATH).
	Path string
}

// UI configures the web UI served at /.
type UI struct {
	// Dir serves another static build (WEBSOCKET_UI_DIR, --ui-dir). Empty:
	// the built-in UI.
	Dir string
}

// Log configures the process logger.
type Log struct {
	// Level is debug, info, warn or error (LOG_LEVEL).
	Level string
	// Format is text or json (LOG_FORMAT).
	Format string
	// PprofAddr serves /debug/pprof on this loopback address (DEBUG_PPROF_ADDR).
	// Empty: not served.
	PprofAddr string
}

// BindsPublic reports whether Server.Host is not a loopback address. A host
// name other than "localhost" counts as public.
func (c *Config) BindsPublic() bool {
	if c.Server.Host == "localhost" {
		return false
	}
	ip := net.ParseIP(c.Server.Host)
	return ip == nil || !ip.IsLoopback()
}

// ErrUnsafeBind is wrapped by CheckBind's errors: serving on this bind would
// expose a development setup (docs/PROTOCOL.md §7). The process exits with status 2.
var ErrUnsafeBind = errors.New("unsafe bind")

// CheckBind reports why serving on Server.Host must not start: on a
// non-loopback address the embedded development broker is refused (a
// production deployment without KAFKA_BROKERS must not look healthy), and so
// is a bind without client authentication unless InsecurePublic waives that
// one rule. Nil: the bind is acceptable.
func (c *Config) CheckBind() error {
	if !c.BindsPublic() {
		return nil
	}
	if len(c.Kafka.Brokers) == 0 {
		return fmt.Errorf("%w: refusing to listen on %s without KAFKA_BROKERS: the embedded development broker "+
			"is for loopback development only; set KAFKA_BROKERS, or bind WEBSOCKET_HOST=127.0.0.1", ErrUnsafeBind, c.Server.Host)
	}
	if !c.AuthConfigured() && !c.InsecurePublic {
		return fmt.Errorf("%w: refusing to listen on %s without client authentication; "+
			"set WEBSOCKET_AUTH_TOKEN (or JWT settings), or pass --insecure-public to accept the risk", ErrUnsafeBind, c.Server.Host)
	}
	return nil
}

// AuthConfigured reports whether any client authentication is configured.
func (c *Config) AuthConfigured() bool {
	s := c.Security
	return s.AuthToken != "" || s.JWTConfigured()
}

// JWTConfigured reports whether any JWT key source is configured.
func (s Security) JWTConfigured() bool {
	return s.JWTSecret != "" || s.JWTPublicKeyFile != "" || s.JWTJWKSURL != "" || s.OIDCIssuerURL != ""
}
