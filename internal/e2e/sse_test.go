package e2e

// GET /sse end to end: a whole gateway on real Kafka (and Redis where the
// tiers matter), read by the Go SSE reader the way a browser's EventSource
// reads it (Last-Event-ID on every reconnect).

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dashflow/dashstream-gateway/internal/sseclient"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// sseRecord is the data of a record event in base64 format.
type sseRecord struct {
	Type      string          `json:"type"`
	Partition int32           `json:"partition"`
	Offset    string          `json:"offset"`
	Value     string          `json:"value"`
	Message   json.RawMessage `json:"message"`
}

func sseDial(t testing.TB, g *gateway, query, lastID string, header http.Header) *sseclient.Stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := sseclient.Dial(ctx, sseHTTP, g.base+"/sse"+query, lastID, header)
	if err != nil {
		t.Fatalf("GET /sse%s: %v", query, err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// sseHTTP never reuses a connection: closing a stream is a forced
// disconnect.
var sseHTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// sseStatus returns the status of GET /sse with header.
func sseStatus(t testing.TB, g *gateway, query string, header http.Header) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := sseclient.Dial(ctx, sseHTTP, g.base+"/sse"+query, "", header)
	var es *sseclient.ErrStatus
	switch {
	case err == nil:
		st.Close()
		return http.StatusOK
	case errors.As(err, &es):
		return es.Code
	}
	t.Fatalf("GET /sse%s: %v", query, err)
	return 0
}

// sseNext reads the next event within timeout.
func sseNext(t testing.TB, st *sseclient.Stream, timeout time.Duration) sseclient.Event {
	t.Helper()
	type res struct {
		ev  sseclient.Event
		err error
	}
	ch := make(chan res, 1)
	go func() {
		ev, err := st.Next()
		ev.Data = slices.Clone(ev.Data)
		ch <- res{ev, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("sse stream: %v", r.err)
		}
		return r.ev
	case <-time.After(timeout):
		st.Close()
		t.Fatalf("no sse event within %s", timeout)
	}
	return sseclient.Event{}
}

func sseDecode(t testing.TB, ev sseclient.Event) (sseRecord, int64) {
	t.Helper()
	var r sseRecord
	if err := json.Unmarshal(ev.Data, &r); err != nil {
		t.Fatalf("record data %q: %v", ev.Data, err)
	}
	o, err := strconv.ParseInt(r.Offset, 10, 64)
	if err != nil {
		t.Fatalf("record offset %q", r.Offset)
	}
	return r, o
}

// TestSSEExactAcrossDisconnects reads a topic that is being produced to
// through many short SSE connections, each cut after a random number of
// records and resumed from its Last-Event-ID like a browser does: every
// offset arrives exactly once, in order per partition, with its value. The
// memory tier holds 16 records per partition, so resumes read Redis and
// Kafka too.
func TestSSEExactAcrossDisconnects(t *testing.T) {
	k, topic := kafkaEnv(t, 3)
	r := testenv.Redis(t)
	env := gatewayEnv(k, topic)
	env["REDIS_URL"] = r.URL
	env["REPLAY_BUFFER_MEMORY_SIZE"] = "16"
	g := startGateway(t, env)

	const perPart, chunk = 120, 10
	want := map[int32][]int64{}
	values := map[int64][]byte{} // by partition*1e9+offset
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for seq := 0; seq < perPart; seq += chunk {
			for p := range int32(3) {
				offs, vals := produceEvents(t, k, topic, p, uint64(seq), chunk)
				for i, o := range offs {
					want[p] = append(want[p], o)
					values[int64(p)*1e9+o] = vals[i]
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	got := map[int32][]int64{}
	gotValues := map[int64][]byte{}
	total, lastID, conns := 0, "", 0
	deadline := time.Now().Add(90 * time.Second)
	for total < 3*perPart {
		if time.Now().After(deadline) {
			t.Fatalf("after %d connections got %d of %d records", conns, total, 3*perPart)
		}
		conns++
		st := sseDial(t, g, "?from=earliest", lastID, nil)
		if st.Header().Get("Content-Type") != "text/event-stream" {
			t.Fatalf("content type %q", st.Header().Get("Content-Type"))
		}
		budget := 1 + rand.IntN(40)
		for budget > 0 && total < 3*perPart {
			ev := sseNext(t, st, 30*time.Second)
			if ev.Type != "record" {
				continue
			}
			rec, o := sseDecode(t, ev)
			got[rec.Partition] = append(got[rec.Partition], o)
			v, err := base64.StdEncoding.DecodeString(rec.Value)
			if err != nil {
				t.Fatalf("value of %d/%d: %v", rec.Partition, o, err)
			}
			gotValues[int64(rec.Partition)*1e9+o] = v
			total++
			budget--
		}
		lastID = st.LastEventID
		st.Close() // a forced disconnect: the next connection resumes from lastID
	}
	<-produced
	for p := range int32(3) {
		if !slices.Equal(got[p], want[p]) {
			t.Fatalf("partition %d: got %d offsets %v..., want %d (every offset once, in order)", p, len(got[p]), got[p][:min(10, len(got[p]))], len(want[p]))
		}
	}
	for key, v := range values {
		if !slices.Equal(gotValues[key], v) {
			t.Fatalf("record %d: value differs", key)
		}
	}
	t.Logf("%d records over %d connections", total, conns)
}

// TestSSEControlEvents: a resume from "latest" announces its cursor (an
// id-only event) and replay_complete; a cursor of another topic gets
// cursor_stale; a malformed cursor or parameter is a 400 before any event.
func TestSSEControlEvents(t *testing.T) {
	k, topic := kafkaEnv(t, 1)
	g := startGateway(t, gatewayEnv(k, topic))
	offs, _ := produceEvents(t, k, topic, 0, 0, 5)
	waitHeads(t, g, map[int32]int64{0: offs[4]}, arrive)

	st := sseDial(t, g, "", "", nil)
	ev := sseNext(t, st, 10*time.Second)
	if ev.Type != "replay_complete" {
		t.Fatalf("first event %q, want replay_complete", ev.Type)
	}
	if st.LastEventID == "" {
		t.Fatal("no id before replay_complete: a reconnect could not resume from where the stream began")
	}
	var rc struct {
		Mode string            `json:"mode"`
		Last map[string]string `json:"lastOffsetsByPartition"`
	}
	if err := json.Unmarshal(ev.Data, &rc); err != nil || rc.Mode != "latest" || rc.Last["0"] != strconv.FormatInt(offs[4], 10) {
		t.Fatalf("replay_complete %s (%v)", ev.Data, err)
	}
	// Live: the next record's id resumes right after it.
	more, _ := produceEvents(t, k, topic, 0, 5, 2)
	ev = sseNext(t, st, 10*time.Second)
	if _, o := sseDecode(t, ev); ev.Type != "record" || o != more[0] {
		t.Fatalf("live event %q %s, want record %d", ev.Type, ev.Data, more[0])
	}
	resumed := sseDial(t, g, "?from=latest", ev.ID, nil)
	ev2 := sseNext(t, resumed, 10*time.Second)
	if _, o := sseDecode(t, ev2); ev2.Type != "record" || o != more[1] {
		t.Fatalf("after resuming from %q: %q %s, want record %d", ev.ID, ev2.Type, ev2.Data, more[1])
	}

	// A cursor from another topic (its namespace differs): stale.
	other := sseDial(t, g, "", "c1~0123456789abcdef~0:2", nil)
	if ev := sseNext(t, other, 10*time.Second); ev.Type != "cursor_stale" {
		t.Fatalf("foreign cursor: first event %q %s, want cursor_stale", ev.Type, ev.Data)
	}

	for _, q := range []string{"?cursor=nonsense", "?from=sometime", "?format=xml", "?join=later", "?types=no_such_type"} {
		if code := sseStatus(t, g, q, nil); code != http.StatusBadRequest {
			t.Errorf("GET /sse%s: %d, want 400", q, code)
		}
	}
}

// TestSSEAuthTenantAndOrigin: /sse is admitted like /ws — no or a bad
// token 401, a foreign origin or Host 403 — and a tenant's token (bearer
// header or ?token=) reads only that tenant's records; an expiring token
// ends the stream with error TOKEN_EXPIRED.
func TestSSEAuthTenantAndOrigin(t *testing.T) {
	k, topic := kafkaEnv(t, 1)
	secret := "sse-test-secret-0123456789abcdef"
	env := gatewayEnv(k, topic)
	env["WEBSOCKET_JWT_SECRET"] = secret
	env["WEBSOCKET_JWT_TENANT_CLAIM"] = "tenant"
	env["WEBSOCKET_JWT_LEEWAY_SECS"] = "0"
	g := startGateway(t, env)
	token := func(tenant string, ttl time.Duration) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"tenant": tenant,
			"exp": time.Now().Add(ttl).Unix()}).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	var values [][]byte
	for i := range 6 {
		values = append(values, tenantEvent(t, []string{"acme", "globex"}[i%2], uint64(i/2+1)))
	}
	offs := produceRaw(t, k, topic, 0, values...)
	waitHeads(t, g, map[int32]int64{0: offs[5]}, arrive)

	for name, c := range map[string]struct {
		query  string
		header http.Header
		want   int
	}{
		"no token":       {"", nil, http.StatusUnauthorized},
		"bad token":      {"?token=nope", nil, http.StatusUnauthorized},
		"foreign origin": {"?token=" + token("acme", time.Hour), http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
		"query token":    {"?token=" + token("acme", time.Hour), nil, http.StatusOK},
		"bearer header":  {"", http.Header{"Authorization": {"Bearer " + token("acme", time.Hour)}}, http.StatusOK},
	} {
		if got := sseStatus(t, g, c.query, c.header); got != c.want {
			t.Errorf("%s: %d, want %d", name, got, c.want)
		}
	}
	// DNS rebinding: a loopback gateway answers only loopback Host names.
	req, _ := http.NewRequest(http.MethodGet, g.base+"/sse?token="+token("acme", time.Hour), nil)
	req.Host = "rebound.example"
	if resp, err := sseHTTP.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign Host: %v %v, want 403", resp, err)
	} else {
		resp.Body.Close()
	}

	read := func(query string, header http.Header) []int64 {
		st := sseDial(t, g, query, "", header)
		var got []int64
		for {
			ev := sseNext(t, st, 10*time.Second)
			switch ev.Type {
			case "record":
				_, o := sseDecode(t, ev)
				got = append(got, o)
			case "replay_complete":
				return got
			}
		}
	}
	if got := read("?from=earliest&token="+token("acme", time.Hour), nil); !slices.Equal(got, []int64{offs[0], offs[2], offs[4]}) {
		t.Errorf("acme read %v", got)
	}
	if got := read("?from=earliest", http.Header{"Authorization": {"Bearer " + token("globex", time.Hour)}}); !slices.Equal(got, []int64{offs[1], offs[3], offs[5]}) {
		t.Errorf("globex read %v", got)
	}

	st := sseDial(t, g, "?token="+token("acme", 2*time.Second), "", nil)
	for {
		ev := sseNext(t, st, 10*time.Second)
		if ev.Type == "error" {
			var e struct{ Code string }
			if json.Unmarshal(ev.Data, &e); e.Code != "TOKEN_EXPIRED" {
				t.Fatalf("error event %s, want TOKEN_EXPIRED", ev.Data)
			}
			break
		}
	}
	if _, err := st.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after TOKEN_EXPIRED: %v, want the stream's end", err)
	}
}

// TestSSESlowReaderAndShutdown: a reader that stops reading is cut off at
// the send deadline (the gateway does not wait on it), and resuming from
// the last id it read loses and duplicates nothing; a stream open at
// shutdown ends promptly and the gateway stops.
func TestSSESlowReaderAndShutdown(t *testing.T) {
	k, topic := kafkaEnv(t, 1)
	env := gatewayEnv(k, topic)
	env["WEBSOCKET_SEND_TIMEOUT_SECS"] = "1"
	env["WEBSOCKET_CLIENT_QUEUE_BYTES"] = "65536"
	g := startGateway(t, env)

	start := time.Now()
	offs := produceBig(t, k, topic, 1, 300, 16<<10)[0]
	waitHeads(t, g, map[int32]int64{0: offs[len(offs)-1]}, arrive)

	// A client that reads 20 records, then nothing (a small receive
	// buffer, so the gateway's writes stall soon).
	slow := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err == nil {
				err = c.(*net.TCPConn).SetReadBuffer(64 << 10)
			}
			return c, err
		}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := sseclient.Dial(ctx, slow, g.base+"/sse?from=earliest", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var got []int64
	for len(got) < 20 {
		if ev := sseNext(t, st, 10*time.Second); ev.Type == "record" {
			_, o := sseDecode(t, ev)
			got = append(got, o)
		}
	}
	// The gateway gives up on it at the send deadline instead of waiting.
	waitUntil(t, 30*time.Second, "the stalled SSE reader's send timeout", func() bool {
		_, body := g.get("/health")
		var h struct{ Metrics map[string]float64 }
		return json.Unmarshal(body, &h) == nil && h.Metrics["send_timeout"] >= 1
	})
	t.Logf("send timeout %s after the start", time.Since(start).Round(time.Millisecond))
	st.Close()
	resumed := sseDial(t, g, "?from=earliest", st.LastEventID, nil)
	for len(got) < len(offs) {
		ev := sseNext(t, resumed, 20*time.Second)
		if ev.Type == "record" {
			_, o := sseDecode(t, ev)
			got = append(got, o)
		}
	}
	if !slices.Equal(got, offs) {
		t.Fatalf("slow reader + resume: %d records, not every offset once in order", len(got))
	}

	// Shutdown with the stream open: it ends, and the gateway stops.
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := resumed.Next(); err != nil {
				done <- err
				return
			}
		}
	}()
	stopped := make(chan error, 1)
	go func() { stopped <- g.stop() }()
	select {
	case err := <-done:
		if !errors.Is(err, io.EOF) {
			t.Logf("stream ended with %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the SSE stream did not end at shutdown")
	}
	if err := <-stopped; err != nil {
		t.Fatalf("gateway stop: %v", err)
	}
}

