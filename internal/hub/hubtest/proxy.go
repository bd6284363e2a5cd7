package hubtest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP relay whose connections a test can cut, like a network
// failure between a client and its gateway.
type Proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

// NewProxy relays a loopback listener to target (host:port) and closes at
// cleanup.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	px := &Proxy{ln: ln, target: target}
	px.wg.Add(1)
	go px.accept()
	t.Cleanup(px.Close)
	return px
}

// URL is the WebSocket URL of /ws through the proxy.
func (px *Proxy) URL() string { return "ws://" + px.ln.Addr().String() + "/ws" }

func (px *Proxy) accept() {
	defer px.wg.Done()
	for {
		c, err := px.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", px.target)
		if err != nil {
			_ = c.Close()
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

func (px *Proxy) pipe(dst, src net.Conn) {
	defer px.wg.Done()
	_, _ = io.Copy(dst, src) // ends when either side closes
	_ = dst.Close()
	_ = src.Close()
}

// Cut closes every relayed connection; new ones are still relayed.
func (px *Proxy) Cut() {
	px.mu.Lock()
	defer px.mu.Unlock()
	for _, c := range px.conns {
		_ = c.Close()
	}
	px.conns = nil
}

// Close stops relaying and waits for the relay goroutines; it may be
// called more than once.
func (px *Proxy) Close() {
	_ = px.ln.Close()
	px.Cut()
	px.wg.Wait()
}
