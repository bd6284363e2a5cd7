package app

// Client authentication end to end: a whole gateway trusting an in-process
// OpenID Connect provider (discovery + JWKS over HTTP, keys generated
// here), real Kafka, real WebSocket upgrades.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dashflow/dashstream-gateway/internal/auth/oidctest"
	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

func TestJWKSAuthEndToEnd(t *testing.T) {
	k, topic := kafkaEnv(t, 1)
	key := oidctest.NewKey(t, "k1", jwt.SigningMethodES256)
	p := oidctest.New(t, key)
	env := gatewayEnv(k, topic)
	env["WEBSOCKET_OIDC_ISSUER_URL"] = p.Issuer
	env["WEBSOCKET_JWT_AUDIENCE"] = "dashstream"
	env["WEBSOCKET_JWT_TENANT_CLAIM"] = "tenant"
	g := startGateway(t, env)

	var values [][]byte
	for i := range 6 {
		tenant := []string{"acme", "globex"}[i%2]
		values = append(values, tenantEvent(t, tenant, uint64(i/2+1)))
	}
	offsets := produceRaw(t, k, topic, 0, values...)
	coreWaitHeads(t, g, map[int32]int64{0: offsets[len(offsets)-1]})
	want := map[string][]int64{"acme": {offsets[0], offsets[2], offsets[4]}, "globex": {offsets[1], offsets[3], offsets[5]}}

	token := func(signer *oidctest.Key, tenant, aud string) string {
		now := time.Now()
		return signer.Sign(t, jwt.MapClaims{"iss": p.Issuer, "aud": aud, "tenant": tenant,
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	}
	for _, tenant := range []string{"acme", "globex"} {
		t.Run("tenant "+tenant, func(t *testing.T) {
			if code := upgradeStatus(t, g, token(key, tenant, "dashstream")); code != http.StatusSwitchingProtocols {
				t.Fatalf("upgrade answered %d", code)
			}
			got := readTenantStream(t, g, token(key, tenant, "dashstream"))
			if !slices.Equal(got, want[tenant]) {
				t.Fatalf("offsets %v, want %v (only tenant %s's records)", got, want[tenant], tenant)
			}
		})
	}

	impostor := oidctest.NewKey(t, "k1", jwt.SigningMethodES256) // the published kid, another key
	confused := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": p.Issuer, "aud": "dashstream",
		"tenant": "acme", "exp": time.Now().Add(time.Hour).Unix()})
	confused.Header["kid"] = "k1"
	confusedToken, err := confused.SignedString([]byte(p.Issuer))
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string]string{
		"unpublished key":  token(impostor, "acme", "dashstream"),
		"wrong audience":   token(key, "acme", "other-service"),
		"no tenant claim":  token(key, "", "dashstream"),
		"hs256 under kid":  confusedToken,
		"not a jwt at all": "garbage",
	}
	for name, tok := range bad {
		t.Run(name, func(t *testing.T) {
			if code := upgradeStatus(t, g, tok); code != http.StatusUnauthorized {
				t.Fatalf("upgrade answered %d, want 401", code)
			}
		})
	}
}

// tenantEvent is a valid DashStream Event of thread "<tenant>-t" at seq.
func tenantEvent(t *testing.T, tenant string, seq uint64) []byte {
	t.Helper()
	msg := &dashstreampb.DashStreamMessage{Message: &dashstreampb.DashStreamMessage_Event{Event: &dashstreampb.Event{
		Header: &dashstreampb.Header{ThreadId: tenant + "-t", Sequence: seq, TimestampUs: time.Now().UnixMicro(),
			Type: dashstreampb.MessageType_MESSAGE_TYPE_EVENT, TenantId: tenant},
		EventType: dashstreampb.EventType_EVENT_TYPE_NODE_START, NodeId: "n"}}}
	v, err := dashstream.Encode(msg, dashstream.FramingPlain)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// readTenantStream replays partition 0 from its start as the token's
// client and returns the offsets it received up to replay_complete.
func readTenantStream(t *testing.T, g *gateway, token string) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := wsclient.Dial(ctx, g.ws, wsclient.Options{
		Header: http.Header{"Authorization": {"Bearer " + token}},
		Resume: &wsclient.Resume{Offsets: map[int32]int64{0: -1}}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	r := readUntil(t, c, 20*time.Second, func(r received) bool { return r.hasControl("replay_complete") })
	return offsetsOf(r.records)[0]
}

// upgradeStatus sends a WebSocket upgrade with token and returns the status.
func upgradeStatus(t *testing.T, g *gateway, token string) int {
	t.Helper()
	nonce := make([]byte, 16)
	rand.Read(nonce)
	req, err := http.NewRequest(http.MethodGet, g.base+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(nonce))
	req.Header.Set("Authorization", "Bearer "+token)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestJWKSProviderDownAtStartup: the gateway starts and is ready without
// its identity provider, refuses tokens until the provider answers, then
// admits them without a restart.
func TestJWKSProviderDownAtStartup(t *testing.T) {
	k, topic := kafkaEnv(t, 1)
	key := oidctest.NewKey(t, "k1", jwt.SigningMethodEdDSA)
	p := oidctest.New(t, key)
	p.SetDown(true)
	env := gatewayEnv(k, topic)
	env["WEBSOCKET_OIDC_ISSUER_URL"] = p.Issuer
	env["WEBSOCKET_JWT_JWKS_REFRESH_SECS"] = "1"
	g := startGateway(t, env)
	tok := key.Sign(t, jwt.MapClaims{"iss": p.Issuer, "exp": time.Now().Add(time.Hour).Unix()})
	if code, body := g.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz %d %s with the provider down", code, body)
	}
	testenv.WaitFor(t, 30*time.Second, func() bool { return p.DiscoveryFetches() >= 2 }, "discovery retried")
	if code := upgradeStatus(t, g, tok); code != http.StatusUnauthorized {
		t.Fatalf("upgrade answered %d before any key was known, want 401", code)
	}
	p.SetDown(false)
	testenv.WaitFor(t, 30*time.Second, func() bool {
		return upgradeStatus(t, g, tok) == http.StatusSwitchingProtocols
	}, "token admitted once the provider is up")
}
