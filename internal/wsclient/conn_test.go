package wsclient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/dashflow/dashstream-gateway/internal/hub"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

func TestReplayThenLive(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			th := newTestHub(t, hub.Config{}, replay.MemoryConfig{})
			th.publish(0, 0, 10)
			th.publish(1, 100, 5)
			c := dialT(t, tr, th.url(), Options{Resume: &Resume{Offsets: map[int32]int64{0: 4}}})
			recs, ctrl := readUntil(t, c, isType("replay_complete"))
			checkRecords(t, recs, 0, 5, 9)
			checkRecords(t, recs, 1, 100, 104)
			var rc ReplayComplete
			if err := ctrl[len(ctrl)-1].Decode(&rc); err != nil || rc.TotalReplayed != 10 || rc.Mode != "cursor" {
				t.Fatalf("replay_complete = %+v, %v", rc, err)
			}
			if rc.LastOffsetsByPartition[0] != 9 || rc.LastOffsetsByPartition[1] != 104 {
				t.Fatalf("lastOffsetsByPartition = %v", rc.LastOffsetsByPartition)
			}
			th.publish(0, 10, 3)
			checkRecords(t, readRecords(t, c, 3), 0, 10, 12)
		})
	}
}

func TestFromLatestAndEarliest(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			th := newTestHub(t, hub.Config{}, replay.MemoryConfig{})
			th.publish(0, 0, 5)
			latest := dialT(t, tr, th.url(), Options{Resume: &Resume{From: FromLatest}})
			recs, _ := readUntil(t, latest, isType("replay_complete"))
			earliest := dialT(t, tr, th.url(), Options{Resume: &Resume{From: FromEarliest}})
			erecs, _ := readUntil(t, earliest, isType("replay_complete"))
			if len(recs) != 0 {
				t.Fatalf("latest replayed %d records", len(recs))
			}
			checkRecords(t, erecs, 0, 0, 4)
			th.publish(0, 5, 1)
			checkRecords(t, readRecords(t, latest, 1), 0, 5, 5)
		})
	}
}

func TestControlFrames(t *testing.T) {
	th := newTestHub(t, hub.Config{}, replay.MemoryConfig{})
	th.publish(0, 0, 3)
	c, err := Dial(context.Background(), th.url(), Options{Resume: &Resume{From: FromLatest}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readUntil(t, c, isType("replay_complete"))
	if err := c.Send(context.Background(), map[string]string{"type": "ping"}); err != nil {
		t.Fatal(err)
	}
	readUntil(t, c, isType("pong"))
	if err := c.Send(context.Background(), map[string]string{"type": "nonsense"}); err != nil {
		t.Fatal(err)
	}
	_, ctrl := readUntil(t, c, isType("error"))
	var e ErrorFrame
	if err := ctrl[0].Decode(&e); err != nil || e.Code != wsproto.CodeUnknownType {
		t.Fatalf("error frame %+v %v", e, err)
	}
}

// TestLeanAnswersPings keeps a lean client alive past the server's pong
// deadline: pings are answered while Next waits.
func TestLeanAnswersPings(t *testing.T) {
	th := newTestHub(t, hub.Config{PingInterval: 40 * time.Millisecond, SendTimeout: 100 * time.Millisecond}, replay.MemoryConfig{})
	c := dialT(t, transports[1], th.url(), Options{Resume: &Resume{From: FromLatest}})
	readUntil(t, c, isType("replay_complete"))
	go func() {
		time.Sleep(600 * time.Millisecond)
		th.publish(0, 0, 1)
	}()
	checkRecords(t, readRecords(t, c, 1), 0, 0, 0)
}

func TestStaleCursorGapThroughCursor(t *testing.T) {
	th := newTestHub(t, hub.Config{}, replay.MemoryConfig{PerPartition: 5})
	th.publish(0, 0, 20)
	cur := NewCursor()
	cur.Set(0, 2)
	c := dialT(t, transports[1], th.url(), Options{Resume: cur.Resume(FromCursor)})
	for {
		msg, err := c.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if msg.Kind == KindRecord {
			if v := cur.Apply(msg.Record); v != Applied {
				t.Fatalf("p%d@%d: verdict %d", msg.Record.Partition, msg.Record.Offset, v)
			}
			continue
		}
		if err := cur.ApplyControl(msg.Control); err != nil {
			t.Fatal(err)
		}
		if msg.Control.Type == "replay_complete" {
			break
		}
	}
	if last, _ := cur.Last(0); last != 19 || cur.Missing != 0 || cur.Announced != 12 {
		t.Fatalf("cursor last=%d missing=%d announced=%d", last, cur.Missing, cur.Announced)
	}
}

func TestHandshakeRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusForbidden)
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	for _, tr := range transports {
		_, err := tr.dial(context.Background(), url, Options{})
		var he *HandshakeError
		if !errors.As(err, &he) || he.Status != 403 || !he.Permanent() {
			t.Fatalf("%s: err = %v", tr.name, err)
		}
	}
}