// waitUntil polls cond every 50 ms until it holds or timeout passes.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSSEFilterAndJSON: filters given as query parameters apply to the
// replay and to live records, positions move over what they leave out (a
// resume from the last id gets no record twice and none that does not
// match), and format=json carries each record's canonical JSON.
func TestSSEFilterAndJSON(t *testing.T) {
	k, topic := kafkaEnv(t, 2)
	g := startGateway(t, gatewayEnv(k, topic))
	want := map[int32][]int64{}
	produce := func(seq0 uint64) {
		for p := range int32(2) {
			var vals [][]byte
			threads := []string{"run-a", "run-b", "other-c"}
			for i := range 6 {
				vals = append(vals, event(t, threads[i%3], seq0+uint64(i/3)+1))
			}
			offs := produceRaw(t, k, topic, p, vals...)
			for i, o := range offs {
				if i%3 == 0 { // run-a
					want[p] = append(want[p], o)
				}
			}
			waitHeads(t, g, map[int32]int64{p: offs[len(offs)-1]}, arrive)
		}
	}
	produce(0)

	type jsonRecord struct {
		Partition int32  `json:"partition"`
		Offset    string `json:"offset"`
		Message   struct {
			Event struct {
				Header struct {
					ThreadID string `json:"threadId"`
				} `json:"header"`
				EventType string `json:"eventType"`
			} `json:"event"`
		} `json:"message"`
	}
	got := map[int32][]int64{}
	read := func(st *sseclient.Stream, until func(sseclient.Event) bool) {
		for {
			ev := sseNext(t, st, 10*time.Second)
			if ev.Type == "record" {
				var r jsonRecord
				if err := json.Unmarshal(ev.Data, &r); err != nil {
					t.Fatalf("json record %s: %v", ev.Data, err)
				}
				if th := r.Message.Event.Header.ThreadID; th != "run-a" || r.Message.Event.EventType != "EVENT_TYPE_NODE_START" {
					t.Fatalf("record of thread %q (%s) passed the filter", th, ev.Data)
				}
				o, _ := strconv.ParseInt(r.Offset, 10, 64)
				got[r.Partition] = append(got[r.Partition], o)
			}
			if until(ev) {
				return
			}
		}
	}
	q := "?from=earliest&format=json&threads=run-a,x&thread_prefix=run-&types=event&event_types=NODE_START&threads=y"
	st := sseDial(t, g, q, "", nil)
	read(st, func(ev sseclient.Event) bool { return ev.Type == "replay_complete" })
	// Live, then a reconnect from the last id (which moved over run-b and
	// other-c): the rest, once.
	produce(10)
	n := len(want[0]) + len(want[1])
	read(st, func(sseclient.Event) bool { return len(got[0])+len(got[1]) >= n-2 })
	last := st.LastEventID
	st.Close()
	produce(20)
	n = len(want[0]) + len(want[1])
	resumed := sseDial(t, g, q, last, nil)
	read(resumed, func(sseclient.Event) bool { return len(got[0])+len(got[1]) >= n })
	for p := range int32(2) {
		if !slices.Equal(got[p], want[p]) {
			t.Fatalf("partition %d: got %v, want %v (run-a's records once each)", p, got[p], want[p])
		}
	}
}
