package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// Run executes one benchmark against t and reports what it measured. It
// returns an error only when the benchmark could not run (no Kafka, no
// gateway, a client that could not connect); losses and duplicates are
// results, not errors.
func Run(ctx context.Context, cfg Config, t Target) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err == nil {
		err = checkTarget(t)
	}
	if err != nil {
		return nil, err
	}
	if err := raiseNoFile(uint64(2*(cfg.Clients+cfg.IdleClients) + 512)); err != nil {
		cfg.Log.Warn("open-file limit", "err", err)
	}
	win := &window{}
	pr, err := newProducer(ctx, t, cfg, win)
	if err != nil {
		return nil, err
	}
	defer pr.close()
	res := newResult(cfg, t, len(pr.parts))
	if err := idlePhase(ctx, cfg, t, res); err != nil {
		return nil, err
	}
	return res, loadPhase(ctx, cfg, t, pr, win, res)
}

func idlePhase(ctx context.Context, cfg Config, t Target, res *Result) error {
	if cfg.IdleClients == 0 || t.PID == 0 {
		return nil
	}
	cfg.Log.Info("measuring idle connections", "n", cfg.IdleClients)
	per, err := measureIdle(ctx, t, cfg.IdleClients, cfg.Clients)
	if err != nil {
		return err
	}
	res.RSSPerIdleConnBytes = &per
	return nil
}

// loadPhase connects the clients, produces, waits for delivery and fills res.
func loadPhase(ctx context.Context, cfg Config, t Target, pr *producer, win *window, res *Result) error {
	cctx, cancel := context.WithCancel(ctx)
	cfg.Log.Info("connecting clients", "n", cfg.Clients)
	clients, err := startClients(cctx, t.URL, cfg, pr, win)
	defer stopClients(cancel, clients)
	if err != nil {
		return err
	}
	start := time.Now()
	win.from.Store(start.Add(cfg.Warmup).UnixMicro())
	win.to.Store(start.Add(cfg.Warmup + cfg.Duration).UnixMicro())
	var joined <-chan *JoinResult
	if cfg.JoinClients > 0 {
		win.startBurst(start.Add(cfg.Warmup + cfg.Duration/2))
		ch := make(chan *JoinResult, 1)
		go func() { ch <- joinBurst(cctx, t.URL, cfg, win) }()
		joined = ch
	}
	gauges := windowGauges(ctx, t, start.Add(cfg.Warmup), start.Add(cfg.Warmup+cfg.Duration))
	cfg.Log.Info("producing", "rate", cfg.Rate, "size", cfg.Size, "warmup", cfg.Warmup, "duration", cfg.Duration)
	pr.run(ctx, start, cfg.Warmup+cfg.Duration)
	if err := pr.flush(ctx); err != nil {
		return err
	}
	res.setRSS(t)
	if joined != nil {
		res.Join = <-joined
	}
	awaitDelivered(ctx, clients, cfg.Grace)
	stopClients(cancel, clients)
	res.collect(clients, pr)
	if res.Join != nil {
		res.Join.setLivePhases(clients)
	}
	res.setGauges(<-gauges, t.InProcess)
	return ctx.Err()
}

