package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/dashflow/dashstream-gateway/internal/hub"
	"github.com/dashflow/dashstream-gateway/internal/hub/hubtest"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/pkg/client"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// As in the app's tests: go-redis keeps a pool reaper until Close,
		// kgo's timers may outlive a closed client by a tick, and a closed
		// go-redis pool's dial retry sleeps up to a second.
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"),
	)
}

// testGateway is a real hub over a memory replay tier behind httptest
// (hubtest): what memory evicts is gone (no Kafka). wrap, when set, wraps
// its handler (an authentication check, say).
func testGateway(t *testing.T, wrap func(http.Handler) http.Handler) *hubtest.Server {
	t.Helper()
	gw := hubtest.New(hub.Config{}, replay.MemoryConfig{}, wrap)
	t.Cleanup(gw.Close)
	return gw
}

func dial(t *testing.T, url string, opts client.Options) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestExactAcrossCuts: records are published on two partitions while the
// network is cut again and again; the client reconnects by itself and hands
// over every record exactly once, in order per partition.
func TestExactAcrossCuts(t *testing.T) {
	const perPartition = 600
	gw := testGateway(t, nil)
	px := hubtest.NewProxy(t, gw.Addr())
	gw.PublishN(0, 0, 100) // history before the client starts
	gw.PublishN(1, 0, 100)

	var disconnects atomic.Int64
	c := dial(t, px.URL(), client.Options{From: client.FromEarliest,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		OnDisconnect: func(error, time.Duration) { disconnects.Add(1) }})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // publish the rest while cutting the network
		defer wg.Done()
		for o := int64(100); o < perPartition; o += 50 {
			gw.PublishN(0, o, 50)
			gw.PublishN(1, o, 50)
			if o%100 == 0 {
				px.Cut()
			}
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
		}
	}()
	defer wg.Wait()
	defer close(stop)

	next := map[int32]int64{0: 0, 1: 0}
	for n := 0; n < 2*perPartition; n++ {
		r, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("after %d records: %v", n, err)
		}
		if r.Offset != next[r.Partition] || string(r.Value) != hubtest.Value(r.Partition, r.Offset) || r.Hole {
			t.Fatalf("p%d@%d (%q, hole %v): want offset %d", r.Partition, r.Offset, r.Value, r.Hole, next[r.Partition])
		}
		next[r.Partition]++
	}
	if disconnects.Load() == 0 || c.Stats().Connects < 2 {
		t.Fatalf("the network was never cut under the client: %d disconnects, %+v", disconnects.Load(), c.Stats())
	}
	if got := c.Cursor().Offsets; got[0] != perPartition-1 || got[1] != perPartition-1 {
		t.Fatalf("cursor %v", got)
	}
}

