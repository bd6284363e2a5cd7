package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/app"
	"github.com/dashflow/dashstream-gateway/internal/bench"
	"github.com/dashflow/dashstream-gateway/internal/config"
)

var benchHelp = helpText{
	name:    "bench",
	args:    "[flags]",
	summary: "End-to-end load benchmark: throughput, producer-to-client latency and exactness.",
	about: `Produces DashStream records into the gateway's Kafka topic at --rate, reads
them through --clients WebSocket clients and reports throughput,
producer-to-client latency and exactness (lost, duplicated, out-of-order
records) as text or --json. Without --url it starts a gateway (embedded Kafka
broker, free ports); with --url it benchmarks a running gateway on this
machine, producing to --brokers/--topic (memory is reported with
--server-pid). Only loopback targets are accepted.
--v2 makes the clients speak protocol v2. --threads N spreads the records
over N thread ids; --filter-per-client then has each client follow one of
them with a server-side filter, and checks it got exactly that thread's
records (lost, duplicated, and "foreign": records its filter excludes).
--filter-types checkpoint gives every client the filter {"types":[...]}
(message type names of the filter: event, checkpoint, ...) and makes the
threads runs (a GRAPH_START event, then a Checkpoint every
--full-state-every records), each client checked for exactly the produced
records of its types. --filter-index off runs the embedded gateway with the
thread and type indexes disabled (filters scan every record).
--format json: v2 JSON record frames, with the gateway's JSON encodes/s.
--compare-v1 runs the load with v1 then v2 clients and compares the
gateway's CPU per delivery. --join-clients N: halfway through, N clients
join the --threads runs at their last full state; reports the time to it
and the others' live p99 before and during the burst.
--floor runs no gateway: it measures the bare writes of the same load (one
thread writing pre-encoded frames to as many loopback sockets, a writev per
client per 5 ms), the least any gateway could spend on it on this machine,
to compare the gateway's CPU per delivery with.
Exit status: 0, 1 on a failure, 2 on a usage error.`,
	examples: []string{
		"dashstream bench --v2 --clients 10000 --threads 1000 --filter-per-client --rate 2000 --filter-index off",
		"dashstream bench --floor --v2 --clients 10000 --threads 1000 --filter-per-client --rate 2000",
		"dashstream bench --url ws://127.0.0.1:3002/ws --brokers 127.0.0.1:9092 --server-pid $(pgrep -n dashstream)",
	},
}

// benchOptions are the parsed flags of `dashstream bench`.
type benchOptions struct {
	url, brokers, topic       string
	serverPID                 int
	clients, idle, rate, size int
	partitions, threads       int
	v2, sse, filterPerClient  bool
	format, filterIndex       string
	filterTypes               string
	compareV1                 bool
	joinClients, fullEvery    int
	duration, warmup, grace   time.Duration
	asJSON, quiet             bool
	cpuProfile                string
	inProcess, floor          bool
	floorSink                 string
}

