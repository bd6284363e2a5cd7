package limits

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testRefusal = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"

// acceptor accepts from l until it fails and keeps the connections.
type acceptor struct {
	mu    sync.Mutex
	conns []net.Conn
	got   chan net.Conn
	done  chan struct{}
}

func startAcceptor(t *testing.T, l *Listener) *acceptor {
	t.Helper()
	a := &acceptor{got: make(chan net.Conn, 64), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			a.mu.Lock()
			a.conns = append(a.conns, c)
			a.mu.Unlock()
			a.got <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-a.done
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, c := range a.conns {
			c.Close()
		}
	})
	return a
}

func newTestListener(t *testing.T, cfg ListenerConfig) *Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return NewListener(ln, cfg)
}

func dial(t *testing.T, l *Listener) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAll reads c until EOF or error, bounded by d.
func readAll(t *testing.T, c net.Conn, d time.Duration) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(d))
	b, _ := io.ReadAll(c)
	return string(b), time.Since(start)
}

func TestListenerRefusesBeyondMax(t *testing.T) {
	var answered, closed atomic.Int32
	l := newTestListener(t, ListenerConfig{MaxConns: 2, Refusal: []byte(testRefusal), MaxRefusing: 1,
		RefuseTimeout: 20 * time.Second, OnRefuse: func(a bool) {
			if a {
				answered.Add(1)
			} else {
				closed.Add(1)
			}
		}})
	a := startAcceptor(t, l)
	dial(t, l)
	dial(t, l)
	first, second := <-a.got, <-a.got
	if l.Active() != 2 {
		t.Fatalf("active = %d", l.Active())
	}

	// Beyond the limit: the request head is read, the refusal written.
	c := dial(t, l)
	if _, err := io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if got, took := readAll(t, c, 10*time.Second); got != testRefusal || took > 5*time.Second {
		t.Fatalf("refused connection read %q in %v", got, took)
	}

	// A client that never sends holds the only graceful place until the
	// refuse timeout; the next one is answered at once from the accept
	// loop instead of waiting.
	silent := dial(t, l)
	waitFor(t, func() bool { return answered.Load() == 2 })
	c = dial(t, l)
	if got, took := readAll(t, c, 10*time.Second); got != testRefusal || took > 5*time.Second {
		t.Fatalf("connection beyond the graceful bound read %q in %v", got, took)
	}
	if answered.Load() != 3 || closed.Load() != 0 {
		t.Fatalf("answered %d closed %d", answered.Load(), closed.Load())
	}

	// Closing an accepted connection frees its place.
	first.Close()
	first.Close() // idempotent
	dial(t, l)
	select {
	case <-a.got:
	case <-time.After(10 * time.Second):
		t.Fatal("a freed place was not reused")
	}
	if l.Active() != 2 {
		t.Fatalf("active = %d", l.Active())
	}
	second.Close()

	// Close ends the pending refusal at once, not after its timeout.
	start := time.Now()
	l.Close()
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Close took %v", took)
	}
	if got, _ := readAll(t, silent, 10*time.Second); got != "" {
		t.Fatalf("silent client read %q", got)
	}
}

func TestListenerUnlimitedAndNoRefusal(t *testing.T) {
	l := newTestListener(t, ListenerConfig{})
	a := startAcceptor(t, l)
	for range 5 {
		dial(t, l)
		<-a.got
	}
	if l.Active() != 5 {
		t.Fatalf("active = %d", l.Active())
	}

	var closed atomic.Int32
	m := newTestListener(t, ListenerConfig{MaxConns: 1, OnRefuse: func(answered bool) {
		if !answered {
			closed.Add(1)
		}
	}})
	b := startAcceptor(t, m)
	dial(t, m)
	<-b.got
	c := dial(t, m)
	if got, took := readAll(t, c, 10*time.Second); got != "" || took > 5*time.Second {
		t.Fatalf("without a refusal: read %q in %v", got, took)
	}
	if closed.Load() != 1 {
		t.Fatalf("closed without answer: %d", closed.Load())
	}
}

// TestListenerBurstAllAnswered: a burst far beyond the limit and the
// graceful bound, each client sending its request at once, gets the
// refusal on every connection, none left waiting.
func TestListenerBurstAllAnswered(t *testing.T) {
	l := newTestListener(t, ListenerConfig{MaxConns: 1, Refusal: []byte(testRefusal), MaxRefusing: 1})
	a := startAcceptor(t, l)
	dial(t, l)
	<-a.got
	var wg sync.WaitGroup
	var bad atomic.Int32
	for range 100 {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
			if err != nil {
				bad.Add(1)
				return
			}
			defer c.Close()
			_, _ = io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if b, _ := io.ReadAll(c); string(b) != testRefusal {
				bad.Add(1)
			}
		})
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d of 100 refused connections got no answer", bad.Load())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A connection of the Listener unwraps to the socket itself: record batches
// written through it keep writev (net.Buffers uses it only on the socket's
// own type; through the wrapper every frame would be a system call), and
// closing the wrapper still frees the place.
func TestListenerUnwrapKeepsTheSocket(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(raw, ListenerConfig{MaxConns: 4})
	a := startAcceptor(t, l)
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := <-a.got
	if _, ok := Unwrap(got).(*net.TCPConn); !ok {
		t.Fatalf("Unwrap(%T) = %T, want *net.TCPConn", got, Unwrap(got))
	}
	if Unwrap(c) != c {
		t.Fatal("Unwrap changed a connection the Listener did not make")
	}
	bufs := net.Buffers{[]byte("a"), []byte("b")}
	if _, err := bufs.WriteTo(Unwrap(got)); err != nil {
		t.Fatal(err)
	}
	if err := got.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for l.active.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := l.active.Load(); n != 0 {
		t.Fatalf("%d places held after Close of the wrapper", n)
	}
}
