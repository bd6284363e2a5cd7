package kafka

import (
	"cmp"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
)

// Values of Config.AutoOffsetReset.
const (
	// ResetLatest starts a partition without saved progress
	// Config.WarmRecords records before its end.
	ResetLatest = "latest"
	// ResetEarliest starts a partition without saved progress at its log
	// start.
	ResetEarliest = "earliest"
)

// Values of Config.OnDecodeError (docs/PROTOCOL.md §2.6).
const (
	// PolicySkip dead-letters a failing record, publishes a skipped marker
	// for it and moves on.
	PolicySkip = "skip"
	// PolicyPause stops consuming the partition at the failing record until
	// ResumePartition or a restart.
	PolicyPause = "pause"
)

// Defaults applied to zero Config fields.
const (
	DefaultTopic                  = "dashstream-quality"
	DefaultGroupID                = "websocket-server-v4"
	DefaultClientID               = "dashstream-gateway"
	DefaultProgressInterval       = 5 * time.Second
	DefaultLagCheckInterval       = 10 * time.Second
	DefaultPartitionCheckInterval = 30 * time.Second
	DefaultSequenceTrackerSize    = 100_000
	DefaultDLQMaxConcurrent       = 100
	DefaultDLQSendTimeout         = 5 * time.Second
	DefaultShutdownTimeout        = 5 * time.Second
)

// Config configures a Consumer. The zero value of every field but Brokers is
// usable; each comment says what zero means.
type Config struct {
	// Brokers are the seed brokers ("host:port"). Required.
	Brokers []string
	// Topic is the DashStream topic. Empty: DefaultTopic.
	Topic string
	// DLQTopic receives dead-lettered records. Empty: Topic + "-dlq".
	DLQTopic string
	// GroupID prefixes the group progress is saved under,
	// "<GroupID>.<InstanceID>". The group never splits partitions.
	// Empty: DefaultGroupID.
	GroupID string
	// InstanceID names this instance in its progress group. Empty: the host
	// name.
	InstanceID string
	// AutoOffsetReset is where a partition without saved progress starts:
	// ResetLatest or ResetEarliest. Empty: ResetLatest.
	AutoOffsetReset string
	// WarmRecords is how many records before the end a partition without
	// saved progress starts with ResetLatest (REPLAY_BUFFER_MEMORY_SIZE), so
	// the replay window is warm at once. Zero: at the end.
	WarmRecords int
	// OnDecodeError is the decode-failure policy: PolicySkip or PolicyPause.
	// Empty: PolicySkip.
	OnDecodeError string
	// MaxPayload caps one record's payload in bytes (after the framing byte
	// and decompression). Zero: dashstream.DefaultMaxPayload.
	MaxPayload int
	// MaxSchemaVersion rejects records with a higher header schema_version.
	// Zero: not enforced.
	MaxSchemaVersion uint32
	// ProgressInterval is how often progress is saved. Zero:
	// DefaultProgressInterval.
	ProgressInterval time.Duration
	// LagCheckInterval is how often end offsets are polled for lag metrics.
	// Zero: DefaultLagCheckInterval.
	LagCheckInterval time.Duration
	// PartitionCheckInterval is how often metadata is checked for new
	// partitions. Zero: DefaultPartitionCheckInterval.
	PartitionCheckInterval time.Duration
	// DLQ bounds dead-letter sends.
	DLQ DLQConfig
	// Security is applied to every Kafka client. Zero: plaintext.
	Security Security
	// SequenceTrackerSize bounds the threads whose sequence is tracked
	// (LRU). Zero: DefaultSequenceTrackerSize.
	SequenceTrackerSize int
	// ClientID is the Kafka client id of every client. Empty:
	// DefaultClientID.
	ClientID string
	// ShutdownTimeout bounds the final DLQ flush and progress commit when
	// Run's context ends. Zero: DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// ExtraOpts are appended to the options of every Kafka client (for
	// example franz-go metrics hooks). Nil: none.
	ExtraOpts []kgo.Opt
	// TracerProvider traces each consumed batch and each DLQ send. Nil: no
	// tracing, and no tracing work on the consumer's path.
	TracerProvider trace.TracerProvider
	// BeforeNamespaceChange runs when the topic was deleted and re-created
	// (new topic id, docs/PROTOCOL.md §3.7) and its new connection is about to start:
	// Namespace still returns old and nothing is being published, so the
	// caller drops what belongs to the old namespace (replay tiers, heads).
	// AfterNamespaceChange runs right after Namespace returns new, before
	// the first record of the new topic is published (the caller closes
	// connected clients so that they resume in the new namespace). Both run
	// on Run's goroutine and must not call back into the consumer's
	// control methods. Nil: nothing.
	BeforeNamespaceChange func(from, to string)
	AfterNamespaceChange  func(from, to string)
}