func parseBenchFlags(args []string, e env) (benchOptions, int) {
	var o benchOptions
	fs := newFlagSet(&benchHelp)
	fs.StringVar(&o.url, "url", "", "gateway WebSocket URL (empty: start an embedded gateway)")
	fs.StringVar(&o.brokers, "brokers", "127.0.0.1:9092", "with --url: the gateway's Kafka brokers, comma-separated")
	fs.StringVar(&o.topic, "topic", "dashstream-quality", "the gateway's topic")
	fs.IntVar(&o.serverPID, "server-pid", 0, "with --url: the gateway's process id, to report its memory")
	fs.IntVar(&o.clients, "clients", 100, "WebSocket clients reading the stream")
	fs.IntVar(&o.idle, "idle-clients", 0, "extra idle connections opened first to measure memory per connection")
	fs.IntVar(&o.rate, "rate", 1000, "records per second produced (over all partitions)")
	fs.IntVar(&o.size, "size", 512, "bytes per record value")
	fs.IntVar(&o.partitions, "partitions", 0, "partitions to produce to (0: all; embedded: the topic gets max(P, 4))")
	fs.BoolVar(&o.v2, "v2", false, "clients speak protocol v2 (subprotocol dashstream.v2)")
	fs.BoolVar(&o.sse, "sse", false, "clients read Server-Sent Events from /sse instead of WebSocket")
	fs.StringVar(&o.format, "format", "binary", "v2 record frames: binary or json (needs --v2)")
	fs.StringVar(&o.filterIndex, "filter-index", "on", "embedded gateway: on, or off to have thread and type filters scan every record (WEBSOCKET_FILTER_INDEX)")
	fs.StringVar(&o.filterTypes, "filter-types", "", "every client filtered to these message types, comma-separated (e.g. checkpoint: 1 in --full-state-every records)")
	fs.BoolVar(&o.compareV1, "compare-v1", false, "run the same load twice, v1 then v2, and compare gateway CPU per delivery")
	fs.IntVar(&o.joinClients, "join-clients", 0, "halfway through the window, N v2 clients join (from latest, join checkpoint) one of the --threads runs each")
	fs.IntVar(&o.fullEvery, "full-state-every", 100, "with --join-clients or --filter-types: records of a run between its Checkpoints")
	fs.IntVar(&o.threads, "threads", 0, "spread records over N thread ids (0: one thread per partition)")
	fs.BoolVar(&o.filterPerClient, "filter-per-client", false, "each client follows one thread with a filter (needs --threads)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured window")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "load before the measured window")
	fs.DurationVar(&o.grace, "grace", 5*time.Second, "time for the last records to arrive after producing stops")
	fs.BoolVar(&o.asJSON, "json", false, "print the result as JSON")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines on stderr")
	fs.BoolVar(&o.floor, "floor", false, "measure no gateway: the bare writes of the same load (clients, rate, size, --threads, --filter-per-client, --v2; with --compare-v1 v1 and v2), the least any gateway could spend on it here")
	fs.StringVar(&o.floorSink, "floor-sink", "", "internal: the reading side of --floor, in a process of its own (dial --clients connections to this address and drain them until stdin closes)")
	fs.BoolVar(&o.inProcess, "in-process", false, "run the embedded gateway inside this process (default: a child 'dashstream serve' process, so its memory and CPU are measured apart from the load)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process to this file: the load generator (the clients and the producer), plus the embedded gateway with --in-process")
	code := fs.parse(args, e, 0)
	if code < 0 {
		if err := o.check(); err != nil {
			fmt.Fprintf(e.stderr, "dashstream bench: %v\n", err)
			return o, 2
		}
	}
	return o, code
}

// check refuses flag combinations that cannot run.
func (o benchOptions) check() error {
	switch {
	case o.format != "binary" && o.format != "json":
		return fmt.Errorf("--format %q: want binary or json", o.format)
	case o.format == "json" && !o.v2 && !o.compareV1:
		return errors.New("--format json needs --v2")
	case o.filterIndex != "on" && o.filterIndex != "off":
		return fmt.Errorf("--filter-index %q: want on or off", o.filterIndex)
	case o.filterIndex == "off" && o.url != "":
		return errors.New("--filter-index off configures the embedded gateway: not with --url")
	case o.joinClients < 0 || (o.joinClients > 0 && o.threads < 1):
		return errors.New("--join-clients needs --threads R >= 1, the active runs")
	case o.joinClients > 0 && o.compareV1:
		return errors.New("--join-clients is not run with --compare-v1")
	case o.compareV1 && (o.sse || o.format == "json"):
		return errors.New("--compare-v1 compares binary WebSocket clients: not with --sse or --format json")
	case o.floor && (o.url != "" || o.sse || o.format == "json" || o.joinClients > 0 || o.idle > 0):
		return errors.New("--floor measures binary WebSocket-sized writes of a live load: not with --url, --sse, --format json, --join-clients or --idle-clients")
	case o.filterTypes != "" && len(splitList(o.filterTypes)) == 0:
		return fmt.Errorf("--filter-types %q: no message type", o.filterTypes)
	case o.filterTypes != "" && bench.CheckFilterTypes(splitList(o.filterTypes)) != nil:
		return bench.CheckFilterTypes(splitList(o.filterTypes))
	case o.filterTypes != "" && (o.filterPerClient || o.joinClients > 0 || o.floor):
		return errors.New("--filter-types is not combined with --filter-per-client, --join-clients or --floor")
	case o.floor && o.filterPerClient && o.threads < 1:
		return errors.New("--filter-per-client needs --threads")
	}
	return nil
}