// Result is what one run measured. Counts are summed over clients.
type Result struct {
	Mode            string  `json:"mode"`
	Clients         int     `json:"clients"`
	V2              bool    `json:"v2"`
	SSE             bool    `json:"sse"`
	Threads         int     `json:"threads"`
	FilterPerClient bool    `json:"filter_per_client"`
	Format          string  `json:"format,omitempty"`
	FilterIndex     string  `json:"filter_index,omitempty"`
	Partitions      int     `json:"partitions"`
	RateTarget      int     `json:"rate_target"`
	RateProduced    float64 `json:"rate_produced"`
	Size            int     `json:"size"`
	DurationS       float64 `json:"duration_s"`
	WarmupS         float64 `json:"warmup_s"`
	Produced        int64   `json:"produced"`
	DeliveredTotal  int64   `json:"delivered_total"`
	DeliveredPerSec float64 `json:"delivered_per_sec"`
	LatencyMs       Latency `json:"latency_ms"`
	// Lost counts, per client, records produced during the run (warmup
	// included) that it never received by the end of the grace period.
	Lost       int64 `json:"lost"`
	Duplicated int64 `json:"duplicated"`
	// Foreign counts records filtered clients received although their
	// filter excludes them.
	Foreign       int64 `json:"foreign"`
	OutOfOrder    int64 `json:"out_of_order"`
	GapFrames     int64 `json:"gap_frames"`
	StaleFrames   int64 `json:"cursor_stale_frames"`
	ProduceErrors int64 `json:"produce_errors"`
	// ClientErrors counts connections that ended before the run did.
	ClientErrors int    `json:"client_errors"`
	FirstError   string `json:"first_error,omitempty"`
	// ProcessRSSBytes is this process's RSS at the end of the load (embedded
	// gateway plus load generator); ServerRSSBytes that of --server-pid.
	ProcessRSSBytes     *int64 `json:"process_rss_bytes,omitempty"`
	ServerRSSBytes      *int64 `json:"server_rss_bytes,omitempty"`
	IdleClients         int    `json:"idle_clients"`
	RSSPerIdleConnBytes *int64 `json:"rss_per_idle_conn_bytes,omitempty"`
	// GatewayCPUCores is the gateway process's CPU over the window (cores);
	// CPUMicrosPerDelivery that CPU per record delivered in the window to
	// one client. CPUIncludesLoad: the gateway runs in this process, so the
	// load generator's CPU is included.
	GatewayCPUCores      *float64 `json:"gateway_cpu_cores,omitempty"`
	CPUMicrosPerDelivery *float64 `json:"cpu_us_per_delivery,omitempty"`
	CPUIncludesLoad      bool     `json:"cpu_includes_load,omitempty"`
	// JSONEncodesPerSec is the rise of the gateway's
	// websocket_json_encodes_total over the window, per second.
	JSONEncodesPerSec *float64 `json:"json_encodes_per_sec,omitempty"`
	// JSONEncodesError is why the encodes could not be read (a failed
	// scrape of the gateway's /metrics).
	JSONEncodesError string `json:"json_encodes_error,omitempty"`
	// LoadCPUCores is this process's CPU over the window (cores) when the
	// gateway runs apart: the load generator's.
	LoadCPUCores *float64 `json:"load_cpu_cores,omitempty"`
	// JSONScanned counts the v2 JSON record frames the clients read with
	// the scanner, JSONFullDecodes those left to encoding/json.
	JSONScanned     int64 `json:"json_scanned,omitempty"`
	JSONFullDecodes int64 `json:"json_full_decodes,omitempty"`
	// FilterTypes are the message types every client is filtered to, and
	// FullStateEvery the records of a run between its Checkpoints (with
	// FilterTypes or a join burst).
	FilterTypes    []string `json:"filter_types,omitempty"`
	FullStateEvery int      `json:"full_state_every,omitempty"`
	// Join is the join burst's measurements (JoinClients > 0).
	Join      *JoinResult `json:"join,omitempty"`
	GoVersion string      `json:"go_version"`
	CPUs      int         `json:"cpus"`
}

// Latency is the producer-to-client latency distribution in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

func newResult(cfg Config, t Target, parts int) *Result {
	r := &Result{Mode: t.Mode, Clients: cfg.Clients, V2: cfg.V2, SSE: cfg.SSE, Threads: cfg.Threads, FilterPerClient: cfg.FilterPerClient, FilterTypes: cfg.FilterTypes, Format: cfg.Format, FilterIndex: cfg.FilterIndex, Partitions: parts, RateTarget: cfg.Rate, Size: cfg.Size,
		DurationS: cfg.Duration.Seconds(), WarmupS: cfg.Warmup.Seconds(), IdleClients: cfg.IdleClients,
		GoVersion: runtime.Version(), CPUs: runtime.NumCPU()}
	if len(cfg.FilterTypes) > 0 || cfg.JoinClients > 0 {
		r.FullStateEvery = cfg.FullStateEvery
	}
	return r
}

func (r *Result) setRSS(t Target) {
	if t.PID == 0 {
		return
	}
	rss := rssBytes(t.PID)
	if t.InProcess {
		r.ProcessRSSBytes = &rss
	} else {
		r.ServerRSSBytes = &rss
	}
}

// collect sums the clients' counts and merges their histograms.
func (r *Result) collect(clients []*client, pr *producer) {
	var h Histogram
	before, last := pr.cursor(), pr.lastOffsets()
	for _, c := range clients {
		h.Merge(&c.hist)
		r.DeliveredTotal += c.delivered
		r.Lost += c.lost(before, last)
		r.Duplicated += c.cursor.Duplicates
		r.Foreign += c.foreign
		r.OutOfOrder += c.cursor.OutOfOrder
		r.GapFrames += c.gaps
		r.StaleFrames += c.stale
		r.JSONScanned += c.scanned
		r.JSONFullDecodes += c.fullDecodes
		if c.err != nil {
			r.ClientErrors++
			r.noteError(c.err)
		}
	}
	r.LatencyMs = Latency{P50: ms(h.Quantile(0.5)), P99: ms(h.Quantile(0.99)), P999: ms(h.Quantile(0.999)), Max: ms(float64(h.Max()))}
	r.DeliveredPerSec = float64(r.DeliveredTotal) / r.DurationS
	r.Produced = pr.acked.Load()
	r.RateProduced = float64(pr.ackedInWindow.Load()) / r.DurationS
	r.ProduceErrors = pr.errs.Load()
	if e := pr.firstErr.Load(); e != nil {
		r.noteError(fmt.Errorf("produce: %w", *e))
	}
}

func (r *Result) noteError(err error) {
	if r.FirstError == "" {
		r.FirstError = err.Error()
	}
}

// ms converts µs to ms with µs resolution; NaN (no samples) becomes 0.
func ms(us float64) float64 {
	if us != us {
		return 0
	}
	return float64(int64(us)) / 1000
}
