package devbroker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// DefaultAddr is where the development broker listens when BrokerConfig.Addr
// is empty: the address Kafka tools and DashFlow producers try first.
const DefaultAddr = "127.0.0.1:9092"

// defaultPartitions is the partition count of created topics when
// BrokerConfig.Partitions is zero.
const defaultPartitions = 4

// BrokerConfig configures the embedded development broker.
type BrokerConfig struct {
	// Addr is the host:port to listen on; empty means DefaultAddr. Port 0
	// picks a free port (see Broker.Addrs). The broker listens on exactly
	// this address: if it is taken, StartBroker fails instead of moving.
	// The broker advertises the address it listens on, so clients on other
	// machines need a concrete host here, not 0.0.0.0.
	Addr string
	// Partitions is the partition count of every topic in Topics; zero
	// means 4.
	Partitions int32
	// Topics are created at start (typically the DashStream topic and its
	// DLQ topic). Other topics are created on first use, as Kafka's
	// auto.create.topics.enable does.
	Topics []string
	// DataDir persists the broker's log to this directory and reloads it on
	// the next start; empty keeps everything in memory.
	DataDir string
}

// Broker is a running single-node development Kafka broker. It is safe for
// concurrent use; Close stops it.
type Broker struct {
	cluster *kfake.Cluster
	addrs   []string
}

// StartBroker starts a Kafka-protocol broker in process. It speaks enough of
// the protocol for kgo, librdkafka and the Kafka command-line tools, but it
// has no replication and, without DataDir, no persistence: it is for
// development only, and says so in the log.
func StartBroker(cfg BrokerConfig, log *slog.Logger) (*Broker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("devbroker: listen %s: %w", cfg.Addr, err)
	}
	cluster, err := kfake.NewCluster(clusterOpts(cfg, ln, log)...)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("devbroker: start: %w", err)
	}
	b := &Broker{cluster: cluster, addrs: cluster.ListenAddrs()}
	log.Warn("embedded development Kafka broker: single node, no replication, not for production",
		"addr", b.addrs[0], "topics", cfg.Topics, "partitions", cfg.Partitions,
		"data_dir", cfg.DataDir, "durable", false)
	return b, nil
}

// Addrs returns the host:port the broker listens on, for use as seed brokers.
func (b *Broker) Addrs() []string {
	return append([]string(nil), b.addrs...)
}

// Close stops the broker, flushing its log to DataDir if one is set. It is
// safe to call more than once.
func (b *Broker) Close() {
	b.cluster.Close()
}

func (cfg BrokerConfig) withDefaults() (BrokerConfig, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = defaultPartitions
	}
	if cfg.Partitions < 0 {
		return cfg, fmt.Errorf("devbroker: partitions %d: must be positive", cfg.Partitions)
	}
	if _, err := listenPort(cfg.Addr); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func listenPort(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("devbroker: address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return 0, fmt.Errorf("devbroker: address %q: invalid port", addr)
	}
	return port, nil
}

// clusterOpts hands kfake a listener we opened ourselves: kfake would bind
// 127.0.0.1 only and, asked for a taken port, we want a clear error before
// any cluster state exists. kfake advertises the listener's address.
func clusterOpts(cfg BrokerConfig, ln net.Listener, log *slog.Logger) []kfake.Opt {
	port := ln.Addr().(*net.TCPAddr).Port
	opts := []kfake.Opt{
		kfake.Ports(port),
		kfake.ListenFn(onceListener(ln)),
		kfake.ClusterID("dashstream-dev"),
		kfake.DefaultNumPartitions(int(cfg.Partitions)),
		kfake.AllowAutoTopicCreation(),
		kfake.WithLogger(kfakeLogger{log}),
	}
	if len(cfg.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(cfg.Partitions, cfg.Topics...))
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	return opts
}

// errListenerUsed is returned if kfake asks for a second listener, which
// would only happen if it grew more brokers than the one port we gave it.
var errListenerUsed = errors.New("devbroker: listener already handed out")

func onceListener(ln net.Listener) func(network, address string) (net.Listener, error) {
	used := false
	return func(string, string) (net.Listener, error) {
		if used {
			return nil, errListenerUsed
		}
		used = true
		return ln, nil
	}
}

// kfakeLogger forwards kfake's warnings and errors; its info and debug
// levels log every request and stay out of the application log.
type kfakeLogger struct{ log *slog.Logger }

func (l kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		l.log.Error("devbroker: broker error", "component", "devbroker", "detail", fmt.Sprintf(format, args...))
	case kfake.LogLevelWarn:
		l.log.Warn("devbroker: broker warning", "component", "devbroker", "detail", fmt.Sprintf(format, args...))
	}
}
