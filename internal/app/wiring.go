package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gobwas/ws"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/buildinfo"
	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/devbroker"
	"github.com/dashflow/dashstream-gateway/internal/httpserver"
	"github.com/dashflow/dashstream-gateway/internal/hub"
	"github.com/dashflow/dashstream-gateway/internal/kafka"
	"github.com/dashflow/dashstream-gateway/internal/limits"
	"github.com/dashflow/dashstream-gateway/web"
)

func (a *App) hubConfig() hub.Config {
	c := a.cfg
	return hub.Config{
		QueueBytes:     int64(c.Server.ClientBacklogBytes),
		SendTimeout:    c.Server.SendTimeout,
		PingInterval:   c.Server.PingInterval,
		ResumeWait:     c.Server.ResumeWait,
		LatestJoin:     c.Server.LatestJoin,
		JoinWindow:     c.Server.JoinWindow,
		ScanFilters:    c.Server.FilterIndex == "off",
		MaxPayload:     c.Server.MaxPayloadBytes,
		ReplayTimeout:  c.Replay.Timeout,
		ReplayMaxTotal: c.Replay.MaxTotal,
		ReplayMaxBytes: int(c.Replay.MaxBytes),
		ReplaySlots:    c.Replay.MaxConcurrent,
		SlowThreshold:  int64(c.SlowClient.DisconnectThreshold),
		SlowWindow:     c.SlowClient.LagWindow,
		MaxCatchup:     c.SlowClient.MaxCatchup,
		Namespace:      a.up.Namespace,
		Tokens:         a.auth,
	}
}

func (a *App) kafkaConfig(brokers []string) kafka.Config {
	k := a.cfg.Kafka
	return kafka.Config{
		Brokers: brokers, Topic: k.Topic, DLQTopic: a.cfg.DLQ.Topic, GroupID: k.GroupID,
		InstanceID: k.InstanceID, AutoOffsetReset: k.AutoOffsetReset, WarmRecords: a.cfg.Replay.MemorySize,
		OnDecodeError: k.OnDecodeError, MaxPayload: a.cfg.Server.MaxPayloadBytes,
		MaxSchemaVersion: k.SchemaVersionMax, ProgressInterval: k.ProgressInterval,
		LagCheckInterval: k.LagCheckInterval,
		DLQ: kafka.DLQConfig{MaxConcurrent: a.cfg.DLQ.MaxConcurrentSends, SendTimeout: a.cfg.DLQ.SendTimeout,
			IncludeFullPayload: a.cfg.DLQ.IncludeFullPayload},
		Security: kafka.Security{Protocol: k.SecurityProtocol, SASLMechanism: k.SASLMechanism,
			Username: k.SASLUsername, Password: k.SASLPassword, CAFile: k.SSLCALocation,
			CertFile: k.SSLCertificateLocation, KeyFile: k.SSLKeyLocation},
		ShutdownTimeout:       a.share(shareConsumerFlush),
		ExtraOpts:             []kgo.Opt{kgo.WithHooks(a.kmetrics)},
		TracerProvider:        a.tracing.TracerProvider(),
		BeforeNamespaceChange: a.dropNamespace,
		AfterNamespaceChange:  a.adoptedNamespace,
	}
}

// closeTopicRecreated is the close code and reason for clients connected
// when the topic was re-created (docs/PROTOCOL.md §3.7): 1012 "service restart", so
// that they re-read /version and resume in the new namespace.
const (
	closeTopicRecreated       ws.StatusCode = 1012
	closeTopicRecreatedReason               = "topic re-created"
)

// dropNamespace runs when the topic was re-created, before the new
// namespace is visible and before any record of the new topic is published:
// nothing of the old namespace may be served for the new one, so the
// memory tier, the shared deep records and the heads are emptied, Kafka's cached log starts
// forgotten, and the Redis tier switched to the new namespace's keys.
func (a *App) dropNamespace(old, ns string) {
	a.mem.Reset()
	a.tiers.Forget()
	a.hub.ResetHeads()
	if d := a.up.deepReader(); d != nil {
		d.Reset()
	}
	if a.up.redis != nil {
		if err := a.useRedisNamespace(ns, false); err != nil {
			a.log.Error("redis tier not switched to the new namespace", "namespace", ns, "err", err)
		}
	}
}

