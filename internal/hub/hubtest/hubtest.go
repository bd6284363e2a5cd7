// Package hubtest runs a real hub over a memory replay tier behind
// httptest, without Kafka (the Kafka tier is replaytest.WindowKafka: what
// memory evicted is gone), for the tests of packages that talk to the hub
// (clients, tools). Records are published as the consumer would: Prev
// chains per partition and high watermarks that follow what was published.
//
// A Server is safe for concurrent use.
package hubtest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/hub"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/replay/replaytest"
)

// Topo is a topology whose high watermarks follow what was published (no
// broker: the latest watermark is the published one).
type Topo struct {
	mu  sync.Mutex
	hwm map[int32]int64
}

// Partitions implements hub.Topology (the hub does not need them here).
func (t *Topo) Partitions() []int32 { return nil }

// HighWatermark implements hub.Topology.
func (t *Topo) HighWatermark(p int32) (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o, ok := t.hwm[p]
	return o, ok
}

// LatestHighWatermark implements hub.Topology.
func (t *Topo) LatestHighWatermark(_ context.Context, p int32) (int64, error) {
	if o, ok := t.HighWatermark(p); ok {
		return o, nil
	}
	return 0, errors.New("hubtest: nothing published to the partition")
}

func (t *Topo) set(p int32, hwm int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.hwm[p] = hwm
}

// Server is a hub on an httptest server.
type Server struct {
	Hub    *hub.Hub
	Memory *replay.Memory
	Topo   *Topo
	// URL is the WebSocket URL of /ws; Base the server's http://host:port.
	URL, Base string

	srv  *httptest.Server
	mu   sync.Mutex // serializes Publish (Prev chains)
	prev map[int32]int64
}

// Start runs a hub with cfg (ResumeWait defaults to 200 ms) over a memory
// tier bounded by mem, and shuts it down at cleanup.
func Start(t testing.TB, cfg hub.Config, mem replay.MemoryConfig) *Server {
	t.Helper()
	s := New(cfg, mem, nil)
	t.Cleanup(func() {
		if err := s.shutdown(); err != nil {
			t.Errorf("hub shutdown: %v", err)
		}
	})
	return s
}

// New is Start for callers without a testing.TB (Example functions): the
// caller closes the server. wrap, when not nil, wraps the /ws handler (an
// authentication check, say).
func New(cfg hub.Config, mem replay.MemoryConfig, wrap func(http.Handler) http.Handler) *Server {
	if cfg.ResumeWait == 0 {
		cfg.ResumeWait = 200 * time.Millisecond
	}
	m := replay.NewMemory(mem)
	topo := &Topo{hwm: map[int32]int64{}}
	tiers := replay.NewTiers(m, nil)
	h := hub.New(cfg, tiers, topo, metrics.New(nil), slog.New(slog.DiscardHandler))
	tiers.SetKafka(replaytest.WindowKafka{Memory: m, Heads: h.Heads}) // no broker: "Kafka" retains what memory does

	var handler http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeWS(w, r, auth.Identity{}, nil) // every client admitted, unrestricted
	})
	if wrap != nil {
		handler = wrap(handler)
	}
	srv := httptest.NewServer(handler)
	return &Server{Hub: h, Memory: m, Topo: topo, URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws",
		Base: srv.URL, srv: srv, prev: map[int32]int64{}}
}

// Close shuts the hub down (5 s bound) and stops the server; a shutdown
// error is dropped (Start reports it to its test).
func (s *Server) Close() { _ = s.shutdown() }

func (s *Server) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.Hub.Shutdown(ctx)
	s.srv.Close()
	return err
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return strings.TrimPrefix(s.Base, "http://") }

// Value is the payload PublishN publishes at (p, o): "v-<p>-<o>".
func Value(p int32, o int64) string {
	return "v-" + strconv.Itoa(int(p)) + "-" + strconv.FormatInt(o, 10)
}

// PublishN publishes n records of partition p, offsets from..from+n-1,
// each carrying Value(p, offset).
func (s *Server) PublishN(p int32, from int64, n int) {
	vals := make([][]byte, n)
	for i := range vals {
		vals[i] = []byte(Value(p, from+int64(i)))
	}
	s.Publish(p, from, vals, nil)
}

// Publish hands values to the hub as partition p, offsets from, from+1, …;
// threads, when not nil, gives each record's (thread, sequence) pairs.
func (s *Server) Publish(p int32, from int64, values [][]byte, threads func([]byte) []replay.ThreadSeq) {
	recs := make([]*replay.Record, len(values))
	for i, v := range values {
		recs[i] = &replay.Record{Value: v}
		if threads != nil {
			recs[i].Threads = threads(v)
		}
	}
	s.PublishRecords(p, from, recs)
}

// PublishRecords hands recs to the hub as partition p, offsets from,
// from+1, …, setting each record's Partition, Offset and Prev (the rest,
// such as the facts the consumer computes, is the caller's).
func (s *Server) PublishRecords(p int32, from int64, recs []*replay.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range recs {
		o := from + int64(i)
		prev, ok := s.prev[p]
		if !ok {
			prev = o - 1
		}
		r.Partition, r.Offset, r.Prev = p, o, prev
		s.prev[p] = o
	}
	s.Topo.set(p, from+int64(len(recs)))
	s.Hub.Publish(recs)
}
