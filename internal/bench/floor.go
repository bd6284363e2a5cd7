package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"time"

	"github.com/gobwas/ws"

	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// FloorConfig is the shape of a load whose bare write cost Floor measures:
// the same clients, rate, record size, threads and filters as a gateway
// run (Config), without a gateway.
type FloorConfig struct {
	Clients, Rate, Size int
	// Threads > 0 spreads records over that many threads (record i is
	// thread i mod Threads); with FilterPerClient client c follows thread
	// c mod Threads only, else every client gets every record.
	Threads         int
	FilterPerClient bool
	V2              bool // v2 frames (shared head + value) instead of v1's cursor and binary frames
	Partitions      int  // partitions the records' offsets are spread over; 0: 4
	Duration        time.Duration
	Warmup          time.Duration
	// Sink, when not nil, opens the n reading connections to addr in
	// another process (a process can hold only so many sockets: 10,000
	// clients need 20,000 descriptors here) and returns how to stop it.
	// Nil: readers in this process.
	Sink func(ctx context.Context, addr string, n int) (stop func(), err error)
}

// FloorResult is what the bare writes of a load cost on this machine.
type FloorResult struct {
	Clients              int     `json:"clients"`
	V2                   bool    `json:"v2"`
	Threads              int     `json:"threads"`
	FilterPerClient      bool    `json:"filter_per_client"`
	Size                 int     `json:"size"`
	DurationS            float64 `json:"duration_s"`
	Deliveries           int64   `json:"deliveries"`
	DeliveriesPerSec     float64 `json:"deliveries_per_sec"`
	Writes               int64   `json:"writes"`
	WriterCPUCores       float64 `json:"writer_cpu_cores"`
	CPUMicrosPerDelivery float64 `json:"cpu_us_per_delivery"`
}

// floorTick is how often the floor's writer writes what is due: the
// gateway's wake-up delay, so that both gather the same records per write.
const floorTick = 5 * time.Millisecond

// Floor measures the least a gateway could spend on a load here: one
// goroutine, locked to its OS thread, writes pre-encoded record frames
// (encoded once per record, as the gateway does) to Clients loopback TCP
// connections, each client's records of one tick gathered into one writev
// (as the gateway gathers them), with no Kafka, no replay tiers, no
// WebSocket handshake, no write deadlines and no wake-ups; readers in this
// process discard what arrives. The writer's thread CPU (getrusage
// RUSAGE_THREAD, which includes the kernel's loopback delivery done in its
// send calls, as a gateway's is) over Duration, per delivery, is the floor
// that the gateway's own CPU per delivery is compared with.
func Floor(ctx context.Context, cfg FloorConfig) (*FloorResult, error) {
	if cfg.Clients < 1 || cfg.Rate < 1 || cfg.Size < 1 || cfg.Duration <= 0 {
		return nil, errors.New("bench: floor needs clients, rate, size and duration")
	}
	if cfg.FilterPerClient && cfg.Threads < 1 {
		return nil, errors.New("bench: floor: a filter per client needs threads")
	}
	if cfg.Partitions < 1 {
		cfg.Partitions = 4
	}
	ends := 2
	if cfg.Sink != nil {
		ends = 1
	}
	if err := raiseNoFile(uint64(ends*cfg.Clients + 64)); err != nil {
		return nil, err
	}
	conns, closeAll, err := floorConns(ctx, cfg.Clients, cfg.Sink)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	w := newFloorWriter(cfg, conns)
	res := &FloorResult{Clients: cfg.Clients, V2: cfg.V2, Threads: cfg.Threads, FilterPerClient: cfg.FilterPerClient, Size: cfg.Size}
	done := make(chan error, 1)
	go func() { done <- w.run(ctx, cfg.Warmup, cfg.Duration, res) }()
	if err := <-done; err != nil {
		return nil, err
	}
	return res, nil
}

// floorConns opens n loopback connections: the server ends, written by the
// floor's writer, and client ends, each drained by a goroutine of sink's
// process (nil: of this one) until closeAll.
func floorConns(ctx context.Context, n int, sink func(context.Context, string, int) (func(), error)) (server []net.Conn, closeAll func(), err error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	var clients []net.Conn
	stopSink := func() {}
	closeAll = func() {
		for _, c := range append(server, clients...) {
			c.Close()
		}
		stopSink()
	}
	if sink != nil {
		if stopSink, err = sink(ctx, ln.Addr().String(), n); err != nil {
			return nil, nil, err
		}
		stop := context.AfterFunc(ctx, func() { ln.Close() })
		defer stop()
		// A sink that failed never dials: give up instead of waiting.
		_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(time.Minute))
	}
	d := net.Dialer{}
	for range n {
		if sink == nil {
			c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("bench: floor: dial: %w", err)
			}
			clients = append(clients, c)
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
		s, err := ln.Accept()
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("bench: floor: accept: %w", err)
		}
		server = append(server, s)
	}
	return server, closeAll, nil
}

// FloorSink dials n connections to addr and discards what arrives on them
// until ctx ends: the reading side of Floor in a process of its own.
func FloorSink(ctx context.Context, addr string, n int) error {
	if err := raiseNoFile(uint64(n + 64)); err != nil {
		return err
	}
	d := net.Dialer{}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("bench: floor sink: dial: %w", err)
		}
		conns = append(conns, c)
		go func() { _, _ = io.Copy(io.Discard, c) }()
	}
	<-ctx.Done()
	return nil
}

// floorWriter is the floor's one writer.
type floorWriter struct {
	cfg     FloorConfig
	conns   []net.Conn
	value   []byte
	offsets []int64      // next offset per partition
	subs    [][]net.Conn // per thread (filtered): its clients
	// due gathers one tick's frames per thread (filtered) or for everyone
	// (due[0]).
	due  [][][]byte
	bufs net.Buffers
}

