package chaos

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// noFile is the gateway's descriptor limit in descriptorExhaustion: low
// enough to reach with a bounded number of connections, high enough to
// leave the gateway its reserve (Kafka, Redis, listeners, files).
const noFile = 512

// descriptorExhaustion: under RLIMIT_NOFILE noFile WebSocket upgrades are
// opened until the gateway refuses one; the refusal is a 503 with
// Retry-After before the upgrade, the internal listener still answers its
// probes within a second, and the client connected before keeps getting
// every record.
func descriptorExhaustion(t *testing.T, w *world) {
	s := w.scenario(t, 1)
	internal := port(t)
	g := s.gateway("gw", map[string]string{"INTERNAL_ADDR": "127.0.0.1:" + strconv.Itoa(internal)})
	g.InternalPort, g.NoFile = internal, noFile
	g.Start()
	if took, ok := g.WaitReady(true, 30*time.Second); !ok {
		g.InternalPort = 0 // probe the public listener instead, to test the rest
		if !g.Ready() {
			t.Fatalf("gateway under RLIMIT_NOFILE %d not ready after %v", noFile, took)
		}
		t.Errorf("INTERNAL_ADDR: no /readyz 200 on 127.0.0.1:%d after %v; the public listener answers", internal, took)
	}
	s.startClients(1, nil, g.WS())
	s.startProducer(20) // every held connection gets the live stream too
	time.Sleep(time.Second)

	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	status, retryAfter, broken := 0, "", 0
	for range 2 * noFile {
		var c net.Conn
		var err error
		status, retryAfter, c, err = upgrade(g.Port)
		if err != nil {
			// Refused, reset or unanswered below the HTTP layer: what the
			// limit must prevent. A few in a row mean the process is out
			// of descriptors; each costs up to 3 s, so stop there.
			if broken++; broken >= 5 {
				break
			}
			continue
		}
		if status != http.StatusSwitchingProtocols {
			break
		}
		held = append(held, c)
	}
	t.Logf("chaos: %s upgrades_held=%d broken=%d refusal=%d retry_after=%q", t.Name(), len(held), broken, status, retryAfter)
	if status != http.StatusServiceUnavailable || retryAfter == "" {
		t.Errorf("after %d upgrades: status %d, Retry-After %q; want 503 with Retry-After", len(held), status, retryAfter)
	}
	if broken > 0 {
		t.Errorf("%d connection attempts failed without an HTTP answer", broken)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		began := time.Now()
		st := g.Status(path)
		took := time.Since(began)
		t.Logf("chaos: %s probe %s%s=%d in %v", t.Name(), g.probeBase(), path, st, took.Round(time.Millisecond))
		if st != http.StatusOK || took > time.Second {
			t.Errorf("probe %s%s at the connection limit: %d in %v; want 200 within 1 s", g.probeBase(), path, st, took)
		}
	}
	for _, c := range held {
		c.Close()
	}
	held = nil
	time.Sleep(2 * time.Second)
	s.finish("")
}

// upgrade sends a WebSocket upgrade request on a new connection and reads the
// answer's status line and headers. A 101 connection is returned open (the
// caller holds it); any other is closed.
func upgrade(port int) (status int, retryAfter string, conn net.Conn, err error) {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return 0, "", nil, err
	}
	c.SetDeadline(time.Now().Add(3 * time.Second))
	_, err = fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	if err != nil {
		c.Close()
		return 0, "", nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return 0, "", nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After"), nil, nil
	}
	c.SetDeadline(time.Time{})
	return resp.StatusCode, "", c, nil
}
