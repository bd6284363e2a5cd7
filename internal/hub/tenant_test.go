package hub

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

const tenantSecret = "hub-test-secret"

// skippedTenant marks a dead-lettered record in publishTenants.
const skippedTenant = "<skipped>"

// publishTenants hands p's records from..from+len(tenants)-1 to the hub,
// each of the given tenant.
func (th *testHub) publishTenants(p int32, from int64, tenants ...string) {
	recs := make([]*replay.Record, len(tenants))
	for i, tenant := range tenants {
		o := from + int64(i)
		prev, ok := th.prev[p]
		if !ok {
			prev = o - 1
		}
		r := &replay.Record{Partition: p, Offset: o, Prev: prev, Value: []byte("v-" + itoa(p) + "-" + itoa64(o)), Tenant: tenant}
		if tenant == skippedTenant {
			r.Value, r.Tenant, r.Skipped = nil, "", "invalid_protobuf"
		}
		recs[i] = r
		th.prev[p] = o
	}
	th.topo.mu.Lock()
	th.topo.hwm[p] = from + int64(len(tenants))
	th.topo.mu.Unlock()
	th.Publish(recs)
}

// authURL serves the hub behind an authenticator, as httpserver does, and
// returns its WebSocket URL.
func (th *testHub) authURL(t *testing.T, a *auth.Authenticator) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := a.Authenticate(r)
		if err != nil {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		th.ServeWS(w, r, id, nil)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

func tenantToken(t *testing.T, tenant string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"tenant": tenant,
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(tenantSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dialBearer dials url with the browser token idiom and checks that the
// server selected the bearer subprotocol.
func dialBearer(t *testing.T, url, token string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"bearer", token}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if c.Subprotocol() != "bearer" {
		t.Fatalf("subprotocol %q, want bearer echoed", c.Subprotocol())
	}
	return &client{t: t, conn: c}
}

// TestTenantIsolation: clients of tenants A and B each get only their
// tenant's records, in replay and live, with strictly increasing offsets,
// and no gap or skipped frame for the offsets they do not get; their
// positions still advance over them. An unrestricted client gets all.
func TestTenantIsolation(t *testing.T) {
	th := newTestHub(t, Config{}, replay.MemoryConfig{})
	authn, err := auth.NewAuthenticator(auth.AuthConfig{Token: "admin", JWTSecret: tenantSecret, TenantClaim: "tenant"})
	if err != nil {
		t.Fatal(err)
	}
	url := th.authURL(t, authn)
	th.publishTenants(0, 0, "A", "B", "", skippedTenant, "A", "B", "B", "A")
	th.publishTenants(1, 0, "A", "A", "A", "B", "B", "B")

	want := map[string]map[int32][]int64{
		"A": {0: {0, 4, 7, 8, 11}, 1: {0, 1, 2, 6}},
		"B": {0: {1, 5, 6, 9}, 1: {3, 4, 5, 7}},
	}
	for _, tenant := range []string{"A", "B"} {
		t.Run(tenant, func(t *testing.T) {
			c := dialBearer(t, url, tenantToken(t, tenant))
			heads := th.Heads()
			c.send(map[string]any{"type": "resume", "from": "earliest"})
			recs, ctrl := c.readUntil(isType("replay_complete"))
			rc := ctrl[len(ctrl)-1]
			last := rc["lastOffsetsByPartition"].(map[string]any)
			if last["0"] != itoa64(heads[0]) || last["1"] != itoa64(heads[1]) || int(rc["totalReplayed"].(float64)) != len(recs) {
				t.Fatalf("replay_complete %v after %d records: positions must reach the heads %v", rc, len(recs), heads)
			}
			if tenant == "A" { // A gets these live; B, dialed later, in its replay
				th.publishTenants(0, 8, "A", "B", "", "A")
				th.publishTenants(1, 6, "A", "B")
			}
			live, more := c.readRecords(len(want[tenant][0]) + len(want[tenant][1]) - len(recs))
			recs, ctrl = append(recs, live...), append(ctrl, more...)
			c.send(map[string]any{"type": "ping"})
			_, tail := c.readUntil(isType("pong"))
			if f, err := c.read(300 * time.Millisecond); err == nil {
				t.Fatalf("unexpected frame after pong: %v", f.json)
			}
			for _, m := range append(ctrl[:len(ctrl)-1], tail...) {
				if typ := m["type"]; typ != "replay_complete" && typ != "pong" {
					t.Fatalf("control frame %v sent to a tenant client", m)
				}
			}
			checkIncreasing(t, recs)
			checkExact(t, recs, want[tenant])
		})
	}

	all := dialBearer(t, url, "admin")
	all.send(map[string]any{"type": "resume", "from": "earliest"})
	recs, ctrl := all.readUntil(isType("replay_complete"))
	checkExact(t, recs, map[int32][]int64{0: {0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11}, 1: seq(0, 7)})
	if ctrl[0]["type"] != "skipped" || ctrl[0]["offset"] != "3" {
		t.Fatalf("unrestricted client: controls %v, want the skipped frame of offset 3", ctrl)
	}
}

// checkIncreasing asserts strictly increasing offsets per partition.
func checkIncreasing(t *testing.T, recs []received) {
	t.Helper()
	last := map[int32]int64{}
	for _, d := range recs {
		if o, ok := last[d.partition]; ok && d.offset <= o {
			t.Fatalf("partition %d: offset %d after %d", d.partition, d.offset, o)
		}
		last[d.partition] = d.offset
	}
}

// TestSubprotocolOnlyWhenOffered: a client authenticating with a header
// gets no subprotocol; one offering the idiom on an open gateway gets it
// echoed (a browser would fail the handshake otherwise).
func TestSubprotocolOnlyWhenOffered(t *testing.T) {
	th := newTestHub(t, Config{}, replay.MemoryConfig{})
	authn, err := auth.NewAuthenticator(auth.AuthConfig{Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	url := th.authURL(t, authn)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer tok"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if c.Subprotocol() != "" {
		t.Fatalf("subprotocol %q selected without being offered", c.Subprotocol())
	}
	if _, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"bearer", "wrong"}}); err == nil ||
		resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %v", err)
	}
	open := th.authURL(t, nil)
	dialBearer(t, open, "anything")
}
