package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/sseclient"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// SSE clients (Config.SSE): each reads GET /sse (docs/PROTOCOL.md §3.9)
// with base64 records over its own HTTP connection from its own loopback
// address, and is accounted exactly like a WebSocket client (the same
// cursor, so a duplicate or a hole counts the same way).

// sseURL is the /sse URL of the gateway whose WebSocket URL is wsURL.
func sseURL(wsURL string) (string, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return "", err
	}
	u.Scheme = map[string]string{"wss": "https"}[u.Scheme]
	if u.Scheme == "" {
		u.Scheme = "http"
	}
	u.Path = "/sse"
	return u.String(), nil
}

// sseCursor is the /sse cursor of from. The benchmark writes the
// gateway's cursor form (clients treat it as opaque): no namespace, so it
// is never taken for another topic's.
func sseCursor(from map[int32]int64) string {
	b := []byte("c1~~")
	parts := make([]int32, 0, len(from))
	for p := range from {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for i, p := range parts {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(p), 10)
		b = append(b, ':')
		b = strconv.AppendInt(b, from[p], 10)
	}
	return string(b)
}

// dialSSEClient opens client spec.i's stream, resuming from the producer's
// positions when it connects (like the WebSocket clients).
func dialSSEClient(ctx context.Context, base string, spec clientSpec, pr *producer, win *window) (*client, error) {
	from := pr.cursor()
	c := &client{cursor: wsclient.NewCursor(), win: win, ready: make(chan struct{}), done: make(chan struct{}),
		want: pr.expected}
	q := url.Values{"cursor": {sseCursor(from)}}
	if spec.thread >= 0 {
		id := threadID(0, spec.thread)
		q.Set("threads", id)
		c.thread = []byte(id)
		c.want = func() int64 { return pr.threadExpected(spec.thread) }
	}
	if err := c.filterTypes(spec.types, pr); err != nil {
		return nil, err
	}
	if c.types != 0 {
		q.Set("types", strings.Join(spec.types, ","))
	}
	local := sourceAddr(spec.i)
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true,
		DialContext: (&net.Dialer{LocalAddr: local, Timeout: 10 * time.Second}).DialContext}}
	// The request outlives ctx (which only bounds connecting): runSSE
	// closes the stream when the run ends.
	st, err := sseclient.Dial(context.WithoutCancel(ctx), hc, base+"?"+q.Encode(), "", nil)
	if err != nil {
		return nil, err
	}
	st.SkipIDs = true // the bench resumes nothing: no string per event
	c.sse = st
	for p, o := range from {
		c.cursor.Set(p, o)
	}
	return c, nil
}

// runSSE reads the stream until ctx ends or it fails.
func (c *client) runSSE(ctx context.Context) {
	defer close(c.done)
	stop := context.AfterFunc(ctx, func() { c.sse.Close() })
	defer stop()
	defer c.sse.Close()
	var value []byte
	for {
		ev, err := c.sse.Next()
		if err != nil {
			if ctx.Err() == nil {
				c.err = err
			}
			return
		}
		now := time.Now().UnixMicro()
		if ev.Type != "record" {
			c.control(wsclient.Control{Type: ev.Type, Raw: slices.Clone(ev.Data)})
			continue
		}
		r, ok := parseSSERecord(ev.Data, value[:0])
		if !ok {
			c.foreign++ // not a record the gateway should send
			continue
		}
		value = r.Value
		c.record(r, now)
	}
}

// parseSSERecord reads {"type":"record","partition":P,"offset":"O",
// "value":"<base64>"} without encoding/json (a million events a second
// go through it), decoding the value into buf.
func parseSSERecord(data, buf []byte) (wsclient.Record, bool) {
	p, ok1 := field(data, `"partition":`, ',')
	o, ok2 := field(data, `"offset":"`, '"')
	v, ok3 := field(data, `"value":"`, '"')
	if !ok1 || !ok2 || !ok3 {
		return wsclient.Record{}, false
	}
	pn, err1 := strconv.ParseInt(string(p), 10, 32)
	on, err2 := strconv.ParseInt(string(o), 10, 64)
	n := base64.StdEncoding.DecodedLen(len(v))
	buf = slices.Grow(buf[:0], n)[:n]
	m, err3 := base64.StdEncoding.Decode(buf, v)
	if err1 != nil || err2 != nil || err3 != nil {
		return wsclient.Record{}, false
	}
	return wsclient.Record{Partition: int32(pn), Offset: on, Value: buf[:m]}, true
}

func field(b []byte, key string, term byte) ([]byte, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return nil, false
	}
	b = b[i+len(key):]
	j := bytes.IndexByte(b, term)
	if j < 0 {
		return nil, false
	}
	return b[:j], true
}
