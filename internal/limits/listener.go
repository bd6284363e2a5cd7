package limits

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ListenerConfig configures a Listener.
type ListenerConfig struct {
	// MaxConns bounds connections open at once. 0: unlimited.
	MaxConns int
	// Refusal is written to a connection accepted beyond MaxConns, after
	// its request head was read, before it is closed. Nil: such a
	// connection is closed without an answer.
	Refusal []byte
	// MaxRefusing bounds connections answered Refusal gracefully (after
	// their request head was read) at once; beyond it Refusal is written
	// at once and the connection closed, which may reset it before the
	// client read the answer. 0: 4.
	MaxRefusing int
	// RefuseTimeout bounds reading the request head and writing Refusal.
	// 0: 1 s.
	RefuseTimeout time.Duration
	// OnRefuse is called for every connection refused (answered: Refusal
	// was sent or attempted). Nil: not called.
	OnRefuse func(answered bool)
}

// Listener bounds the connections open on a net.Listener. Unlike a listener
// that stops accepting when full (golang.org/x/net/netutil.LimitListener),
// it keeps accepting and refuses the excess at once, so a client beyond the
// limit gets an answer (or, without Refusal, a closed connection) instead of
// waiting unseen in the kernel's backlog. A refusal holds a descriptor at
// most RefuseTimeout, and at most MaxRefusing of them are held at once.
type Listener struct {
	net.Listener
	cfg    ListenerConfig
	active atomic.Int64

	wg      sync.WaitGroup
	mu      sync.Mutex
	closed  bool                  // guarded by mu
	pending map[net.Conn]struct{} // being refused; guarded by mu
}

// NewListener wraps ln.
func NewListener(ln net.Listener, cfg ListenerConfig) *Listener {
	if cfg.MaxRefusing <= 0 {
		cfg.MaxRefusing = 4
	}
	if cfg.RefuseTimeout <= 0 {
		cfg.RefuseTimeout = time.Second
	}
	return &Listener{Listener: ln, cfg: cfg, pending: map[net.Conn]struct{}{}}
}

// Accept returns the next connection within the limit; connections beyond
// it are refused on the way. The returned connection frees its place when
// closed (also after an HTTP hijack: the hijacker closes it).
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.admit() {
			return &limitedConn{Conn: c, l: l}, nil
		}
		l.refuse(c)
	}
}

// admit takes a place if there is one.
func (l *Listener) admit() bool {
	n := l.active.Add(1)
	if l.cfg.MaxConns <= 0 || n <= int64(l.cfg.MaxConns) {
		return true
	}
	l.active.Add(-1)
	return false
}

// Active is the number of accepted connections still open.
func (l *Listener) Active() int { return int(l.active.Load()) }

// Close stops listening, closes the connections being refused and waits
// for their goroutines.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	l.closed = true
	for c := range l.pending {
		_ = c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	return err
}

// refuse answers c on a goroutine of its own when there is room; else it
// writes the refusal at once without reading the request (a fresh socket's
// empty send buffer takes it without blocking) and closes. It never blocks
// the accept loop.
func (l *Listener) refuse(c net.Conn) {
	l.mu.Lock()
	graceful := !l.closed && l.cfg.Refusal != nil && len(l.pending) < l.cfg.MaxRefusing
	if graceful {
		l.pending[c] = struct{}{}
		l.wg.Add(1)
	}
	l.mu.Unlock()
	if l.cfg.OnRefuse != nil {
		l.cfg.OnRefuse(l.cfg.Refusal != nil)
	}
	if graceful {
		go l.answer(c)
		return
	}
	if l.cfg.Refusal != nil {
		_ = c.SetWriteDeadline(time.Now().Add(inlineWriteTimeout))
		_, _ = c.Write(l.cfg.Refusal)
	}
	_ = c.Close()
}

// inlineWriteTimeout bounds a refusal written from the accept loop.
const inlineWriteTimeout = 10 * time.Millisecond

// maxRefusedHead bounds what is read of a refused request.
const maxRefusedHead = 8 << 10

// answer reads the request head (so closing does not reset the connection
// before the client read the answer), writes the refusal and closes.
func (l *Listener) answer(c net.Conn) {
	defer l.wg.Done()
	defer func() {
		l.mu.Lock()
		delete(l.pending, c)
		l.mu.Unlock()
		_ = c.Close()
	}()
	_ = c.SetDeadline(time.Now().Add(l.cfg.RefuseTimeout))
	readHead(bufio.NewReaderSize(io.LimitReader(c, maxRefusedHead), 1024))
	if _, err := c.Write(l.cfg.Refusal); err != nil {
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// readHead reads up to the blank line ending an HTTP request head, or until
// the reader fails (limit, deadline, closed).
func readHead(r *bufio.Reader) {
	for {
		line, err := r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
		if err == nil && len(bytes.TrimRight(line, "\r\n")) == 0 {
			return
		}
	}
}

// Unwrap returns the connection a Listener wrapped, c itself for any other.
// Write through it: net.Buffers uses writev only on the socket's own type,
// so a frame batch written through the wrapper would cost a system call per
// frame. Close the wrapper, which frees the listener place.
func Unwrap(c net.Conn) net.Conn {
	if lc, ok := c.(*limitedConn); ok {
		return lc.Conn
	}
	return c
}

// limitedConn frees its listener place once, when first closed.
type limitedConn struct {
	net.Conn
	l    *Listener
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.active.Add(-1) })
	return err
}