func (o benchOptions) config(log *slog.Logger) bench.Config {
	return bench.Config{Clients: o.clients, IdleClients: o.idle, Rate: o.rate, Size: o.size,
		Duration: o.duration, Warmup: o.warmup, Grace: o.grace, Partitions: o.partitions, Log: log,
		V2: o.v2, SSE: o.sse, Threads: o.threads, FilterPerClient: o.filterPerClient,
		JoinClients: o.joinClients, FullStateEvery: o.fullEvery, FilterTypes: splitList(o.filterTypes),
		Format: o.format, FilterIndex: map[bool]string{true: o.filterIndex}[o.url == ""]}
}

// runBench implements `dashstream bench`.
func runBench(ctx context.Context, args []string, e env) int {
	o, code := parseBenchFlags(args, e)
	if code >= 0 {
		return code
	}
	stdout, stderr := e.stdout, e.stderr
	log := benchLogger(stderr, o.quiet)
	if o.cpuProfile != "" {
		stopProfile, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "dashstream bench: %v\n", err)
			return 1
		}
		defer stopProfile()
	}
	if o.floorSink != "" {
		return runFloorSink(ctx, o, e)
	}
	if o.floor {
		return runFloor(ctx, o, stdout, stderr)
	}
	target, stop, err := o.target(ctx, log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "dashstream bench: %v\n", err)
		return 1
	}
	var res any
	if o.compareV1 {
		res, err = runCompare(ctx, o.config(log), target)
	} else {
		res, err = bench.Run(ctx, o.config(log), target)
	}
	stop()
	if !isNilResult(res) {
		if perr := printBench(stdout, res, o.asJSON); perr != nil && err == nil {
			err = perr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "dashstream bench: %v\n", err)
		return 1
	}
	return 0
}