// DLQConfig bounds the dead-letter producer (docs/PROTOCOL.md §2.6).
type DLQConfig struct {
	// MaxConcurrent bounds the sends in flight; a record arriving when all
	// slots are taken is dropped and counted (reason "backpressure").
	// Zero: DefaultDLQMaxConcurrent.
	MaxConcurrent int
	// SendTimeout bounds one send (reason "timeout" when exceeded). Zero:
	// DefaultDLQSendTimeout.
	SendTimeout time.Duration
	// IncludeFullPayload adds original_payload_base64 (at most 512 KiB of
	// the value) to every DLQ record. False: only digests and edge bytes.
	IncludeFullPayload bool
}

// withDefaults returns cfg with zero fields defaulted, or an error wrapping
// ErrInvalidConfig.
func (cfg Config) withDefaults() (Config, error) {
	if len(cfg.Brokers) == 0 {
		return cfg, fmt.Errorf("%w: no brokers", ErrInvalidConfig)
	}
	cfg.Topic = cmp.Or(cfg.Topic, DefaultTopic)
	cfg.DLQTopic = cmp.Or(cfg.DLQTopic, cfg.Topic+"-dlq")
	cfg.GroupID = cmp.Or(cfg.GroupID, DefaultGroupID)
	cfg.ClientID = cmp.Or(cfg.ClientID, DefaultClientID)
	cfg.AutoOffsetReset = cmp.Or(cfg.AutoOffsetReset, ResetLatest)
	cfg.OnDecodeError = cmp.Or(cfg.OnDecodeError, PolicySkip)
	if cfg.InstanceID == "" {
		host, err := os.Hostname()
		if err != nil {
			return cfg, fmt.Errorf("%w: no instance id and no host name: %w", ErrInvalidConfig, err)
		}
		cfg.InstanceID = host
	}
	cfg.defaultDurations()
	cfg.defaultSizes()
	return cfg, cfg.validate()
}

func (cfg *Config) defaultDurations() {
	cfg.ProgressInterval = orDuration(cfg.ProgressInterval, DefaultProgressInterval)
	cfg.LagCheckInterval = orDuration(cfg.LagCheckInterval, DefaultLagCheckInterval)
	cfg.PartitionCheckInterval = orDuration(cfg.PartitionCheckInterval, DefaultPartitionCheckInterval)
	cfg.ShutdownTimeout = orDuration(cfg.ShutdownTimeout, DefaultShutdownTimeout)
	cfg.DLQ.SendTimeout = orDuration(cfg.DLQ.SendTimeout, DefaultDLQSendTimeout)
}

func (cfg *Config) defaultSizes() {
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = dashstream.DefaultMaxPayload
	}
	if cfg.SequenceTrackerSize == 0 {
		cfg.SequenceTrackerSize = DefaultSequenceTrackerSize
	}
	if cfg.DLQ.MaxConcurrent == 0 {
		cfg.DLQ.MaxConcurrent = DefaultDLQMaxConcurrent
	}
}

func (cfg Config) validate() error {
	switch {
	case cfg.AutoOffsetReset != ResetLatest && cfg.AutoOffsetReset != ResetEarliest:
		return fmt.Errorf("%w: auto offset reset %q (want latest or earliest)", ErrInvalidConfig, cfg.AutoOffsetReset)
	case cfg.OnDecodeError != PolicySkip && cfg.OnDecodeError != PolicyPause:
		return fmt.Errorf("%w: decode error policy %q (want skip or pause)", ErrInvalidConfig, cfg.OnDecodeError)
	case cfg.WarmRecords < 0, cfg.MaxPayload < 0, cfg.SequenceTrackerSize < 0, cfg.DLQ.MaxConcurrent < 0:
		return fmt.Errorf("%w: negative size", ErrInvalidConfig)
	case cfg.ProgressInterval < 0, cfg.LagCheckInterval < 0, cfg.PartitionCheckInterval < 0,
		cfg.ShutdownTimeout < 0, cfg.DLQ.SendTimeout < 0:
		return fmt.Errorf("%w: negative interval", ErrInvalidConfig)
	case cfg.Topic == cfg.DLQTopic:
		return fmt.Errorf("%w: DLQ topic %q is the source topic", ErrInvalidConfig, cfg.DLQTopic)
	}
	return nil
}

// progressGroup is the group this instance saves its progress under.
func (cfg Config) progressGroup() string {
	return cfg.GroupID + "." + cfg.InstanceID
}

func orDuration(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}