// adoptedNamespace runs once the new namespace is visible: every connected
// client is closed with 1012 and resumes in it. It waits (bounded) until
// they are closed, so that none of them is sent a record of the new topic
// under its old positions.
func (a *App) adoptedNamespace(old, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n := a.hub.CloseAll(ctx, closeTopicRecreated, closeTopicRecreatedReason)
	a.log.Warn("topic re-created: replay store emptied, clients closed to resume in the new namespace",
		"old_namespace", old, "namespace", ns, "clients_closed", n)
}

func (a *App) httpConfig() httpserver.Config {
	return httpserver.Config{TLSCertFile: a.cfg.Security.TLSCertFile, TLSKeyFile: a.cfg.Security.TLSKeyFile,
		MaxWebSockets: a.cfg.Server.MaxConnections, Internal: a.cfg.Server.InternalAddr != ""}
}

// authConfig is the client authentication of /ws (docs/PROTOCOL.md §7).
func (a *App) authConfig() auth.AuthConfig {
	s := a.cfg.Security
	return auth.AuthConfig{Token: s.AuthToken, JWTSecret: s.JWTSecret,
		JWTPublicKeyFile: s.JWTPublicKeyFile, TenantClaim: s.JWTTenantClaim,
		JWKSURL: s.JWTJWKSURL, OIDCIssuerURL: s.OIDCIssuerURL, Issuer: s.JWTIssuer, Audience: s.JWTAudience,
		Leeway: s.JWTLeeway, JWKSRefresh: s.JWKSRefresh, Logger: a.log.With("component", "auth")}
}

func (a *App) httpDeps() httpserver.Deps {
	s := a.cfg.Security
	trusted, _ := limits.ParseTrusted(s.TrustedProxies) // validated by config
	return httpserver.Deps{
		Logger: a.log.With("component", "http"), Gatherer: a.reg, Metrics: a.m, WS: a.hub, SSE: a.hub, Auth: a.auth,
		Limiter: limits.NewConnLimiter(limits.LimiterConfig{MaxPerIP: s.MaxConnectionsPerIP,
			RatePerIP: s.ConnectRatePerIP, BurstPerIP: s.ConnectBurstPerIP}),
		Trusted: trusted, AllowedOrigins: s.AllowedOrigins,
		Status: a.status, Version: a.version,
		AdminToken: a.cfg.Admin.Token, ClearReplay: a.clearReplay, ResumePartition: a.resumePartition,
		SchemasPath: a.cfg.Schemas.Path, UIDir: a.cfg.UI.Dir, UI: web.FS(),
		Threads: a.tiers, Decoder: dashstream.NewDecoder(dashstream.DecoderConfig{MaxPayload: a.cfg.Server.MaxPayloadBytes}),
	}
}

func (a *App) version() httpserver.VersionInfo {
	bi := buildinfo.Get()
	return httpserver.VersionInfo{GitSHA: bi.GitSHA, BuildDate: bi.BuildDate,
		SchemaVersion: buildinfo.SchemaVersion, Component: "websocket-server",
		ResumeNamespace: a.up.Namespace(), KafkaTopic: a.cfg.Kafka.Topic, KafkaGroupID: a.cfg.Kafka.GroupID,
		MaxPayloadBytes: a.cfg.Server.MaxPayloadBytes, DecodeErrorPolicy: a.cfg.Kafka.OnDecodeError}
}

