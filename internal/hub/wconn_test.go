package hub

import (
	"net"
	"testing"

	"github.com/dashflow/dashstream-gateway/internal/limits"
)

// A session on a connection of the public listener (limits.Listener wraps
// every connection to count it) writes records through the socket itself:
// net.Buffers uses writev only on the socket's own type, and through the
// wrapper a batch of N frames cost N system calls (2 M deliveries/s fell to
// 0.2 M, and every client was cut off as slow).
func TestSessionWritesThroughTheSocket(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := limits.NewListener(raw, limits.ListenerConfig{MaxConns: 2})
	defer l.Close()
	client, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s := newSession(nil, conn, "", false)
	if _, ok := s.wconn.(*net.TCPConn); !ok {
		t.Fatalf("session writes through %T, want *net.TCPConn", s.wconn)
	}
	if s.conn != conn {
		t.Fatal("the session must close the listener's connection (it frees the place)")
	}
}
