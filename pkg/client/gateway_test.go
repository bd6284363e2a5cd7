package client_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/hub"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/replay/replaytest"
)

// gateway is a real hub over a memory replay tier behind httptest, as
// internal/hub/hubtest runs it, but usable from Example functions (which
// have no *testing.T). What memory evicts is gone (no Kafka).
type gateway struct {
	hub  *hub.Hub
	srv  *httptest.Server
	topo *topo
	URL  string

	mu   sync.Mutex
	prev map[int32]int64
}

type topo struct {
	mu  sync.Mutex
	hwm map[int32]int64
}

func (t *topo) Partitions() []int32 { return nil }

func (t *topo) HighWatermark(p int32) (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o, ok := t.hwm[p]
	return o, ok
}

// LatestHighWatermark is the published watermark: no broker knows a newer.
func (t *topo) LatestHighWatermark(_ context.Context, p int32) (int64, error) {
	if o, ok := t.HighWatermark(p); ok {
		return o, nil
	}
	return 0, errors.New("nothing published to the partition")
}

// startGateway starts a gateway; wrap, when set, wraps its handler (an
// authentication check, say).
func startGateway(wrap func(http.Handler) http.Handler) *gateway {
	m := replay.NewMemory(replay.MemoryConfig{})
	tp := &topo{hwm: map[int32]int64{}}
	tiers := replay.NewTiers(m, nil)
	h := hub.New(hub.Config{ResumeWait: 200 * time.Millisecond}, tiers, tp, metrics.New(nil), slog.New(slog.DiscardHandler))
	tiers.SetKafka(replaytest.WindowKafka{Memory: m, Heads: h.Heads})
	var handler http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeWS(w, r, auth.Identity{}, nil) // every client admitted, unrestricted
	})
	if wrap != nil {
		handler = wrap(handler)
	}
	srv := httptest.NewServer(handler)
	return &gateway{hub: h, srv: srv, topo: tp, prev: map[int32]int64{},
		URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"}
}

func (g *gateway) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = g.hub.Shutdown(ctx) // the test is over either way
	g.srv.Close()
}

// addr is the gateway's host:port.
func (g *gateway) addr() string { return strings.TrimPrefix(g.srv.URL, "http://") }

// publish hands records to the hub as the Kafka consumer would: partition
// p, offsets from, from+1, …, chained by Prev.
func (g *gateway) publish(p int32, from int64, values ...[]byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	recs := make([]*replay.Record, len(values))
	for i, v := range values {
		o := from + int64(i)
		prev, ok := g.prev[p]
		if !ok {
			prev = o - 1
		}
		recs[i] = &replay.Record{Partition: p, Offset: o, Prev: prev, Value: v}
		g.prev[p] = o
	}
	g.topo.mu.Lock()
	g.topo.hwm[p] = from + int64(len(values))
	g.topo.mu.Unlock()
	g.hub.Publish(recs)
}

// publishN publishes n values "v-<p>-<o>".
func (g *gateway) publishN(p int32, from int64, n int) {
	vals := make([][]byte, n)
	for i := range vals {
		vals[i] = []byte(value(p, from+int64(i)))
	}
	g.publish(p, from, vals...)
}

func value(p int32, o int64) string {
	return "v-" + strconv.Itoa(int(p)) + "-" + strconv.FormatInt(o, 10)
}

// proxy relays TCP to a target and can cut every relayed connection.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	px := &proxy{ln: ln, target: target}
	px.wg.Add(1)
	go px.accept()
	return px
}

func (px *proxy) URL() string { return "ws://" + px.ln.Addr().String() + "/ws" }

func (px *proxy) accept() {
	defer px.wg.Done()
	for {
		c, err := px.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", px.target)
		if err != nil {
			c.Close()
			continue
		}
		px.mu.Lock()
		px.conns = append(px.conns, c, up)
		px.mu.Unlock()
		px.wg.Add(2)
		go px.pipe(c, up)
		go px.pipe(up, c)
	}
}

func (px *proxy) pipe(dst, src net.Conn) {
	defer px.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

// cut closes every relayed connection.
func (px *proxy) cut() {
	px.mu.Lock()
	defer px.mu.Unlock()
	for _, c := range px.conns {
		c.Close()
	}
	px.conns = nil
}

func (px *proxy) Close() {
	px.ln.Close()
	px.cut()
	px.wg.Wait()
}