func (a *App) status() httpserver.Status {
	c := a.up.Consumer()
	records, bytes := a.mem.Stats()
	partitions := 0
	if c != nil {
		partitions = len(c.Partitions())
	}
	maxRecords, maxBytes := a.mem.Capacity(partitions)
	rc := a.m.Replay()
	st := httpserver.Status{
		Starting:     c == nil,
		ShuttingDown: a.stopping.Load(),
		Replay: httpserver.ReplayStatus{RedisEnabled: a.up.redis != nil, MemoryHits: rc.MemoryHits,
			RedisHits: rc.RedisHits, RedisMisses: rc.RedisMisses, RedisWriteDropped: rc.RedisWriteDropped,
			RedisWriteFailures: rc.RedisWriteFailures,
			MemoryBufferSize:   records, MaxMemorySize: maxRecords,
			MemoryBufferBytes: int64(bytes), MaxMemoryBytes: int64(maxBytes),
			RedisMessageTTLSecs: int64(a.cfg.Redis.MessageTTL / time.Second), RedisMaxSequences: a.cfg.Redis.MaxSequences},
		Breaker: a.breakerStatus(),
	}
	if a.up.redis != nil && !a.up.redis.healthy() {
		st.Alerts = append(st.Alerts, "redis unavailable: replay served from memory and Kafka")
	}
	if c == nil {
		return st
	}
	st.KafkaReachable = c.Reachable()
	if p := c.TopicProblem(); p != "" {
		st.NotReady = "topic_unavailable"
		st.Alerts = append(st.Alerts, p)
	}
	if !st.KafkaReachable {
		st.KafkaState = httpserver.KafkaReconnecting
	}
	st.PausedPartitions = c.Paused()
	st.Wedged = c.Stalled(2 * time.Minute)
	return st
}

// breakerStatus is /health's circuit_breaker: the Redis tier's breaker;
// half-open while the tier waits for Kafka's namespace to connect; healthy
// without Redis.
func (a *App) breakerStatus() httpserver.CircuitBreakerStatus {
	if a.up.redis == nil {
		return httpserver.CircuitBreakerStatus{State: httpserver.BreakerHealthy}
	}
	s := a.up.redis.get()
	if s == nil {
		return httpserver.CircuitBreakerStatus{State: httpserver.BreakerHalfOpen, RedisConfigured: true}
	}
	b := s.Breaker()
	return httpserver.CircuitBreakerStatus{State: b.State, RedisConfigured: true,
		ConsecutiveFailures: b.ConsecutiveFailures, FailureThreshold: b.FailureThreshold,
		TimesOpened: b.TimesOpened, DownSince: b.DownSince, ProbeIntervalMs: b.ProbeInterval.Milliseconds()}
}

// breakerOpen is the dashstream_redis_circuit_breaker_open gauge.
func (a *App) breakerOpen() float64 {
	if a.breakerStatus().State == httpserver.BreakerOpen {
		return 1
	}
	return 0
}

func (a *App) clearReplay(ctx context.Context) error {
	_ = a.mem.Clear(ctx) // never fails
	a.tiers.Forget()
	if s := a.up.redis.get(); s != nil {
		if err := s.Clear(ctx); err != nil {
			return fmt.Errorf("app: clear redis: %w", err)
		}
	}
	a.log.Warn("replay store cleared by an admin request")
	return nil
}

func (a *App) resumePartition(ctx context.Context, p int32) error {
	c := a.up.Consumer()
	if c == nil {
		return fmt.Errorf("app: consumer not started")
	}
	err := c.ResumePartition(ctx, p)
	switch {
	case errors.Is(err, kafka.ErrNotPaused):
		return fmt.Errorf("%w: %w", httpserver.ErrNotPaused, err)
	case errors.Is(err, kafka.ErrUnknownPartition):
		return fmt.Errorf("%w: %w", httpserver.ErrUnknownPartition, err)
	}
	return err
}

// runDemo produces the synthetic DashFlow workload until ctx is done.
func (a *App) runDemo(ctx context.Context, brokers []string) error {
	opts, err := kafka.ClientOpts(a.kafkaConfig(brokers).Security)
	if err != nil {
		return fmt.Errorf("app: demo producer: %w", err)
	}
	opts = append(opts, kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(a.cfg.Kafka.Topic))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("app: demo producer: %w", err)
	}
	defer cl.Close()
	a.log.Info("demo workload running", "topic", a.cfg.Kafka.Topic, "open", a.URL())
	err = devbroker.RunDemo(ctx, cl, a.cfg.Kafka.Topic, devbroker.WorkloadConfig{}, a.log.With("component", "demo"))
	if ctx.Err() != nil {
		return nil
	}
	return err
}