func benchLogger(stderr io.Writer, quiet bool) *slog.Logger {
	if quiet {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// runCompare runs the load with v1 clients, then with v2 clients, against
// the same gateway.
func runCompare(ctx context.Context, cfg bench.Config, t bench.Target) (*bench.Comparison, error) {
	cfg.V2 = false
	v1, err := bench.Run(ctx, cfg, t)
	if err != nil {
		return nil, err
	}
	cfg.V2 = true
	v2, err := bench.Run(ctx, cfg, t)
	if err != nil {
		return nil, err
	}
	return bench.Compare(v1, v2), nil
}

// runFloor implements `dashstream bench --floor`.
func runFloor(ctx context.Context, o benchOptions, stdout, stderr io.Writer) int {
	cfg := bench.FloorConfig{Clients: o.clients, Rate: o.rate, Size: o.size, Threads: o.threads,
		FilterPerClient: o.filterPerClient, V2: o.v2, Partitions: o.partitions, Duration: o.duration, Warmup: o.warmup,
		Sink: startFloorSink}
	var res any
	var err error
	if o.compareV1 {
		res, err = bench.CompareFloor(ctx, cfg)
	} else {
		res, err = bench.Floor(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "dashstream bench: %v\n", err)
		return 1
	}
	if err := printBench(stdout, res, o.asJSON); err != nil {
		fmt.Fprintf(stderr, "dashstream bench: %v\n", err)
		return 1
	}
	return 0
}

func isNilResult(res any) bool {
	switch r := res.(type) {
	case *bench.Result:
		return r == nil
	case *bench.Comparison:
		return r == nil
	}
	return res == nil
}

func printBench(w io.Writer, res any, asJSON bool) error {
	if !asJSON {
		return res.(interface{ WriteText(io.Writer) error }).WriteText(w)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// target is the gateway to benchmark, and how to stop it afterwards.
func (o benchOptions) target(ctx context.Context, log *slog.Logger, stderr io.Writer) (bench.Target, func(), error) {
	if o.url == "" && o.inProcess {
		return startEmbedded(ctx, o, log, stderr)
	}
	if o.url == "" {
		return startChild(ctx, o, log, stderr)
	}
	t := bench.Target{URL: o.url, Brokers: splitList(o.brokers), Topic: o.topic, PID: o.serverPID, Mode: "url"}
	return t, func() {}, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// embeddedEnv is the whole configuration of the embedded gateway: defaults,
// free ports, and per-IP limits that admit every benchmark client. The
// process environment is deliberately not read (a KAFKA_BROKERS there must
// not turn the benchmark against a real cluster).
func embeddedEnv(o benchOptions) map[string]string {
	conns := strconv.Itoa(o.clients + o.idle + o.joinClients + 10)
	return map[string]string{
		"WEBSOCKET_HOST": "127.0.0.1", "WEBSOCKET_PORT": "0",
		"EMBEDDED_KAFKA_ADDR":              "127.0.0.1:0",
		"EMBEDDED_KAFKA_PARTITIONS":        strconv.Itoa(max(o.partitions, 4)),
		"KAFKA_TOPIC":                      o.topic,
		"WEBSOCKET_MAX_CONNECTIONS_PER_IP": conns,
		"WEBSOCKET_CONNECT_RATE_PER_IP":    "100000",
		"WEBSOCKET_CONNECT_BURST_PER_IP":   conns,
		"SHUTDOWN_TIMEOUT_SECS":            "5",
		"LOG_LEVEL":                        "warn",
		"WEBSOCKET_FILTER_INDEX":           o.filterIndex,
	}
}

// startEmbedded runs a gateway in this process until the returned stop.
func startEmbedded(ctx context.Context, o benchOptions, log *slog.Logger, stderr io.Writer) (bench.Target, func(), error) {
	env := embeddedEnv(o)
	cfg, err := config.Load(nil, func(k string) string { return env[k] })
	if err != nil {
		return bench.Target{}, nil, err
	}
	gwLog := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(cfg, gwLog.With("component", "gateway"), app.Options{})
	if err != nil {
		return bench.Target{}, nil, err
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	stop := func() { cancel(); <-done } //nolint:errcheck // its error was reported by awaitApp, or no longer matters
	if err := awaitApp(ctx, a, done); err != nil {
		stop()
		return bench.Target{}, nil, err
	}
	log.Info("embedded gateway ready", "url", "ws://"+a.HTTPAddr()+"/ws", "kafka", a.KafkaBrokers())
	return bench.Target{URL: "ws://" + a.HTTPAddr() + "/ws", Brokers: a.KafkaBrokers(), Topic: cfg.Kafka.Topic,
		PID: os.Getpid(), InProcess: true, Mode: "embedded"}, stop, nil
}

func awaitApp(ctx context.Context, a *app.App, done chan error) error {
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	select {
	case <-a.Ready():
		return nil
	case err := <-done:
		done <- err // stop() waits on it again
		return fmt.Errorf("embedded gateway stopped: %w", err)
	case <-timeout.C:
		return errors.New("embedded gateway not ready within 30s")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startCPUProfile profiles this process until the returned func is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path) //nolint:gosec // G304: the --cpuprofile path the user asked for
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