func newFloorWriter(cfg FloorConfig, conns []net.Conn) *floorWriter {
	w := &floorWriter{cfg: cfg, conns: conns, value: make([]byte, cfg.Size), offsets: make([]int64, cfg.Partitions)}
	groups := 1
	if cfg.FilterPerClient {
		groups = cfg.Threads
		w.subs = make([][]net.Conn, groups)
		for i, c := range conns {
			w.subs[i%groups] = append(w.subs[i%groups], c)
		}
	}
	w.due = make([][][]byte, groups)
	return w
}

// run writes at the configured rate for warmup, then measures for d.
func (w *floorWriter) run(ctx context.Context, warmup, d time.Duration, res *FloorResult) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	var seq int64
	var cpu0 time.Duration
	var measured time.Time
	var deliveries0, writes0, deliveries, writes int64
	t := time.NewTicker(floorTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		now := time.Now()
		if measured.IsZero() && now.Sub(start) >= warmup {
			measured, deliveries0, writes0 = now, deliveries, writes
			c, err := threadCPU()
			if err != nil {
				return err
			}
			cpu0 = c
		}
		if !measured.IsZero() && now.Sub(measured) >= d {
			c, err := threadCPU()
			if err != nil {
				return err
			}
			el := now.Sub(measured).Seconds()
			res.DurationS = el
			res.Deliveries, res.Writes = deliveries-deliveries0, writes-writes0
			res.DeliveriesPerSec = float64(res.Deliveries) / el
			res.WriterCPUCores = (c - cpu0).Seconds() / el
			if res.Deliveries > 0 {
				res.CPUMicrosPerDelivery = float64((c - cpu0).Microseconds()) / float64(res.Deliveries)
			}
			return nil
		}
		target := int64(now.Sub(start).Seconds() * float64(w.cfg.Rate))
		for ; seq < target; seq++ {
			w.add(seq)
		}
		n, k, err := w.flush()
		if err != nil {
			return err
		}
		deliveries += n
		writes += k
	}
}

// add encodes record seq once and gathers its frames for its readers.
func (w *floorWriter) add(seq int64) {
	p := int32(seq % int64(w.cfg.Partitions))
	o := w.offsets[p]
	w.offsets[p]++
	var frames [][]byte
	if w.cfg.V2 {
		head := wsproto.AppendFrameHeader(make([]byte, 0, wsproto.MaxFrameHeader+wsproto.RecordV2HeaderSize), ws.OpBinary, wsproto.RecordV2HeaderSize+len(w.value))
		frames = [][]byte{wsproto.AppendRecordV2(head, p, o, nil), w.value}
	} else {
		f, _ := wsproto.RecordFrames(p, o, w.value)
		frames = [][]byte{f}
	}
	g := 0
	if w.cfg.FilterPerClient {
		g = int(seq % int64(w.cfg.Threads))
	}
	w.due[g] = append(w.due[g], frames...)
}

// flush writes each reader its frames of this tick in one writev and
// reports the records delivered and the writes made.
func (w *floorWriter) flush() (deliveries, writes int64, err error) {
	per := int64(1)
	if w.cfg.V2 {
		per = 2
	}
	for g, frames := range w.due {
		if len(frames) == 0 {
			continue
		}
		readers := w.conns
		if w.subs != nil {
			readers = w.subs[g]
		}
		for _, c := range readers {
			w.bufs = append(w.bufs[:0], frames...)
			if _, err := w.bufs.WriteTo(c); err != nil {
				return deliveries, writes, fmt.Errorf("bench: floor: write: %w", err)
			}
			writes++
			deliveries += int64(len(frames)) / per
		}
		clear(frames)
		w.due[g] = frames[:0]
	}
	return deliveries, writes, nil
}

// WriteText prints the floor.
func (r *FloorResult) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "floor (bare writes, v2 %v, %d clients, %d threads, filter per client %v): %.0f deliveries/s in %d writes, writer %.3f cores, %.3f µs per delivery\n",
		r.V2, r.Clients, r.Threads, r.FilterPerClient, r.DeliveriesPerSec, r.Writes, r.WriterCPUCores, r.CPUMicrosPerDelivery)
	return err
}

// FloorComparison is the floor of one load with v1 frames, then v2 frames.
type FloorComparison struct {
	V1 *FloorResult `json:"v1"`
	V2 *FloorResult `json:"v2"`
	// CPURatio is v2's floor CPU per delivery over v1's (0 when v1's is 0).
	CPURatio float64 `json:"cpu_per_delivery_ratio_v2_v1"`
}

// CompareFloor measures the floor of cfg's load with v1 frames, then with
// v2 frames.
func CompareFloor(ctx context.Context, cfg FloorConfig) (*FloorComparison, error) {
	cfg.V2 = false
	v1, err := Floor(ctx, cfg)
	if err != nil {
		return nil, err
	}
	cfg.V2 = true
	v2, err := Floor(ctx, cfg)
	if err != nil {
		return nil, err
	}
	c := &FloorComparison{V1: v1, V2: v2}
	if v1.CPUMicrosPerDelivery > 0 {
		c.CPURatio = v2.CPUMicrosPerDelivery / v1.CPUMicrosPerDelivery
	}
	return c, nil
}

// WriteText prints both floors and their ratio.
func (c *FloorComparison) WriteText(w io.Writer) error {
	for _, r := range []*FloorResult{c.V1, c.V2} {
		if err := r.WriteText(w); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "floor v1 vs v2: %.3f µs vs %.3f µs per delivery (v2/v1 %.2f)\n",
		c.V1.CPUMicrosPerDelivery, c.V2.CPUMicrosPerDelivery, c.CPURatio)
	return err
}
