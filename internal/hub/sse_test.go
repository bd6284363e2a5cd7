package hub

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/sseclient"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

func TestSSECursorRoundTrip(t *testing.T) {
	var v cursorVec
	v.set(3, 99)
	v.set(0, -1)
	v.set(1, 1<<62)
	v.set(3, 100)
	id := string(v.appendID(nil, "ns-1"))
	if id != "c1~ns-1~0:-1,1:4611686018427387904,3:100" {
		t.Fatalf("id %q", id)
	}
	offs, ns, err := parseSSECursor(id)
	if err != nil || ns != "ns-1" || len(offs) != 3 || offs[0] != -1 || offs[1] != 1<<62 || offs[3] != 100 {
		t.Fatalf("parsed %v %q %v", offs, ns, err)
	}
	if offs, ns, err := parseSSECursor("c1~~"); err != nil || ns != "" || len(offs) != 0 {
		t.Fatalf("empty vector: %v %q %v", offs, ns, err)
	}
	for _, bad := range []string{"", "c1", "c2~ns~0:1", "c1~ns~0:1,", "c1~ns~0:1,0:2", "c1~ns~x:1", "c1~ns~0:-2",
		"c1~ns~-1:0", "c1~ns~0:9223372036854775808", "c1~ns~0", "c1~ns~" + strings.Repeat("1:1,", 20000) + "1:1"} {
		if _, _, err := parseSSECursor(bad); err == nil {
			t.Errorf("%.40q parsed", bad)
		}
	}
}

// recorder is a ResponseWriter that keeps what is written and flushes.
type recorder struct {
	hdr http.Header
	buf bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.hdr }
func (r *recorder) Write(p []byte) (int, error) { return r.buf.Write(p) }
func (r *recorder) WriteHeader(int)             {}
func (r *recorder) Flush()                      {}

// SetWriteDeadline is what net/http's response has (ResponseController
// answers a writer without one with a fresh error each time).
func (r *recorder) SetWriteDeadline(time.Time) error { return nil }

func newSSEHub(t testing.TB) *Hub {
	mem := replay.NewMemory(replay.MemoryConfig{PerPartition: 10000})
	h := New(Config{QueueBytes: 1 << 30, Namespace: func() string { return "ns" }}, replay.NewTiers(mem, nil),
		&fakeTopo{hwm: map[int32]int64{}}, metrics.New(nil), slog.New(slog.DiscardHandler))
	t.Cleanup(func() { h.Shutdown(context.Background()) })
	return h
}

func newTestStream(h *Hub, w *recorder) *sseStream {
	s := h.newSSESession(auth.Identity{}, false)
	return &sseStream{s: s, w: w, rc: http.NewResponseController(w), ns: "ns"}
}

// TestSSETranscode: records become record events whose id is the whole
// vector after them, a skipped marker a skipped event with an id, a
// control frame an event of its type; the vector moves over what the
// batch passed.
func TestSSETranscode(t *testing.T) {
	h := newSSEHub(t)
	var recs []*replay.Record
	for o := range int64(3) {
		for p := range int32(2) {
			recs = append(recs, &replay.Record{Partition: p, Offset: o, Prev: o - 1, Value: []byte{byte(p), byte(o), 0xff}})
		}
	}
	recs = append(recs, &replay.Record{Partition: 1, Offset: 3, Prev: 2, Skipped: "decode_error"})
	h.Publish(recs)
	w := &recorder{hdr: http.Header{}}
	st := newTestStream(h, w)
	st.s.d.pos = map[int32]int64{0: 0, 1: -1}
	st.syncPositions()
	if _, cr, err := st.pump(context.Background()); cr != nil || err != nil {
		t.Fatalf("pump: %+v %v", cr, err)
	}
	st.transcode([][]byte{wsproto.Frame(wsproto.NewError(wsproto.CodeReplayTimeout, "x"))})
	if err := st.flush(); err != nil {
		t.Fatal(err)
	}
	r := sseclient.NewStream(&w.buf, "")
	var got []string
	for {
		ev, err := r.Next()
		if err != nil {
			break
		}
		line := ev.Type + " " + ev.ID
		if ev.Type == "record" {
			var d struct {
				Partition int32  `json:"partition"`
				Offset    string `json:"offset"`
				Value     string `json:"value"`
			}
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				t.Fatalf("data %s: %v", ev.Data, err)
			}
			v, _ := base64.StdEncoding.DecodeString(d.Value)
			line += " " + d.Offset + " " + base64.StdEncoding.EncodeToString(v)
		}
		got = append(got, line)
	}
	want := []string{
		"record c1~ns~0:1,1:-1 1 AAH/",
		"record c1~ns~0:2,1:-1 2 AAL/",
		"record c1~ns~0:2,1:0 0 AQD/",
		"record c1~ns~0:2,1:1 1 AQH/",
		"record c1~ns~0:2,1:2 2 AQL/",
		"skipped c1~ns~0:2,1:3",
		"error c1~ns~0:2,1:3",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r.LastEventID != "c1~ns~0:2,1:3" {
		t.Fatalf("last event id %q", r.LastEventID)
	}
}