// TestStoreHoldsAppliedRecords: the store never holds a record the
// application has not finished: the record Next returned last counts as
// applied only once Next is called again (or Close).
func TestStoreHoldsAppliedRecords(t *testing.T) {
	gw := testGateway(t, nil)
	gw.PublishN(0, 0, 5)
	store := &client.MemoryStore{}
	c := dial(t, gw.URL, client.Options{From: client.FromEarliest, Store: store, SaveInterval: time.Nanosecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for want := int64(0); want < 5; want++ {
		r, err := c.Next(ctx)
		if err != nil || r.Offset != want {
			t.Fatalf("record %d: %+v %v", want, r, err)
		}
		saved, ok, _ := store.Load(ctx)
		if last, has := saved.Offsets[0]; ok && has && last >= want {
			t.Fatalf("offset %d is saved while the application holds it", last)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	saved, ok, _ := store.Load(ctx)
	if !ok || saved.Offsets[0] != 4 {
		t.Fatalf("after Close the store holds %+v (%v), want offset 4", saved, ok)
	}
	if _, err := c.Next(ctx); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
}

// TestFileStoreResume: a client restarted on the same cursor file continues
// exactly after the last record the previous one applied, also for
// partitions that moved while it was away.
func TestFileStoreResume(t *testing.T) {
	gw := testGateway(t, nil)
	gw.PublishN(0, 0, 10)
	store := client.FileStore{Path: filepath.Join(t.TempDir(), "cursor.json")}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c1, err := client.Dial(ctx, gw.URL, client.Options{From: client.FromEarliest, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	for range 6 {
		if _, err := c1.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	gw.PublishN(0, 10, 5)
	gw.PublishN(2, 0, 3)

	c2 := dial(t, gw.URL, client.Options{From: client.FromLatest, Store: store}) // the file wins over From
	got := map[int32][]int64{}
	for n := 0; n < 12; n++ {
		r, err := c2.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got[r.Partition] = append(got[r.Partition], r.Offset)
	}
	if want := "6 7 8 9 10 11 12 13 14"; join(got[0]) != want {
		t.Fatalf("partition 0 resumed with %v, want %s", got[0], want)
	}
	if want := "0 1 2"; join(got[2]) != want {
		t.Fatalf("new partition 2: %v, want %s", got[2], want)
	}
}

func join(offs []int64) string {
	s := make([]string, len(offs))
	for i, o := range offs {
		s[i] = strconv.FormatInt(o, 10)
	}
	return strings.Join(s, " ")
}

// TestTokenPerConnection: the token is sent as a bearer header, and a
// TokenSource is asked again for every connection.
func TestTokenPerConnection(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	gw := testGateway(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/ws" { // /version: no token needed
				h.ServeHTTP(w, r)
				return
			}
			auth := r.Header.Get("Authorization")
			mu.Lock()
			seen = append(seen, auth)
			mu.Unlock()
			if !strings.HasPrefix(auth, "Bearer tok-") {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	px := hubtest.NewProxy(t, gw.Addr())
	gw.PublishN(0, 0, 1)

	var n atomic.Int64
	source := func(context.Context) (string, error) { return "tok-" + strconv.FormatInt(n.Add(1), 10), nil }
	c := dial(t, px.URL(), client.Options{From: client.FromEarliest, TokenSource: source, MinBackoff: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Next(ctx); err != nil {
		t.Fatal(err)
	}
	px.Cut()
	gw.PublishN(0, 1, 1) // only a new connection can bring it
	if r, err := c.Next(ctx); err != nil || r.Offset != 1 {
		t.Fatalf("after the cut: %+v %v", r, err)
	}
	mu.Lock()
	got := slices.Clone(seen)
	mu.Unlock()
	if len(got) < 2 || got[0] != "Bearer tok-1" || got[len(got)-1] != "Bearer tok-"+strconv.Itoa(len(got)) {
		t.Fatalf("authorization headers %q", got)
	}

	_, err := client.Dial(ctx, gw.URL, client.Options{Token: "wrong"})
	var he *client.HandshakeError
	if !errors.As(err, &he) || he.Status != http.StatusUnauthorized || !he.Permanent() {
		t.Fatalf("a refused token: %v", err)
	}
}

// TestRefusedBeforeConnecting: options and filters the gateway would refuse
// are refused by Dial without a connection.
func TestRefusedBeforeConnecting(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	many := make([]string, 1001)
	for i := range many {
		many[i] = "t" + strconv.Itoa(i)
	}
	cases := map[string]struct {
		opts client.Options
		code string
	}{
		"JSON without v2":    {client.Options{JSON: true}, ""},
		"bad from":           {client.Options{From: "cursor"}, ""},
		"bad join":           {client.Options{Join: "snapshot"}, ""},
		"too many threads":   {client.Options{Filter: client.Filter{Threads: many}}, "FILTER_TOO_MANY_THREADS"},
		"unknown type":       {client.Options{Filter: client.Filter{Types: []string{"events"}}}, "FILTER_INVALID"},
		"unknown event type": {client.Options{Filter: client.Filter{EventTypes: []string{"NODE_BEGIN"}}}, "FILTER_INVALID"},
		"empty thread id":    {client.Options{Filter: client.Filter{Threads: []string{""}}}, "FILTER_INVALID"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := client.Dial(context.Background(), url, tc.opts)
			var se *client.ServerError
			switch {
			case err == nil:
				t.Fatal("accepted")
			case tc.code != "" && (!errors.As(err, &se) || se.Code != tc.code):
				t.Fatalf("err %v, want code %s", err, tc.code)
			}
		})
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests reached the server", hits.Load())
	}
}

// TestCloseEndsBlockedNext: Close from another goroutine ends a Next that
// waits for records.
func TestCloseEndsBlockedNext(t *testing.T) {
	gw := testGateway(t, nil)
	c := dial(t, gw.URL, client.Options{})
	errc := make(chan error, 1)
	go func() {
		_, err := c.Next(context.Background())
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, client.ErrClosed) {
			t.Fatalf("Next: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Next still blocked after Close")
	}
}

// TestJSONNeedsAV2Gateway: a gateway that does not select dashstream.v2 (an
// older one; a stand-in server, since this repository's gateway speaks v2)
// cannot send JSON records: Dial says so instead of reading binary frames
// as if they were JSON.
func TestJSONNeedsAV2Gateway(t *testing.T) {
	offered := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			http.NotFound(w, r)
			return
		}
		offered <- r.Header.Get("Sec-WebSocket-Protocol")
		c, err := websocket.Accept(w, r, nil) // selects no subprotocol: v1
		if err != nil {
			return
		}
		defer c.CloseNow()
		_, _, _ = c.Read(r.Context())
		_, _, _ = c.Read(r.Context())
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	_, err := client.Dial(context.Background(), url, client.Options{V2: true, JSON: true})
	if !errors.Is(err, client.ErrV2Unsupported) {
		t.Fatalf("Dial: %v", err)
	}
	if got := <-offered; got != "dashstream.v2" {
		t.Fatalf("offered %q", got)
	}
	c, err := client.Dial(context.Background(), url, client.Options{V2: true}) // binary records read as v1
	if err != nil {
		t.Fatal(err)
	}
	if c.V2() {
		t.Fatal("V2() on a v1 connection")
	}
	c.Close()
}