// frame is one frame a scripted server sends.
type frame struct {
	op      ws.OpCode
	payload string
}

func cursorFrame(p, o string) frame {
	return frame{ws.OpText, `{"type":"cursor","partition":` + p + `,"offset":"` + o + `"}`}
}

// scriptServer upgrades and writes frames, then waits for the client to go.
func scriptServer(t *testing.T, frames ...frame) string {
	t.Helper()
	return rawServer(t, func(conn net.Conn) {
		var out []byte
		for _, f := range frames {
			out = wsproto.AppendFrame(out, f.op, []byte(f.payload))
		}
		conn.Write(out) // all in one write
	})
}

func TestPairing(t *testing.T) {
	bin := frame{ws.OpBinary, "value"}
	ping := frame{ws.OpPing, "x"}
	cases := []struct {
		name    string
		frames  []frame
		records int   // records returned before the error
		wantErr error // nil: a server close (1000) ends the script
	}{
		{"pair", []frame{cursorFrame("3", "41"), bin, {ws.OpClose, "\x03\xe8"}}, 1, &CloseError{}},
		{"ping between pair", []frame{cursorFrame("0", "0"), ping, bin, {ws.OpClose, "\x03\xe8"}}, 1, &CloseError{}},
		{"binary without cursor", []frame{bin}, 0, ErrProtocol},
		{"two cursors", []frame{cursorFrame("0", "1"), cursorFrame("0", "2"), bin}, 0, ErrProtocol},
		{"cursor then control", []frame{cursorFrame("0", "1"), {ws.OpText, `{"type":"pong"}`}}, 0, ErrProtocol},
		{"binary after pair", []frame{cursorFrame("0", "1"), bin, bin}, 1, ErrProtocol},
		{"malformed cursor", []frame{{ws.OpText, `{"type":"cursor","partition":-1,"offset":"x"}`}}, 0, ErrProtocol},
		{"not json", []frame{{ws.OpText, `hello`}}, 0, ErrProtocol},
	}
	for _, tc := range cases {
		for _, tr := range transports {
			t.Run(tc.name+"/"+tr.name, func(t *testing.T) {
				c := dialT(t, tr, scriptServer(t, tc.frames...), Options{})
				n, err := drain(c)
				var ce *CloseError
				if _, isClose := tc.wantErr.(*CloseError); isClose { //nolint:errorlint // tc.wantErr is the table's own value, never wrapped
					if !errors.As(err, &ce) || ce.Code != 1000 {
						t.Fatalf("err = %v, want close 1000", err)
					}
				} else if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if n != tc.records {
					t.Fatalf("%d records before the error, want %d", n, tc.records)
				}
			})
		}
	}
}

func drain(c nexter) (int, error) {
	n := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		msg, err := c.Next(ctx)
		cancel()
		if err != nil {
			return n, err
		}
		if msg.Kind == KindRecord {
			if string(msg.Record.Value) != "value" {
				return n, errors.New("bad value " + string(msg.Record.Value))
			}
			n++
		}
	}
}

func TestLeanNextHonoursContext(t *testing.T) {
	th := newTestHub(t, hub.Config{}, replay.MemoryConfig{})
	c := dialT(t, transports[1], th.url(), Options{Resume: &Resume{From: FromLatest}})
	readUntil(t, c, isType("replay_complete"))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("Next did not return when its context ended")
	}
}
