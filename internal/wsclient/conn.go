package wsclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// DefaultReadLimit bounds one message when Options.ReadLimit is zero: the
// gateway's default max payload (10 MiB) plus framing slack.
const DefaultReadLimit = 10<<20 + 4096

// Options configures a connection. The zero value dials with no extra
// headers and sends no resume.
type Options struct {
	// Header is sent with the upgrade request (e.g. Authorization). Nil: none.
	Header http.Header
	// Origin sets the Origin header. Empty: none (a non-browser client).
	Origin string
	// ReadLimit bounds one message in bytes. Zero: DefaultReadLimit.
	ReadLimit int64
	// Resume is sent right after the upgrade. Nil: nothing is sent and the
	// server starts the client at "latest" after its resume wait (1 s).
	Resume *Resume
	// LocalAddr is the source address to dial from (e.g. 127.0.3.7:0, to
	// spread load-test clients over addresses). Nil: chosen by the system.
	LocalAddr *net.TCPAddr
	// DialTimeout bounds the TCP connect and the handshake. Zero: 10 s.
	DialTimeout time.Duration
	// ReadBufferSize is the socket read buffer of a Lean connection. Zero:
	// 8 KiB.
	ReadBufferSize int
	// V2 offers the subprotocol dashstream.v2 (docs/PROTOCOL.md §3.8). A
	// server that selects it sends one frame per record (binary with a
	// 13-byte envelope, or JSON text); one that does not speaks v1, and the
	// connection reads v1 (see Conn.V2). False: v1.
	V2 bool
}

// subprotocols lists what the upgrade offers.
func (o *Options) subprotocols() []string {
	if o.V2 {
		return []string{wsproto.SubprotocolV2}
	}
	return nil
}

func (o *Options) header() http.Header {
	h := o.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if o.Origin != "" {
		h.Set("Origin", o.Origin)
	}
	return h
}

func (o *Options) dialTimeout() time.Duration {
	if o.DialTimeout > 0 {
		return o.DialTimeout
	}
	return 10 * time.Second
}

func (o *Options) readLimit() int64 {
	if o.ReadLimit > 0 {
		return o.ReadLimit
	}
	return DefaultReadLimit
}

// Conn is a protocol connection over coder/websocket.
type Conn struct {
	ws   *websocket.Conn
	pair pairer
	v2   bool
}

// Dial connects to url (ws://host:port/ws) and sends opts.Resume.
func Dial(ctx context.Context, url string, opts Options) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.dialTimeout())
	defer cancel()
	dopts := &websocket.DialOptions{HTTPHeader: opts.header(), CompressionMode: websocket.CompressionDisabled,
		Subprotocols: opts.subprotocols()}
	if opts.LocalAddr != nil {
		d := &net.Dialer{LocalAddr: opts.LocalAddr}
		dopts.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	}
	ws, resp, err := websocket.Dial(ctx, url, dopts)
	if resp != nil && resp.Body != nil {
		defer resp.Body.Close() // a refusal's body (after an upgrade, a no-op)
	}
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, fmt.Errorf("wsclient: dial %s: %w", url, &HandshakeError{Status: resp.StatusCode})
		}
		return nil, fmt.Errorf("wsclient: dial %s: %w", url, err)
	}
	ws.SetReadLimit(opts.readLimit())
	c := &Conn{ws: ws, v2: ws.Subprotocol() == wsproto.SubprotocolV2}
	if opts.Resume != nil {
		if err := c.Send(ctx, opts.Resume); err != nil {
			ws.CloseNow()
			return nil, err
		}
	}
	return c, nil
}

// Send writes v as a JSON text frame (a *Resume, or e.g.
// map[string]string{"type": "ping"}).
func (c *Conn) Send(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("wsclient: encode frame: %w", err)
	}
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("wsclient: send: %w", err)
	}
	return nil
}

// Next returns the next record or control frame. Record values and control
// bytes belong to the caller. When ctx ends during a read the connection is
// closed (a coder/websocket rule) and ctx's error is returned.
func (c *Conn) Next(ctx context.Context) (Message, error) {
	for {
		typ, b, err := c.ws.Read(ctx)
		if err != nil {
			return Message{}, c.readErr(ctx, err)
		}
		if c.v2 {
			return v2Message(typ == websocket.MessageBinary, b)
		}
		if typ == websocket.MessageBinary {
			return c.pair.binary(b)
		}
		msg, ok, err := c.pair.text(b, true)
		if ok || err != nil {
			return msg, err
		}
	}
}

// V2 reports whether the server selected protocol v2.
func (c *Conn) V2() bool { return c.v2 }

func (c *Conn) readErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return &CloseError{Code: int(ce.Code), Reason: ce.Reason}
	}
	if errors.Is(err, websocket.ErrMessageTooBig) {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return fmt.Errorf("wsclient: read: %w", err)
}

// Close sends a normal close frame and closes the connection.
func (c *Conn) Close() error {
	return c.ws.Close(websocket.StatusNormalClosure, "")
}

// CloseNow closes the connection without a close handshake (what a crashed
// or unplugged client looks like to the server).
func (c *Conn) CloseNow() error { return c.ws.CloseNow() }
