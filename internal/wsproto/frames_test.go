package wsproto

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"strconv"
	"testing"

	"github.com/gobwas/ws"
)

// readFrame decodes one server frame with gobwas/ws, an independent decoder.
func readFrame(t *testing.T, r io.Reader) ws.Frame {
	t.Helper()
	h, err := ws.ReadHeader(r)
	if err != nil {
		t.Fatalf("ReadHeader: %v", err)
	}
	if h.Length > 16<<20 { // the frames here are our own: a few MiB at most
		t.Fatalf("frame of %d bytes", h.Length)
	}
	f := ws.Frame{Header: h, Payload: make([]byte, h.Length)}
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		t.Fatalf("frame payload: %v", err)
	}
	if !f.Header.Fin || f.Header.Masked || f.Header.Rsv != 0 {
		t.Fatalf("header %+v: server frames are final, unmasked, without RSV bits", f.Header)
	}
	if int64(len(f.Payload)) != f.Header.Length {
		t.Fatalf("payload %d bytes, header says %d", len(f.Payload), f.Header.Length)
	}
	return f
}

var frameLengths = []int{0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20}

func payloadOf(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i>>8)
	}
	return p
}

func TestAppendFrame(t *testing.T) {
	for _, n := range frameLengths {
		for _, op := range []ws.OpCode{ws.OpText, ws.OpBinary, ws.OpPing, ws.OpClose} {
			if op.IsControl() && n > 125 {
				continue
			}
			t.Run(strconv.Itoa(int(op))+"/"+strconv.Itoa(n), func(t *testing.T) {
				p := payloadOf(n)
				b := AppendFrame([]byte("prefix"), op, p)
				if !bytes.HasPrefix(b, []byte("prefix")) {
					t.Fatal("dst prefix lost")
				}
				hdr := len(b) - len("prefix") - n
				if hdr > MaxFrameHeader || hdr != ws.HeaderSize(ws.Header{Length: int64(n)}) {
					t.Fatalf("header of %d bytes for %d", hdr, n)
				}
				r := bytes.NewReader(b[len("prefix"):])
				f := readFrame(t, r)
				if f.Header.OpCode != op || !bytes.Equal(f.Payload, p) || r.Len() != 0 {
					t.Fatalf("op %v, %d bytes, %d left", f.Header.OpCode, len(f.Payload), r.Len())
				}
			})
		}
	}
}

func TestRecordFrames(t *testing.T) {
	cases := []struct {
		p int32
		o int64
	}{{0, 0}, {7, 41}, {math.MaxInt32, math.MaxInt64}, {1023, 9007199254740993}}
	for _, n := range frameLengths {
		for _, c := range cases {
			t.Run(strconv.Itoa(n)+"/"+strconv.FormatInt(c.o, 10), func(t *testing.T) {
				value := payloadOf(n)
				frames, at := RecordFrames(c.p, c.o, value)
				if !bytes.Equal(frames[at:], value) || at+n != len(frames) {
					t.Fatalf("valueAt %d does not point at the value", at)
				}
				r := bytes.NewReader(frames)
				cur := readFrame(t, r)
				bin := readFrame(t, r)
				if r.Len() != 0 {
					t.Fatalf("%d trailing bytes", r.Len())
				}
				if cur.Header.OpCode != ws.OpText || bin.Header.OpCode != ws.OpBinary {
					t.Fatalf("opcodes %v %v", cur.Header.OpCode, bin.Header.OpCode)
				}
				want := `{"type":"cursor","partition":` + strconv.Itoa(int(c.p)) +
					`,"offset":"` + strconv.FormatInt(c.o, 10) + `"}`
				if string(cur.Payload) != want {
					t.Fatalf("cursor %s, want %s", cur.Payload, want)
				}
				if !bytes.Equal(bin.Payload, value) {
					t.Fatal("binary frame is not the value byte for byte")
				}
			})
		}
	}
}

