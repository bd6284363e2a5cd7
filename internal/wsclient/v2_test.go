package wsclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dashflow/dashstream-gateway/internal/hub"
	"github.com/dashflow/dashstream-gateway/internal/hub/hubtest"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// v2Server stands in for a v2 gateway at the codec level: it selects
// dashstream.v2, hands the client's resume to check, then sends frames
// built by wsproto (the gateway's own encoders). A mock, because these
// tests check the resume the client sent and frames the real hub only
// sends in rare states (a binary v2 record beside JSON ones, a cursor after
// replay_complete); the client against the real hub is tested below and in
// the rest of this package.
func v2Server(t *testing.T, frames func(*websocket.Conn), resume chan<- []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{wsproto.SubprotocolV2}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		resume <- b
		frames(c)
		_, _, _ = c.Read(ctx) // until the client closes
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

func TestV2Frames(t *testing.T) {
	msg := []byte(`{"event":{"header":{"threadId":"t1","sequence":"3"}}}`)
	send := func(c *websocket.Conn) {
		ctx := context.Background()
		_ = c.Write(ctx, websocket.MessageBinary, wsproto.AppendRecordV2(nil, 3, 1<<40, []byte{0, 0xAB}))
		_ = c.Write(ctx, websocket.MessageText, wsproto.AppendRecordJSON(nil, 0, 7, msg))
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"replay_complete","totalReplayed":2,"lastOffsetsByPartition":{"0":"7","3":"1099511627776"},"capped":false,"mode":"latest"}`))
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"cursor","partition":0,"offset":"8"}`))
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			resumes := make(chan []byte, 1)
			url := v2Server(t, send, resumes)
			res := &Resume{From: FromLatest, Offsets: map[int32]int64{}, Filter: json.RawMessage(`{"threads":["t1"]}`), Format: "json", Join: "checkpoint"}
			c := dialT(t, tr, url, Options{V2: true, Resume: res})
			if v2, ok := c.(interface{ V2() bool }); !ok || !v2.V2() {
				t.Fatal("v2 not negotiated")
			}
			var sent map[string]any
			if err := json.Unmarshal(<-resumes, &sent); err != nil {
				t.Fatal(err)
			}
			if f, _ := json.Marshal(sent["filter"]); string(f) != `{"threads":["t1"]}` || sent["format"] != "json" || sent["join"] != "checkpoint" || sent["from"] != "latest" {
				t.Fatalf("resume sent %v", sent)
			}
			recs, ctrl := readUntil(t, c, func(c Control) bool { return c.Type == "replay_complete" })
			if len(recs) != 2 || len(ctrl) != 1 {
				t.Fatalf("%d records, %d controls", len(recs), len(ctrl))
			}
			if r := recs[0]; r.Partition != 3 || r.Offset != 1<<40 || string(r.Value) != "\x00\xab" || r.JSON != nil {
				t.Fatalf("binary record %+v", r)
			}
			if r := recs[1]; r.Partition != 0 || r.Offset != 7 || string(r.JSON) != string(msg) || r.Value != nil {
				t.Fatalf("JSON record %+v", r)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := c.Next(ctx); !errors.Is(err, ErrProtocol) {
				t.Fatalf("a cursor frame on v2: %v", err)
			}
		})
	}
}

// TestV2MalformedRecord: a binary frame without a full envelope is a
// protocol violation.
func TestV2MalformedRecord(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			url := v2Server(t, func(c *websocket.Conn) {
				_ = c.Write(context.Background(), websocket.MessageBinary, []byte{0x01, 0, 0})
			}, make(chan []byte, 1))
			c := dialT(t, tr, url, Options{V2: true, Resume: &Resume{From: FromLatest}})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := c.Next(ctx); !errors.Is(err, ErrProtocol) || !errors.Is(err, wsproto.ErrRecordV2) {
				t.Fatalf("short envelope: %v", err)
			}
		})
	}
}

// TestV2FallsBackToV1: a gateway that does not select dashstream.v2 is
// read as v1. The real hub, behind a proxy-like wrap that drops the
// Sec-WebSocket-Protocol header (an old gateway or an intermediary that
// does not pass it on), answers without a subprotocol.
func TestV2FallsBackToV1(t *testing.T) {
	gw := hubtest.New(hub.Config{}, replay.MemoryConfig{}, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Del("Sec-WebSocket-Protocol")
			next.ServeHTTP(w, r)
		})
	})
	t.Cleanup(gw.Close)
	gw.PublishN(0, 0, 3)
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c := dialT(t, tr, gw.URL, Options{V2: true, Resume: &Resume{From: FromEarliest}})
			if c.(interface{ V2() bool }).V2() {
				t.Fatal("v2 selected although the gateway was not offered it")
			}
			recs := readRecords(t, c, 3)
			for i, r := range recs {
				if r.Offset != int64(i) || string(r.Value) != value(0, int64(i)) {
					t.Fatalf("record %d: %+v", i, r)
				}
			}
		})
	}
}

// TestLeanNextFrame: NextFrame hands over v2 frames as they came (text or
// binary, payload byte for byte) and ParseV2Frame makes of them what Next
// would; a v1 connection refuses NextFrame.
func TestLeanNextFrame(t *testing.T) {
	msg := []byte(`{"event":{"header":{"threadId":"t1"}}}`)
	bin := wsproto.AppendRecordV2(nil, 3, 1<<40, []byte{0, 0xAB})
	text := wsproto.AppendRecordJSON(nil, 0, 7, msg)
	ctl := []byte(`{"type":"gap","partition":1,"fromOffset":"2","toOffset":"4"}`)
	url := v2Server(t, func(c *websocket.Conn) {
		ctx := context.Background()
		_ = c.Write(ctx, websocket.MessageBinary, bin)
		_ = c.Write(ctx, websocket.MessageText, text)
		_ = c.Write(ctx, websocket.MessageText, ctl)
	}, make(chan []byte, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := DialLean(ctx, url, Options{V2: true, Resume: &Resume{From: FromLatest, Format: "json"}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	want := []struct {
		text    bool
		payload []byte
		kind    Kind
	}{{false, bin, KindRecord}, {true, text, KindRecord}, {true, ctl, KindControl}}
	for i, w := range want {
		isText, p, err := l.NextFrame(ctx)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if isText != w.text || string(p) != string(w.payload) {
			t.Fatalf("frame %d: text %v %q, want %v %q", i, isText, p, w.text, w.payload)
		}
		m, err := ParseV2Frame(isText, p)
		if err != nil || m.Kind != w.kind {
			t.Fatalf("frame %d parsed as %+v, %v", i, m, err)
		}
	}
	if _, err := ParseV2Frame(false, []byte{0x01, 0}); !errors.Is(err, ErrProtocol) {
		t.Fatalf("short binary frame: %v", err)
	}

	th := newTestHub(t, hub.Config{}, replay.MemoryConfig{})
	v1 := dialT(t, transports[1], th.url(), Options{Resume: &Resume{From: FromLatest}}).(*Lean)
	if _, _, err := v1.NextFrame(ctx); !errors.Is(err, ErrProtocol) {
		t.Fatalf("NextFrame on v1: %v", err)
	}
}