// TestSSEPumpAllocatesNothing: once its buffers have grown, a live SSE
// stream turns pages of shared frames into events and writes them without
// allocating (ids and the records' shared base64 data are appended to one
// reused buffer).
func TestSSEPumpAllocatesNothing(t *testing.T) {
	const parts, perPart = 4, 5000
	h := newSSEHub(t)
	value := make([]byte, 512)
	var recs []*replay.Record
	for o := range int64(perPart) {
		for p := range int32(parts) {
			recs = append(recs, &replay.Record{Partition: p, Offset: o, Prev: o - 1, Value: value, TimestampUs: time.Now().UnixMicro()})
		}
	}
	h.Publish(recs)
	for _, r := range recs {
		r.Base64Frame(encodeBase64) // made once per record, by its first reader: not this client's cost
	}
	w := &recorder{hdr: http.Header{}}
	st := newTestStream(h, w)
	st.s.d.pos = map[int32]int64{0: -1, 1: -1, 2: -1, 3: -1}
	pump := func() {
		w.buf.Reset()
		if _, cr, err := st.pump(context.Background()); cr != nil || err != nil {
			t.Fatalf("pump: %+v %v", cr, err)
		}
	}
	pump()
	start := st.s.d.pos[0]
	if n := testing.AllocsPerRun(20, pump); n > 0.5 {
		t.Errorf("an SSE pump allocates %.1f times", n)
	}
	if st.s.d.pos[0] <= start {
		t.Fatal("the pumps delivered nothing")
	}
}

// TestSSEHeartbeatAndShutdown: an idle stream gets a comment line every
// heartbeat interval, and the hub's Shutdown ends it.
func TestSSEHeartbeatAndShutdown(t *testing.T) {
	defer func(d time.Duration) { sseHeartbeat = d }(sseHeartbeat)
	sseHeartbeat = 40 * time.Millisecond
	h := newSSEHub(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeSSE(w, r, auth.Identity{})
	}))
	defer srv.Close()
	st, err := sseclient.Dial(context.Background(), nil, srv.URL+"/sse", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if ev, err := st.Next(); err != nil || ev.Type != "replay_complete" {
		t.Fatalf("first event %q %v", ev.Type, err)
	}
	go func() {
		time.Sleep(400 * time.Millisecond)
		h.Publish([]*replay.Record{{Partition: 0, Offset: 0, Prev: -1, Value: []byte{1}}})
	}()
	if ev, err := st.Next(); err != nil || ev.Type != "record" {
		t.Fatalf("second event %q %v", ev.Type, err)
	}
	if st.Comments < 3 {
		t.Fatalf("%d heartbeat comments in 400 ms at one per 40 ms", st.Comments)
	}
	if h.Clients() != 1 {
		t.Fatalf("hub counts %d clients, want the SSE stream", h.Clients())
	}
	ended := make(chan error, 1)
	go func() {
		for {
			if _, err := st.Next(); err != nil {
				ended <- err
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown waited for the SSE stream: %v", err)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end at shutdown")
	}
}