func TestSkippedFrame(t *testing.T) {
	f := readFrame(t, bytes.NewReader(SkippedFrame(3, math.MaxInt64, "bad_zstd")))
	if f.Header.OpCode != ws.OpText {
		t.Fatalf("op %v", f.Header.OpCode)
	}
	var got map[string]any
	if err := json.Unmarshal(f.Payload, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": "skipped", "partition": float64(3), "offset": "9223372036854775807", "error_type": "bad_zstd"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestOffsetJSON(t *testing.T) {
	for _, o := range []int64{0, -1, 1, 41, 1<<53 + 1, math.MaxInt64, math.MinInt64} {
		b, err := json.Marshal(Offset(o))
		if err != nil || string(b) != `"`+strconv.FormatInt(o, 10)+`"` {
			t.Fatalf("Offset(%d) = %s, %v", o, b, err)
		}
	}
	b, _ := json.Marshal(Offsets{0: 5, 12: math.MaxInt64})
	if string(b) != `{"0":"5","12":"9223372036854775807"}` {
		t.Fatalf("Offsets = %s", b)
	}
	b, _ = json.Marshal(ReplayComplete{Type: TypeReplayComplete, LastOffsetsByPartition: Offsets{}, Mode: "latest"})
	if string(b) != `{"type":"replay_complete","totalReplayed":0,"lastOffsetsByPartition":{},"capped":false,"mode":"latest"}` {
		t.Fatalf("replay_complete = %s", b)
	}
}

// TestServerFrames decodes every server message through Frame and checks the
// field names and JSON types the dashboard reads.
func TestServerFrames(t *testing.T) {
	decode := func(msg any) map[string]any {
		t.Helper()
		f := readFrame(t, bytes.NewReader(Frame(msg)))
		var m map[string]any
		if f.Header.OpCode != ws.OpText || json.Unmarshal(f.Payload, &m) != nil {
			t.Fatalf("not a JSON text frame: %q", f.Payload)
		}
		return m
	}
	g := decode(NewGap(2, 10, 9223372036854775806))
	if g["type"] != "gap" || g["fromOffset"] != "10" || g["toOffset"] != "9223372036854775806" ||
		g["partition"] != float64(2) || g["reason"] != "retention" || g["severity"] != "critical" || g["message"] == "" {
		t.Fatalf("gap = %v", g)
	}
	for _, k := range []string{"type", "count", "partition", "fromOffset", "toOffset", "severity", "reason", "message"} {
		if _, ok := g[k]; !ok {
			t.Fatalf("gap lacks %s", k)
		}
	}
	cs := decode(CursorStale{Type: TypeCursorStale, Partition: 1, Requested: 5, Oldest: 100, Message: "m"})
	if cs["requested"] != "5" || cs["oldest"] != "100" || cs["partition"] != float64(1) {
		t.Fatalf("cursor_stale = %v", cs)
	}
	d := decode(Disconnect{Type: TypeDisconnect, Reason: "backpressure", LagInWindow: 3, CumulativeLag: 4, Threshold: 5, WindowSecs: 6, Message: "m"})
	for k, v := range map[string]any{"reason": "backpressure", "lag_in_window": float64(3), "cumulative_lag": float64(4), "threshold": float64(5), "window_secs": float64(6)} {
		if d[k] != v {
			t.Fatalf("disconnect %s = %v", k, d[k])
		}
	}
	cr := decode(CursorResetComplete{Type: TypeCursorResetComplete, LatestOffsetsByPartition: Offsets{3: 9}, TotalPartitions: 1})
	for _, k := range []string{"latestOffsetsByPartition", "bufferCleared", "truncated", "totalPartitions", "message"} {
		if _, ok := cr[k]; !ok {
			t.Fatalf("cursor_reset_complete lacks %s: %v", k, cr)
		}
	}
	e := decode(NewError(CodeInvalidJSON, "bad"))
	if e["type"] != "error" || e["code"] != "INVALID_JSON" || e["message"] != "bad" {
		t.Fatalf("error = %v", e)
	}
	if _, ok := e["entries"]; ok {
		t.Fatal("entries present without entries")
	}
	if p := readFrame(t, bytes.NewReader(PongFrame)); string(p.Payload) != `{"type":"pong"}` {
		t.Fatalf("pong = %s", p.Payload)
	}
}

func TestGapSeverity(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{{1, "info"}, {9, "info"}, {10, "warning"}, {99, "warning"}, {100, "critical"}, {math.MaxInt64, "critical"}} {
		if got := GapSeverity(tc.n); got != tc.want {
			t.Errorf("GapSeverity(%d) = %s, want %s", tc.n, got, tc.want)
		}
		if g := NewGap(0, 5, 5+tc.n-1); g.Count != tc.n || g.Severity != tc.want {
			t.Errorf("NewGap of %d: %+v", tc.n, g)
		}
	}
}
