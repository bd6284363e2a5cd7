package bench

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"
)

// Target is the gateway under test.
type Target struct {
	// URL is its WebSocket endpoint, ws://host:port/ws. Loopback only.
	URL string
	// Brokers and Topic are its Kafka input, where the benchmark produces.
	Brokers []string
	Topic   string
	// PID is the process whose memory is reported; 0: none. InProcess says
	// it is this process (an embedded gateway), so its RSS includes the load
	// generator.
	PID       int
	InProcess bool
	// Mode names the setup in the report ("embedded", "url").
	Mode string
}

// Config is one benchmark run.
type Config struct {
	// Clients is the number of reading WebSocket clients. Must be >= 1.
	Clients int
	// IdleClients is the number of extra connections opened (then closed)
	// before the load to measure memory per idle connection. 0: not measured.
	IdleClients int
	// Rate is the records per second produced over all partitions (>= 1).
	Rate int
	// Size is the bytes of one record value (>= 64).
	Size int
	// Duration is the measured window (> 0); Warmup precedes it (0: none).
	Duration, Warmup time.Duration
	// Grace is how long the last records may take to arrive after producing
	// stops. 0: 5 s.
	Grace time.Duration
	// Partitions is how many partitions (0..P-1) records are spread over.
	// 0: every partition of the topic.
	Partitions int
	// MaxRecords bounds the records produced. 0: 10 000 000.
	MaxRecords int64
	// V2 makes the clients speak protocol v2 (one binary frame per record,
	// docs/PROTOCOL.md §3.8). False: v1.
	V2 bool
	// Threads spreads the records over this many thread ids, "bench-t<i>",
	// round robin; thread i lives on partition i mod P (so each thread's
	// records keep their order). 0: one thread per partition, "bench-p<p>".
	Threads int
	// FilterPerClient gives client c the filter {"threads":["bench-t<c mod
	// Threads>"]}: each client follows one thread, and is checked for
	// exactly that thread's records. Needs Threads >= 1.
	FilterPerClient bool
	// Format "json" makes v2 clients ask for JSON record frames
	// (docs/PROTOCOL.md §3.8); "" or "binary": binary frames. Needs V2.
	Format string
	// FilterIndex names, for the report only, the gateway's
	// WEBSOCKET_FILTER_INDEX ("on", "off"; "": not known).
	FilterIndex string
	// SSE makes the clients read GET /sse (base64 records) instead of
	// WebSocket; V2 is then ignored.
	SSE bool
	// JoinClients > 0 makes the Threads threads active runs (a GRAPH_START
	// full state first, then a Checkpoint every FullStateEvery records) and,
	// halfway through the measured window, connects that many more v2
	// clients at once with from "latest" and join "checkpoint", client j
	// filtered to run j mod Threads. Their time to the first full state is
	// reported, and the live latency of the other clients before and
	// during that burst. Needs Threads >= 1.
	JoinClients int
	// FullStateEvery is the records of a run between its Checkpoints. 0: 100.
	FullStateEvery int
	// FilterTypes gives every client the filter {"types":[...]} (message
	// type names as docs/PROTOCOL.md §3.8 spells them: "checkpoint",
	// "event", …) and makes the threads runs (as for JoinClients: a
	// GRAPH_START event first, then a Checkpoint every FullStateEvery
	// records), so that a known share of the records is of each type. Each
	// client is checked for exactly the produced records of those types
	// ("foreign": a record of another type). Not with FilterPerClient or
	// JoinClients.
	FilterTypes []string
	// Log receives progress lines. Nil: discarded.
	Log *slog.Logger
}

func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	if cfg.Grace <= 0 {
		cfg.Grace = 5 * time.Second
	}
	if cfg.MaxRecords <= 0 {
		cfg.MaxRecords = 10_000_000
	}
	if cfg.FullStateEvery <= 0 {
		cfg.FullStateEvery = 100
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf("bench: "+format, args...))
		}
	}
	check(cfg.Clients >= 1, "clients %d: want >= 1", cfg.Clients)
	check(cfg.IdleClients >= 0, "idle clients %d: want >= 0", cfg.IdleClients)
	check(cfg.Rate >= 1, "rate %d: want >= 1", cfg.Rate)
	check(cfg.Size >= 64, "size %d: want >= 64", cfg.Size)
	check(cfg.Duration > 0 && cfg.Warmup >= 0, "duration %s, warmup %s: want > 0, >= 0", cfg.Duration, cfg.Warmup)
	check(cfg.Partitions >= 0, "partitions %d: want >= 0", cfg.Partitions)
	check(cfg.Threads >= 0 && cfg.Threads <= 1_000_000, "threads %d: want 0..1000000", cfg.Threads)
	check(!cfg.FilterPerClient || cfg.Threads >= 1, "a filter per client needs threads >= 1")
	check(cfg.JoinClients >= 0 && cfg.JoinClients <= 100_000, "join clients %d: want 0..100000", cfg.JoinClients)
	check(cfg.JoinClients == 0 || (cfg.Threads >= 1 && !cfg.SSE), "join clients need threads >= 1 (the runs) and WebSocket clients")
	check(len(cfg.FilterTypes) == 0 || (!cfg.FilterPerClient && cfg.JoinClients == 0),
		"a types filter is not combined with a filter per client or join clients")
	if len(cfg.FilterTypes) > 0 {
		if _, err := typesMask(cfg.FilterTypes); err != nil {
			errs = append(errs, err)
		}
	}
	check(cfg.Format == "" || cfg.Format == "binary" || cfg.Format == "json", "format %q: want binary or json", cfg.Format)
	check(cfg.Format != "json" || (cfg.V2 && !cfg.SSE), "format json needs v2 WebSocket clients")
	planned := float64(cfg.Rate) * (cfg.Duration + cfg.Warmup).Seconds()
	check(planned <= float64(cfg.MaxRecords), "rate × (warmup + duration) = %.0f records: above the bound of %d", planned, cfg.MaxRecords)
	return cfg, errors.Join(errs...)
}

// checkTarget refuses anything but a loopback gateway and broker.
func checkTarget(t Target) error {
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") {
		return fmt.Errorf("bench: url %q: want ws://host:port/ws", t.URL)
	}
	if !loopback(u.Hostname()) {
		return fmt.Errorf("bench: url %q: only loopback gateways are benchmarked", t.URL)
	}
	if len(t.Brokers) == 0 || t.Topic == "" {
		return errors.New("bench: brokers and topic are required")
	}
	for _, b := range t.Brokers {
		host, _, err := net.SplitHostPort(b)
		if err != nil || !loopback(host) {
			return fmt.Errorf("bench: broker %q: only loopback brokers are used", b)
		}
	}
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
