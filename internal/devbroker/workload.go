package devbroker

import (
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// WorkloadConfig configures the synthetic DashFlow workload.
type WorkloadConfig struct {
	// Threads is the number of agent runs in flight at once; zero means 4.
	Threads int
	// Rate is roughly how many records per second RunDemo produces over
	// all threads; zero means 20. Next paces nothing but counts the
	// interval between a run's full-state records in records at this rate.
	Rate float64
	// Seed drives every choice and id; the same seed gives the same records
	// (timestamps aside). Zero is a valid seed.
	Seed int64
	// Tenant is every header's tenant_id; empty means "demo".
	Tenant string
	// CompressAbove is the protobuf size in bytes above which a value is
	// zstd framed (0x01); smaller values are plain (0x00). Zero means 512;
	// negative never compresses.
	CompressAbove int
}

const (
	defaultThreads       = 4
	defaultRate          = 20
	defaultTenant        = "demo"
	defaultCompressAbove = 512
)

func (cfg WorkloadConfig) withDefaults() WorkloadConfig {
	if cfg.Threads <= 0 {
		cfg.Threads = defaultThreads
	}
	if !(cfg.Rate > 0) { // also NaN
		cfg.Rate = defaultRate
	}
	if cfg.Tenant == "" {
		cfg.Tenant = defaultTenant
	}
	if cfg.CompressAbove == 0 {
		cfg.CompressAbove = defaultCompressAbove
	}
	return cfg
}

// Workload generates DashStream record values for several concurrent agent
// runs, interleaved. Each thread id carries one run from GRAPH_START to
// GRAPH_END with sequences 1, 2, 3...; a finished run is replaced by a new
// one with a new thread id. Like a DashFlow run, each run carries its whole
// state in GRAPH_START and then at least every fullStateInterval (a
// checkpoint), so a consumer joining mid-run recovers within seconds. A Workload is not safe for concurrent use.
type Workload struct {
	cfg  WorkloadConfig
	rng  source
	now  func() time.Time // header timestamps; tests fix it
	runs []*run
	n    int64 // records returned so far
	// resyncEvery is fullStateInterval in records at cfg.Rate.
	resyncEvery int64
}

// NewWorkload returns a workload for cfg (zero fields take their defaults).
func NewWorkload(cfg WorkloadConfig) *Workload {
	cfg = cfg.withDefaults()
	seed := uint64(cfg.Seed)
	return &Workload{
		cfg:  cfg,
		rng:  source{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))},
		now:  time.Now,
		runs: make([]*run, cfg.Threads),

		resyncEvery: resyncEvery(cfg.Rate),
	}
}

// Next returns the next record: key is the thread id, value a framed
// DashStreamMessage. An error means a message could not be built or
// encoded, which the built-in graphs never cause.
func (w *Workload) Next() (key string, value []byte, err error) {
	r, err := w.pickRun()
	if err != nil {
		return "", nil, err
	}
	w.n++
	msg, err := r.next(w.rng, w.n, w.resyncEvery)
	if err != nil {
		return "", nil, fmt.Errorf("devbroker: workload: %s: %w", r.thread, err)
	}
	w.stamp(r, msg)
	value, err = w.encode(msg)
	if err != nil {
		return "", nil, fmt.Errorf("devbroker: workload: %w", err)
	}
	return r.thread, value, nil
}

// pickRun chooses a thread at random, starting a new run in its slot when
// the previous one has ended.
func (w *Workload) pickRun() (*run, error) {
	i := w.rng.IntN(len(w.runs))
	if w.runs[i] == nil || w.runs[i].done() {
		r, err := newRun(w.rng)
		if err != nil {
			return nil, fmt.Errorf("devbroker: workload: new run: %w", err)
		}
		w.runs[i] = r
	}
	return w.runs[i], nil
}

// stamp fills the headers of msg: a fresh message id each, the current
// time, and the next sequences of the thread (a batch envelope gets 0, its
// inner events their own).
func (w *Workload) stamp(r *run, msg *pb.DashStreamMessage) {
	ts := w.now().UnixMicro()
	_, isBatch := msg.GetMessage().(*pb.DashStreamMessage_EventBatch)
	for i, h := range headersOf(msg) {
		h.MessageId = w.rng.uuid()
		h.TimestampUs = ts
		h.TenantId = w.cfg.Tenant
		h.ThreadId = r.thread
		h.SchemaVersion = 1
		if !isBatch || i > 0 {
			r.seq++
			h.Sequence = r.seq
		}
	}
}

// encode frames msg: zstd above CompressAbove bytes, with every header's
// compression field saying so, plain otherwise.
func (w *Workload) encode(msg *pb.DashStreamMessage) ([]byte, error) {
	framing := dashstream.FramingPlain
	if w.cfg.CompressAbove >= 0 && proto.Size(msg) > w.cfg.CompressAbove {
		framing = dashstream.FramingZstd
		for _, h := range headersOf(msg) {
			h.Compression = pb.Compression_COMPRESSION_ZSTD
		}
	}
	return dashstream.Encode(msg, framing)
}

// source is the workload's seeded randomness.
type source struct{ *rand.Rand }

func (s source) chance(p float64) bool { return s.Float64() < p }

// between returns a uniform integer in [lo, hi].
func (s source) between(lo, hi int64) int64 { return lo + s.Int64N(hi-lo+1) }

func (s source) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(s.Uint32())
	}
	return b
}

// uuid returns 16 random bytes laid out as a version 4 UUID.
func (s source) uuid() []byte {
	b := s.bytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return b
}

func (s source) hex(n int) string { return fmt.Sprintf("%x", s.bytes(n)) }

func pick[T any](s source, xs []T) T { return xs[s.IntN(len(xs))] }
