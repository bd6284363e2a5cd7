package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// env returns a getenv over m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func mustLoad(t *testing.T, args []string, m map[string]string) *Config {
	t.Helper()
	c, err := Load(args, env(m))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	c := mustLoad(t, nil, nil)
	host, _ := os.Hostname()
	checks := []struct {
		name      string
		got, want any
	}{
		{"embedded", c.Kafka.Embedded(), true},
		{"topic", c.Kafka.Topic, "dashstream-quality"},
		{"dlq", c.DLQ.Topic, "dashstream-quality-dlq"},
		{"group", c.Kafka.GroupID, "websocket-server-v4"},
		{"instance", c.Kafka.InstanceID, host + "-3002"},
		{"progress group", c.Kafka.ProgressGroup(), "websocket-server-v4." + host + "-3002"},
		{"reset", c.Kafka.AutoOffsetReset, "latest"},
		{"policy", c.Kafka.OnDecodeError, "skip"},
		{"schema max", c.Kafka.SchemaVersionMax, uint32(0)},
		{"protocol", c.Kafka.SecurityProtocol, "PLAINTEXT"},
		{"lag", c.Kafka.LagCheckInterval, 10 * time.Second},
		{"progress", c.Kafka.ProgressInterval, 5 * time.Second},
		{"addr", c.Server.Addr(), "127.0.0.1:3002"},
		{"payload", c.Server.MaxPayloadBytes, 10 << 20},
		{"send timeout", c.Server.SendTimeout, 5 * time.Second},
		{"queue", c.Server.ClientBacklogBytes, 4 << 20},
		{"resume wait", c.Server.ResumeWait, time.Second},
		{"ping", c.Server.PingInterval, 20 * time.Second},
		{"slow threshold", c.SlowClient.DisconnectThreshold, 1000},
		{"slow window", c.SlowClient.LagWindow, 60 * time.Second},
		{"slow catchup", c.SlowClient.MaxCatchup, 120 * time.Second},
		{"replay timeout", c.Replay.Timeout, 30 * time.Second},
		{"replay total", c.Replay.MaxTotal, 10000},
		{"replay bytes", c.Replay.MaxBytes, int64(64 << 20)},
		{"memory size", c.Replay.MemorySize, 1000},
		{"memory bytes", c.Replay.MemoryBytes, int64(64 << 20)},
		{"redis", c.Redis.Enabled(), false},
		{"redis ttl", c.Redis.MessageTTL, time.Hour},
		{"redis max", c.Redis.MaxSequences, 10000},
		{"redis writes", c.Redis.MaxConcurrentWrites, 100},
		{"dlq sends", c.DLQ.MaxConcurrentSends, 100},
		{"dlq timeout", c.DLQ.SendTimeout, 5 * time.Second},
		{"dlq full", c.DLQ.IncludeFullPayload, false},
		{"schemas", c.Schemas.Path, ".dashflow/expected_schemas.json"},
		{"ui", c.UI.Dir, ""},
		{"embedded addr", c.EmbeddedKafka.Addr, "127.0.0.1:9092"},
		{"embedded parts", c.EmbeddedKafka.Partitions, 4},
		{"shutdown", c.Shutdown.Timeout, 15 * time.Second},
		{"stall", c.Shutdown.StallRestart, time.Duration(0)},
		{"per ip", c.Security.MaxConnectionsPerIP, 10},
		{"rate", c.Security.ConnectRatePerIP, 20.0},
		{"burst", c.Security.ConnectBurstPerIP, 40},
		{"admin", c.Admin.Token, ""},
		{"public", c.BindsPublic(), false},
		{"auth", c.AuthConfigured(), false},
		{"insecure", c.InsecurePublic, false},
		{"log", c.Log.Level + "/" + c.Log.Format, "info/text"},
		{"max connections", c.Server.MaxConnections, 0},
		{"internal addr", c.Server.InternalAddr, ""},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func TestEnvParsing(t *testing.T) {
	c := mustLoad(t, nil, map[string]string{
		"KAFKA_BROKERS":                 "k1:9092, k2:9092,",
		"KAFKA_TOPIC":                   "t",
		"INSTANCE_ID":                   "gw-1",
		"KAFKA_AUTO_OFFSET_RESET":       "EARLIEST",
		"KAFKA_SCHEMA_VERSION_MAX":      "2",
		"KAFKA_ON_DECODE_ERROR":         "pause",
		"KAFKA_SECURITY_PROTOCOL":       "sasl_ssl",
		"KAFKA_SASL_MECHANISM":          "scram-sha-512",
		"KAFKA_SASL_USERNAME":           "u",
		"KAFKA_SASL_PASSWORD":           "p",
		"WEBSOCKET_SEND_TIMEOUT_SECS":   "0.25",
		"WEBSOCKET_RESUME_WAIT_MS":      "50",
		"DLQ_INCLUDE_FULL_PAYLOAD":      "true",
		"WEBSOCKET_ALLOWED_ORIGINS":     "https://a.example, http://localhost:5173",
		"WEBSOCKET_TRUSTED_PROXY_IPS":   "10.0.0.0/8,::1",
		"REDIS_URL":                     "redis://:pw@localhost:6379/0",
		"WEBSOCKET_HOST":                "0.0.0.0",
		"WEBSOCKET_AUTH_TOKEN":          "tok",
		"WEBSOCKET_CONNECT_RATE_PER_IP": "2.5",
	})
	if c.Kafka.Embedded() || len(c.Kafka.Brokers) != 2 || c.Kafka.Brokers[1] != "k2:9092" {
		t.Errorf("brokers = %q", c.Kafka.Brokers)
	}
	if c.DLQ.Topic != "t-dlq" || c.Kafka.InstanceID != "gw-1" {
		t.Errorf("dlq %q instance %q", c.DLQ.Topic, c.Kafka.InstanceID)
	}
	if c.Kafka.AutoOffsetReset != "earliest" || c.Kafka.SASLMechanism != "SCRAM-SHA-512" || !c.Kafka.TLS() {
		t.Errorf("enums not normalised: %+v", c.Kafka)
	}
	if c.Server.SendTimeout != 250*time.Millisecond || c.Server.ResumeWait != 50*time.Millisecond {
		t.Errorf("durations %v %v", c.Server.SendTimeout, c.Server.ResumeWait)
	}
	if !c.DLQ.IncludeFullPayload || len(c.Security.AllowedOrigins) != 2 || len(c.Security.TrustedProxies) != 2 {
		t.Errorf("security %+v", c.Security)
	}
	if !c.BindsPublic() || !c.AuthConfigured() || !c.Redis.Enabled() || c.Security.ConnectRatePerIP != 2.5 {
		t.Errorf("derived predicates wrong")
	}
}

func TestFlagsWinOverEnv(t *testing.T) {
	dir := t.TempDir()
	c := mustLoad(t, []string{
		"--kafka-topic=from-flag", "-websocket-port", "4000", "--ui-dir", dir,
		"--insecure-public", "--dlq-include-full-payload", "--kafka-dlq-topic=", "serve",
	}, map[string]string{"KAFKA_TOPIC": "from-env", "WEBSOCKET_PORT": "5000", "KAFKA_DLQ_TOPIC": "env-dlq"})
	if c.Kafka.Topic != "from-flag" || c.Server.Port != 4000 || c.UI.Dir != dir {
		t.Errorf("flags lost: %q %d %q", c.Kafka.Topic, c.Server.Port, c.UI.Dir)
	}
	if !c.InsecurePublic || !c.DLQ.IncludeFullPayload {
		t.Errorf("bare bool flags not set")
	}
	if c.DLQ.Topic != "from-flag-dlq" {
		t.Errorf("empty flag should restore the default, got %q", c.DLQ.Topic)
	}
	if len(c.Args) != 1 || c.Args[0] != "serve" {
		t.Errorf("args = %q", c.Args)
	}
}

func TestInvalidValues(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string // the variable the error must name
	}{
		{"not int", map[string]string{"WEBSOCKET_PORT": "abc"}, nil, "WEBSOCKET_PORT"},
		{"int range", map[string]string{"WEBSOCKET_PORT": "70000"}, nil, "WEBSOCKET_PORT"},
		{"negative", map[string]string{"REPLAY_MAX_TOTAL": "-1"}, nil, "REPLAY_MAX_TOTAL"},
		{"not number", map[string]string{"WEBSOCKET_SEND_TIMEOUT_SECS": "5s"}, nil, "WEBSOCKET_SEND_TIMEOUT_SECS"},
		{"zero timeout", map[string]string{"SHUTDOWN_TIMEOUT_SECS": "0"}, nil, "SHUTDOWN_TIMEOUT_SECS"},
		{"nan", map[string]string{"WEBSOCKET_CONNECT_RATE_PER_IP": "NaN"}, nil, "WEBSOCKET_CONNECT_RATE_PER_IP"},
		{"not bool", map[string]string{"DLQ_INCLUDE_FULL_PAYLOAD": "yes"}, nil, "DLQ_INCLUDE_FULL_PAYLOAD"},
		{"enum", map[string]string{"KAFKA_ON_DECODE_ERROR": "ignore"}, nil, "KAFKA_ON_DECODE_ERROR"},
		{"reset enum", map[string]string{"KAFKA_AUTO_OFFSET_RESET": "none"}, nil, "KAFKA_AUTO_OFFSET_RESET"},
		{"uint32", map[string]string{"KAFKA_SCHEMA_VERSION_MAX": "-2"}, nil, "KAFKA_SCHEMA_VERSION_MAX"},
		{"int64", map[string]string{"REPLAY_MAX_BYTES": "1e9"}, nil, "REPLAY_MAX_BYTES"},
		{"broker", map[string]string{"KAFKA_BROKERS": "nohostport"}, nil, "KAFKA_BROKERS"},
		{"topic", map[string]string{"KAFKA_TOPIC": "bad topic"}, nil, "KAFKA_TOPIC"},
		{"dlq same", map[string]string{"KAFKA_DLQ_TOPIC": "dashstream-quality"}, nil, "KAFKA_DLQ_TOPIC"},
		{"sasl missing", map[string]string{"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, nil, "KAFKA_SASL_MECHANISM"},
		{"sasl no proto", map[string]string{"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}, nil, "KAFKA_SASL_MECHANISM"},
		{"sasl no user", map[string]string{"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_PASSWORD": "p"}, nil, "KAFKA_SASL_MECHANISM"},
		{"ssl pair", map[string]string{"KAFKA_SSL_CERTIFICATE_LOCATION": "c.pem"}, nil, "KAFKA_SSL_KEY_LOCATION"},
		{"tls pair", map[string]string{"TLS_KEY_FILE": "k.pem"}, nil, "TLS_KEY_FILE"},
		{"origin", map[string]string{"WEBSOCKET_ALLOWED_ORIGINS": "example.com"}, nil, "WEBSOCKET_ALLOWED_ORIGINS"},
		{"origin path", map[string]string{"WEBSOCKET_ALLOWED_ORIGINS": "https://a.example/x"}, nil, "WEBSOCKET_ALLOWED_ORIGINS"},
		{"proxy", map[string]string{"WEBSOCKET_TRUSTED_PROXY_IPS": "10.0.0.0/33"}, nil, "WEBSOCKET_TRUSTED_PROXY_IPS"},
		{"redis", map[string]string{"REDIS_URL": "http://x"}, nil, "REDIS_URL"},
		{"ui missing", map[string]string{"WEBSOCKET_UI_DIR": "/does/not/exist"}, nil, "WEBSOCKET_UI_DIR"},
		{"ui file", nil, []string{"--ui-dir", file}, "WEBSOCKET_UI_DIR"},
		{"tenant", map[string]string{"WEBSOCKET_JWT_TENANT_CLAIM": "tenant"}, nil, "WEBSOCKET_JWT_TENANT_CLAIM"},
		{"embedded addr", map[string]string{"EMBEDDED_KAFKA_ADDR": "9092"}, nil, "EMBEDDED_KAFKA_ADDR"},
		{"log level", map[string]string{"LOG_LEVEL": "loud"}, nil, "LOG_LEVEL"},
		{"flag value", nil, []string{"--websocket-port=x"}, "WEBSOCKET_PORT"},
		{"max conns negative", map[string]string{"WEBSOCKET_MAX_CONNECTIONS": "-1"}, nil, "WEBSOCKET_MAX_CONNECTIONS"},
		{"max conns text", map[string]string{"WEBSOCKET_MAX_CONNECTIONS": "many"}, nil, "WEBSOCKET_MAX_CONNECTIONS"},
		{"internal no port", map[string]string{"INTERNAL_ADDR": "127.0.0.1"}, nil, "INTERNAL_ADDR"},
		{"internal port only", map[string]string{"INTERNAL_ADDR": "9002"}, nil, "INTERNAL_ADDR"},
		{"internal no host", map[string]string{"INTERNAL_ADDR": ":9002"}, nil, "INTERNAL_ADDR"},
		{"internal bad port", map[string]string{"INTERNAL_ADDR": "127.0.0.1:http"}, nil, "INTERNAL_ADDR"},
		{"internal port range", map[string]string{"INTERNAL_ADDR": "127.0.0.1:70000"}, nil, "INTERNAL_ADDR"},
		{"internal same as public", map[string]string{"INTERNAL_ADDR": "127.0.0.1:3002"}, nil, "INTERNAL_ADDR"},
		{"internal localhost alias", map[string]string{"INTERNAL_ADDR": "localhost:3002"}, nil, "INTERNAL_ADDR"},
		{"internal under public wildcard", map[string]string{"WEBSOCKET_HOST": "0.0.0.0", "INTERNAL_ADDR": "10.0.0.5:3002"}, nil, "INTERNAL_ADDR"},
		{"internal wildcard", nil, []string{"--internal-addr", "[::]:4000", "--websocket-port", "4000"}, "INTERNAL_ADDR"},
		{"unknown flag", nil, []string{"--nope"}, "nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.args, env(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, err := Load(nil, env(map[string]string{"WEBSOCKET_PORT": "x", "REPLAY_MAX_TOTAL": "y"}))
	if err == nil || !strings.Contains(err.Error(), "WEBSOCKET_PORT") || !strings.Contains(err.Error(), "REPLAY_MAX_TOTAL") {
		t.Fatalf("err = %v", err)
	}
}

func TestSecretNotInErrors(t *testing.T) {
	_, err := Load(nil, env(map[string]string{"REDIS_URL": "http://user:hunter2@x"}))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v", err)
	}
}

func TestRedaction(t *testing.T) {
	c := mustLoad(t, nil, map[string]string{
		"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN",
		"KAFKA_SASL_USERNAME": "user", "KAFKA_SASL_PASSWORD": "s3cret-sasl",
		"ADMIN_TOKEN": "s3cret-admin", "WEBSOCKET_AUTH_TOKEN": "s3cret-ws", "WEBSOCKET_JWT_SECRET": "s3cret-jwt",
		"REDIS_URL": "redis://default:s3cret-redis@cache:6379/1",
	})
	var buf bytes.Buffer
	if err := c.Print(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, "s3cret") {
		t.Fatalf("secret printed:\n%s", out)
	}
	for _, line := range []string{
		"KAFKA_SASL_PASSWORD=<redacted>\n", "ADMIN_TOKEN=<redacted>\n", "WEBSOCKET_AUTH_TOKEN=<redacted>\n",
		"WEBSOCKET_JWT_SECRET=<redacted>\n", "REDIS_URL=redis://default:<redacted>@cache:6379/1\n",
		"KAFKA_SASL_USERNAME=user\n", "KAFKA_TOPIC=dashstream-quality\n", "KAFKA_BROKERS=\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("missing %q in\n%s", line, out)
		}
	}
	m := c.Redacted()
	if m["ADMIN_TOKEN"] != "<redacted>" || m["WEBSOCKET_PORT"] != "3002" || len(m) != len(c.vars()) {
		t.Errorf("Redacted map wrong: %v", m)
	}
	var again bytes.Buffer
	_ = c.Print(&again)
	if again.String() != out {
		t.Error("Print order not stable")
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://cache:6379":        "redis://cache:6379",
		"redis://u@cache:6379":      "redis://u@cache:6379",
		"rediss://:pw@cache:6379/0": "rediss://:<redacted>@cache:6379/0",
		"redis://%zz@bad":           "<redacted>",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHelp(t *testing.T) {
	if _, err := Load([]string{"--help"}, env(nil)); !errors.Is(err, ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	var buf bytes.Buffer
	Usage(&buf)
	for _, s := range []string{"--kafka-brokers (KAFKA_BROKERS", "--websocket-ui-dir, --ui-dir", "--insecure-public"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("usage lacks %q", s)
		}
	}
}

func TestMaxConnectionsAndInternalAddr(t *testing.T) {
	c := mustLoad(t, []string{"--websocket-max-connections", "500"}, map[string]string{"INTERNAL_ADDR": "0.0.0.0:9002"})
	if c.Server.MaxConnections != 500 || c.Server.InternalAddr != "0.0.0.0:9002" {
		t.Fatalf("max %d internal %q", c.Server.MaxConnections, c.Server.InternalAddr)
	}
	for _, ok := range []map[string]string{
		{"INTERNAL_ADDR": "127.0.0.1:9002"},
		{"INTERNAL_ADDR": "127.0.0.1:3003"},                     // same host, other port
		{"INTERNAL_ADDR": "10.0.0.5:3002"},                      // same port, other host
		{"INTERNAL_ADDR": "127.0.0.1:0", "WEBSOCKET_PORT": "0"}, // both pick free ports
		{"INTERNAL_ADDR": "[::1]:9002", "WEBSOCKET_MAX_CONNECTIONS": "0"},
	} {
		if _, err := Load(nil, env(ok)); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
}

func TestBindsPublic(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": false, "::1": false, "localhost": false, "127.0.0.2": false,
		"0.0.0.0": true, "": true, "10.1.2.3": true, "::": true, "gateway.internal": true,
	} {
		c := &Config{Server: Server{Host: host}}
		if got := c.BindsPublic(); got != want {
			t.Errorf("BindsPublic(%q) = %v", host, got)
		}
	}
}

func TestCheckBind(t *testing.T) {
	brokers := map[string]string{"KAFKA_BROKERS": "kafka-1:9092"}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // substring of the error; "" = accepted
	}{
		{"loopback, embedded broker", nil, nil, ""},
		{"localhost, embedded broker", []string{"--websocket-host", "localhost"}, nil, ""},
		{"public, embedded broker", []string{"--websocket-host", "0.0.0.0"}, nil, "without KAFKA_BROKERS"},
		{"public, embedded broker, auth", []string{"--websocket-host", "0.0.0.0", "--websocket-auth-token", "s"}, nil, "without KAFKA_BROKERS"},
		{"public, embedded broker, insecure-public", []string{"--websocket-host", "::", "--insecure-public"}, nil, "without KAFKA_BROKERS"},
		{"public, brokers, no auth", []string{"--websocket-host", "10.1.2.3"}, brokers, "without client authentication"},
		{"public, brokers, insecure-public", []string{"--websocket-host", "10.1.2.3", "--insecure-public"}, brokers, ""},
		{"public, brokers, auth", []string{"--websocket-host", "0.0.0.0", "--websocket-auth-token", "s"}, brokers, ""},
		{"public, brokers, jwt", []string{"--websocket-host", "0.0.0.0", "--websocket-jwt-secret", strings.Repeat("k", 32)}, brokers, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := mustLoad(t, tt.args, tt.env).CheckBind()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (!errors.Is(err, ErrUnsafeBind) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want ErrUnsafeBind with %q", err, tt.want)
			}
		})
	}
}

func TestInstanceIDFallback(t *testing.T) {
	c := &Config{Server: Server{Port: 9}}
	c.fillDerived(func() (string, error) { return "", errors.New("no host") })
	if c.Kafka.InstanceID != "dashstream-9" {
		t.Fatalf("instance = %q", c.Kafka.InstanceID)
	}
}

func TestJWTSettings(t *testing.T) {
	d := mustLoad(t, nil, nil).Security
	if d.JWTLeeway != 10*time.Second || d.JWKSRefresh != 15*time.Minute || d.JWTConfigured() {
		t.Errorf("defaults: leeway %v refresh %v configured %v", d.JWTLeeway, d.JWKSRefresh, d.JWTConfigured())
	}
	c := mustLoad(t, nil, map[string]string{
		"WEBSOCKET_HOST":                  "0.0.0.0",
		"WEBSOCKET_OIDC_ISSUER_URL":       "https://keycloak.example.com/realms/acme",
		"WEBSOCKET_JWT_JWKS_URL":          "http://127.0.0.1:8080/jwks",
		"WEBSOCKET_JWT_ISSUER":            "https://tokens.example.com/",
		"WEBSOCKET_JWT_AUDIENCE":          "dashstream, dashstream-ui",
		"WEBSOCKET_JWT_LEEWAY_SECS":       "0",
		"WEBSOCKET_JWT_JWKS_REFRESH_SECS": "60",
		"WEBSOCKET_JWT_TENANT_CLAIM":      "tenant",
	})
	s := c.Security
	if !c.AuthConfigured() || s.OIDCIssuerURL != "https://keycloak.example.com/realms/acme" ||
		s.JWTJWKSURL != "http://127.0.0.1:8080/jwks" || s.JWTIssuer != "https://tokens.example.com/" {
		t.Errorf("security %+v", s)
	}
	if len(s.JWTAudience) != 2 || s.JWTAudience[1] != "dashstream-ui" || s.JWTLeeway != 0 || s.JWKSRefresh != time.Minute {
		t.Errorf("audience %q leeway %v refresh %v", s.JWTAudience, s.JWTLeeway, s.JWKSRefresh)
	}
	invalid := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"jwks plain http", map[string]string{"WEBSOCKET_JWT_JWKS_URL": "http://idp.example.com/jwks"}, "WEBSOCKET_JWT_JWKS_URL"},
		{"jwks not a url", map[string]string{"WEBSOCKET_JWT_JWKS_URL": "idp.example.com/jwks"}, "WEBSOCKET_JWT_JWKS_URL"},
		{"oidc scheme", map[string]string{"WEBSOCKET_OIDC_ISSUER_URL": "ftp://idp.example.com"}, "WEBSOCKET_OIDC_ISSUER_URL"},
		{"issuer without key", map[string]string{"WEBSOCKET_JWT_ISSUER": "https://idp.example.com"}, "WEBSOCKET_JWT_ISSUER"},
		{"leeway too long", map[string]string{"WEBSOCKET_JWT_LEEWAY_SECS": "301"}, "WEBSOCKET_JWT_LEEWAY_SECS"},
		{"refresh zero", map[string]string{"WEBSOCKET_JWT_JWKS_REFRESH_SECS": "0"}, "WEBSOCKET_JWT_JWKS_REFRESH_SECS"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(nil, env(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
	if _, err := Load(nil, env(map[string]string{"WEBSOCKET_JWT_JWKS_URL": "https://t.auth0.com/.well-known/jwks.json",
		"WEBSOCKET_JWT_TENANT_CLAIM": "org_id"})); err != nil {
		t.Fatalf("a tenant claim with a JWKS: %v", err)
	}
}
