package hub

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/filter"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// msgSpec is one DashStream message for publishMsgs: an Event of thread at
// seq (tenant, event type), or, with batch, an EventBatch of several.
type msgSpec struct {
	thread string
	seq    uint64
	tenant string
	etype  dashstreampb.EventType
	typ    string    // "" event; "state_diff", "token_chunk"
	batch  []msgSpec // an EventBatch of these events
	full   bool      // a state_diff with full_state, a GRAPH_START with initial_state_json
}

func (m msgSpec) header() *dashstreampb.Header {
	return &dashstreampb.Header{ThreadId: m.thread, Sequence: m.seq, TenantId: m.tenant, TimestampUs: time.Now().UnixMicro()}
}

func (m msgSpec) event() *dashstreampb.Event {
	ev := &dashstreampb.Event{Header: m.header(), EventType: m.etype, NodeId: "n"}
	if m.etype == dashstreampb.EventType_EVENT_TYPE_GRAPH_START {
		ev.Attributes = map[string]*dashstreampb.AttributeValue{
			"graph_name": {Value: &dashstreampb.AttributeValue_StringValue{StringValue: "g"}}}
		if m.full {
			ev.Attributes["initial_state_json"] = &dashstreampb.AttributeValue{Value: &dashstreampb.AttributeValue_StringValue{StringValue: "{}"}}
		}
	}
	return ev
}

func (m msgSpec) encode(t *testing.T) []byte {
	t.Helper()
	return m.encodeB(t)
}

func (m msgSpec) encodeB(t testing.TB) []byte {
	t.Helper()
	msg := &dashstreampb.DashStreamMessage{}
	switch {
	case m.batch != nil:
		b := &dashstreampb.EventBatch{Header: m.header()}
		for _, e := range m.batch {
			b.Events = append(b.Events, e.event())
		}
		msg.Message = &dashstreampb.DashStreamMessage_EventBatch{EventBatch: b}
	case m.typ == "state_diff":
		diff := &dashstreampb.StateDiff{Header: m.header()}
		if m.full {
			diff.FullState = []byte(`{"n":1}`)
		}
		msg.Message = &dashstreampb.DashStreamMessage_StateDiff{StateDiff: diff}
	case m.typ == "token_chunk":
		msg.Message = &dashstreampb.DashStreamMessage_TokenChunk{TokenChunk: &dashstreampb.TokenChunk{Header: m.header(), Text: "tok"}}
	default:
		msg.Message = &dashstreampb.DashStreamMessage_Event{Event: m.event()}
	}
	v, err := dashstream.Encode(msg, dashstream.FramingPlain)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// publishMsgs publishes p's records from..from+len(msgs)-1 with the facts
// the consumer computes (kafka.Consumer.record) and returns them.
func (th *testHub) publishMsgs(t *testing.T, p int32, from int64, msgs ...msgSpec) []*replay.Record {
	t.Helper()
	dec := dashstream.NewDecoder(dashstream.DecoderConfig{})
	recs := make([]*replay.Record, len(msgs))
	for i, m := range msgs {
		o := from + int64(i)
		prev, ok := th.prev[p]
		if !ok {
			prev = o - 1
		}
		v := m.encode(t)
		d, err := dec.Decode(v)
		if err != nil {
			t.Fatal(err)
		}
		r := &replay.Record{Partition: p, Offset: o, Prev: prev, Value: v, Tenant: d.Tenant(),
			Type: uint8(d.Type()), EventTypes: d.EventTypes(), TimestampUs: time.Now().UnixMicro()}
		r.GraphName, r.FullState = d.RunFacts()
		for _, h := range d.Headers {
			r.Threads = append(r.Threads, replay.ThreadSeq{Thread: h.ThreadID, Sequence: h.Sequence})
		}
		recs[i] = r
		th.prev[p] = o
	}
	th.topo.mu.Lock()
	th.topo.hwm[p] = from + int64(len(msgs))
	th.topo.mu.Unlock()
	th.Publish(recs)
	return recs
}

// dialV2 dials offering the given subprotocols and checks that
// dashstream.v2 was selected.
func (th *testHub) dialV2(t *testing.T, url string, protocols ...string) *client {
	t.Helper()
	if url == "" {
		url = th.wsURL()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: protocols})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(16 << 20)
	t.Cleanup(func() { c.CloseNow() })
	if c.Subprotocol() != wsproto.SubprotocolV2 {
		t.Fatalf("subprotocol %q, want %s", c.Subprotocol(), wsproto.SubprotocolV2)
	}
	return &client{t: t, conn: c}
}

// v2Record is a record as a v2 client received it.
type v2Record struct {
	partition int32
	offset    int64
	value     []byte          // binary frames
	message   json.RawMessage // JSON frames
}

// readV2Until reads v2 frames until stop is true for a control frame. Every
// binary frame must be one whole record envelope; a JSON record frame must
// parse; no cursor frame may appear.
func (c *client) readV2Until(stop func(map[string]any) bool) ([]v2Record, []map[string]any) {
	c.t.Helper()
	return c.readV2(-1, stop)
}

// readV2 reads v2 frames until it has n records (n >= 0) or stop is true
// for a control frame.
func (c *client) readV2(n int, stop func(map[string]any) bool) ([]v2Record, []map[string]any) {
	c.t.Helper()
	var recs []v2Record
	var ctrl []map[string]any
	for n < 0 || len(recs) < n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		typ, b, err := c.conn.Read(ctx)
		cancel()
		if err != nil {
			c.t.Fatalf("read: %v (after %d records, controls %v)", err, len(recs), ctrl)
		}
		if typ == websocket.MessageBinary {
			r, err := wsproto.ParseRecordV2(b)
			if err != nil {
				c.t.Fatalf("binary frame: %v", err)
			}
			recs = append(recs, v2Record{partition: r.Partition, offset: r.Offset, value: bytes.Clone(r.Value)})
			continue
		}
		if r, ok, err := wsproto.ParseRecordJSON(b); ok || err != nil {
			if err != nil {
				c.t.Fatalf("JSON record frame %q: %v", b, err)
			}
			recs = append(recs, v2Record{partition: r.Partition, offset: r.Offset, message: bytes.Clone(r.Message)})
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			c.t.Fatalf("bad JSON frame %q: %v", b, err)
		}
		if m["type"] == "cursor" {
			c.t.Fatalf("a v2 connection got a cursor frame")
		}
		ctrl = append(ctrl, m)
		if stop != nil && stop(m) {
			return recs, ctrl
		}
	}
	return recs, ctrl
}

// TestV2BinaryRecords: a client offering dashstream.v2 gets it selected and
// receives one binary frame per record (tag, partition, offset, value),
// control frames as in v1; a client that does not offer it gets v1 from
// the same hub.
func TestV2BinaryRecords(t *testing.T) {
	th := newTestHub(t, Config{}, replay.MemoryConfig{})
	th.publish(0, 0, 3)
	th.publish(2, 0, 2)
	c := th.dialV2(t, "", wsproto.SubprotocolV2)
	c.send(map[string]any{"type": "resume", "from": "earliest"})
	recs, ctrl := c.readV2Until(isType("replay_complete"))
	got := map[int32][]int64{}
	for _, r := range recs {
		got[r.partition] = append(got[r.partition], r.offset)
		if want := "v-" + itoa(r.partition) + "-" + itoa64(r.offset); string(r.value) != want {
			t.Fatalf("value %q, want %q", r.value, want)
		}
	}
	if want := map[int32][]int64{0: {0, 1, 2}, 2: {0, 1}}; !mapsEqual(got, want) || len(ctrl) != 1 {
		t.Fatalf("records %v controls %v, want %v and replay_complete", got, ctrl, want)
	}
	th.publish(0, 3, 1)
	if live, ctrl := c.readV2(1, nil); live[0].partition != 0 || live[0].offset != 3 || len(ctrl) != 0 {
		t.Fatalf("live %+v %v", live, ctrl)
	}

	v1 := th.dial(t) // same hub, no subprotocol offered: v1 cursor and binary frames
	v1.send(map[string]any{"type": "resume", "from": "earliest"})
	if recs, _ := v1.readUntil(isType("replay_complete")); len(recs) != 6 {
		t.Fatalf("v1 client got %d records", len(recs))
	}
}

// TestV2JSONRecordsEncodedOnce: with "format":"json" a v2 client receives
// each record as a text frame holding the message in protobuf's canonical
// JSON mapping, and the JSON of a record is made once however many JSON
// clients receive it.
func TestV2JSONRecordsEncodedOnce(t *testing.T) {
	th := newTestHub(t, Config{}, replay.MemoryConfig{})
	recs := th.publishMsgs(t, 0, 0,
		msgSpec{thread: "a", seq: 1, etype: dashstreampb.EventType_EVENT_TYPE_NODE_START},
		msgSpec{thread: "a", seq: 2, typ: "state_diff"},
		msgSpec{thread: "b", seq: 1, batch: []msgSpec{{thread: "b", seq: 1}, {thread: "c", seq: 1}}})
	dec := dashstream.NewDecoder(dashstream.DecoderConfig{})
	for i := range 3 {
		c := th.dialV2(t, "", wsproto.SubprotocolV2)
		c.send(map[string]any{"type": "resume", "from": "earliest", "format": "json"})
		got, _ := c.readV2Until(isType("replay_complete"))
		if len(got) != len(recs) {
			t.Fatalf("client %d: %d records, want %d", i, len(got), len(recs))
		}
		for j, r := range got {
			want, err := dec.ProtoJSON(recs[j].Value)
			if err != nil {
				t.Fatal(err)
			}
			if r.offset != recs[j].Offset || !bytes.Equal(r.message, want) {
				t.Fatalf("client %d record %d: offset %d message %s, want %d %s", i, j, r.offset, r.message, recs[j].Offset, want)
			}
		}
	}
	if n := testutil.ToFloat64(th.m.JSONEncodes); n != float64(len(recs)) {
		t.Fatalf("%v JSON encodes for %d records and 3 clients, want one per record", n, len(recs))
	}
}

// filterFixture publishes a mix over two partitions: three threads, three
// message types, two event types, and EventBatches spanning threads.
func filterFixture(t *testing.T, th *testHub, from int64) []*replay.Record {
	t.Helper()
	start := dashstreampb.EventType_EVENT_TYPE_NODE_START
	end := dashstreampb.EventType_EVENT_TYPE_NODE_END
	seq := uint64(from*10 + 1)
	var all []*replay.Record
	all = append(all, th.publishMsgs(t, 0, from,
		msgSpec{thread: "a", seq: seq, etype: start},
		msgSpec{thread: "b1", seq: seq, etype: end},
		msgSpec{thread: "a", seq: seq + 1, typ: "state_diff"},
		msgSpec{thread: "c", seq: seq, typ: "token_chunk"},
		msgSpec{thread: "b1", seq: seq + 1, batch: []msgSpec{{thread: "a", seq: seq + 2, etype: start}, {thread: "b2", seq: seq, etype: end}}},
	)...)
	all = append(all, th.publishMsgs(t, 1, from,
		msgSpec{thread: "b2", seq: seq + 1, etype: start},
		msgSpec{thread: "c", seq: seq + 1, batch: []msgSpec{{thread: "c", seq: seq + 2, etype: end}}},
		msgSpec{thread: "a", seq: seq + 3, etype: end},
	)...)
	return all
}

// matching lists the offsets of recs that spec admits, per partition,
// after the cursors.
func matching(t *testing.T, spec filter.Spec, recs []*replay.Record, after map[int32]int64) map[int32][]int64 {
	t.Helper()
	f, err := filter.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32][]int64{}
	for _, r := range recs {
		if a, ok := after[r.Partition]; ok && r.Offset <= a {
			continue
		}
		if f.MatchRecord(r) {
			out[r.Partition] = append(out[r.Partition], r.Offset)
		}
	}
	return out
}

// readFiltered reads a resume's records up to replay_complete (v1 or v2)
// and returns them per partition with the replay_complete.
func readFiltered(c *client, v2 bool) (map[int32][]int64, map[string]any) {
	c.t.Helper()
	got := map[int32][]int64{}
	var ctrl []map[string]any
	if v2 {
		var recs []v2Record
		recs, ctrl = c.readV2Until(isType("replay_complete"))
		for _, r := range recs {
			got[r.partition] = append(got[r.partition], r.offset)
		}
	} else {
		var recs []received
		recs, ctrl = c.readUntil(isType("replay_complete"))
		for _, r := range recs {
			got[r.partition] = append(got[r.partition], r.offset)
		}
	}
	for _, m := range ctrl {
		if m["type"] != "replay_complete" {
			c.t.Fatalf("control frame %v: a filter must cause no gap, skipped or error", m)
		}
	}
	return got, ctrl[len(ctrl)-1]
}

// readLive reads n live records and then checks that no other frame
// follows within quiet (a read that times out closes the connection).
func readLive(c *client, v2 bool, n int, quiet time.Duration) map[int32][]int64 {
	c.t.Helper()
	got := map[int32][]int64{}
	if v2 {
		recs, ctrl := c.readV2(n, nil)
		for _, r := range recs {
			got[r.partition] = append(got[r.partition], r.offset)
		}
		if len(ctrl) > 0 {
			c.t.Fatalf("live control frames %v", ctrl)
		}
	} else if n > 0 {
		recs, ctrl := c.readRecords(n)
		for _, r := range recs {
			got[r.partition] = append(got[r.partition], r.offset)
		}
		if len(ctrl) > 0 {
			c.t.Fatalf("live control frames %v", ctrl)
		}
	}
	if f, err := c.read(quiet); err == nil {
		c.t.Fatalf("an extra frame arrived: %v %q", f.json, f.binary)
	}
	return got
}

func count(m map[int32][]int64) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}

// TestFilterExactness: for each filter kind, in v1 and v2, a filtered
// client receives every matching record once and nothing else — in the
// replay, live, and after a reconnect that resumes from the positions it
// was given — with replay_complete reporting the heads as for anyone and no
// gap or skipped frame for what it was not sent (also with the thread and
// type indexes off, when every filter scans). An EventBatch matches when
// any one of its inner events matches (and is sent whole).
func TestFilterExactness(t *testing.T) {
	cases := []struct {
		name string
		spec filter.Spec
		path string
		scan bool // Config.ScanFilters: the thread and type indexes off
	}{
		{"threads", filter.Spec{Threads: []string{"a"}}, pathIndex, false},
		{"two threads", filter.Spec{Threads: []string{"b2", "c"}}, pathIndex, false},
		{"thread_prefix", filter.Spec{ThreadPrefix: "b"}, pathScan, false},
		{"types", filter.Spec{Types: []string{"state_diff", "token_chunk"}}, pathTypeIndex, false},
		{"event_types", filter.Spec{EventTypes: []string{"NODE_END"}}, pathTypeIndex, false},
		{"types and event_types", filter.Spec{Types: []string{"event_batch"}, EventTypes: []string{"NODE_END"}}, pathTypeIndex, false},
		{"thread_prefix and types", filter.Spec{ThreadPrefix: "b", Types: []string{"event"}}, pathTypeIndex, false},
		{"batch inner event", filter.Spec{Threads: []string{"b2"}, EventTypes: []string{"NODE_END"}}, pathIndex, false},
		{"nothing matches", filter.Spec{Threads: []string{"zz"}}, pathIndex, false},
		{"threads, index off", filter.Spec{Threads: []string{"a"}}, pathScan, true},
		{"two threads, index off", filter.Spec{Threads: []string{"b2", "c"}}, pathScan, true},
		{"types, index off", filter.Spec{Types: []string{"state_diff", "token_chunk"}}, pathScan, true},
		{"event_types, index off", filter.Spec{EventTypes: []string{"NODE_END"}}, pathScan, true},
	}
	for _, tc := range cases {
		for _, v2 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/v2=%v", tc.name, v2), func(t *testing.T) {
				th := newTestHub(t, Config{ScanFilters: tc.scan}, replay.MemoryConfig{})
				recs := filterFixture(t, th, 0)
				dial := func() *client {
					if v2 {
						return th.dialV2(t, "", wsproto.SubprotocolV2)
					}
					return th.dial(t)
				}
				c := dial()
				c.send(map[string]any{"type": "resume", "from": "earliest", "filter": tc.spec})
				got, rc := readFiltered(c, v2)
				if want := matching(t, tc.spec, recs, nil); !mapsEqual(got, want) {
					t.Fatalf("replay %v, want %v", got, want)
				}
				heads := th.Heads()
				last := rc["lastOffsetsByPartition"].(map[string]any)
				if last["0"] != itoa64(heads[0]) || last["1"] != itoa64(heads[1]) {
					t.Fatalf("replay_complete %v, want the heads %v", rc, heads)
				}

				live := filterFixture(t, th, 10)
				want := matching(t, tc.spec, live, nil)
				if got := readLive(c, v2, count(want), 300*time.Millisecond); !mapsEqual(got, want) {
					t.Fatalf("live %v, want %v", got, want)
				}
				c.conn.Close(websocket.StatusNormalClosure, "")

				cursor := th.Heads() // what the client holds after the live records
				more := filterFixture(t, th, 20)
				c = dial()
				c.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{
					"0": itoa64(cursor[0]), "1": itoa64(cursor[1])}, "filter": tc.spec})
				got, _ = readFiltered(c, v2)
				if want := matching(t, tc.spec, more, cursor); !mapsEqual(got, want) {
					t.Fatalf("after the reconnect %v, want %v", got, want)
				}
				scanned := testutil.ToFloat64(th.m.FilterRecordsScanned.WithLabelValues(tc.path))
				matched := testutil.ToFloat64(th.m.FilterRecordsMatched.WithLabelValues(tc.path))
				if tc.path != pathScan && scanned >= float64(len(recs)*3) {
					t.Errorf("%s path scanned %v records of %d published", tc.path, scanned, len(recs)*3)
				}
				for _, path := range []string{pathIndex, pathTypeIndex} {
					if indexed := testutil.ToFloat64(th.m.FilterRecordsScanned.WithLabelValues(path)); tc.scan && indexed != 0 {
						t.Errorf("index off: %v records read through %s", indexed, path)
					}
				}
				if matched > scanned || (tc.path == pathScan && scanned == 0) {
					t.Errorf("path %s: matched %v of %v scanned", tc.path, matched, scanned)
				}
			})
		}
	}
}

// TestFilterTenantCannotBeWidened: the tenant of a client's token narrows
// any filter it sends; a filter naming another tenant's threads gets
// nothing of them. Over v2 with the browser idiom "dashstream.v2, bearer,
// <token>" the server selects dashstream.v2.
func TestFilterTenantCannotBeWidened(t *testing.T) {
	th := newTestHub(t, Config{}, replay.MemoryConfig{})
	authn, err := auth.NewAuthenticator(auth.AuthConfig{JWTSecret: tenantSecret, TenantClaim: "tenant"})
	if err != nil {
		t.Fatal(err)
	}
	th.publishMsgs(t, 0, 0,
		msgSpec{thread: "mine", seq: 1, tenant: "x"},
		msgSpec{thread: "theirs", seq: 1, tenant: "y"},
		msgSpec{thread: "mine", seq: 2, tenant: "x"},
		msgSpec{thread: "theirs", seq: 2, tenant: "y"})
	c := th.dialV2(t, th.authURL(t, authn), wsproto.SubprotocolV2, "bearer", tenantToken(t, "x"))
	c.send(map[string]any{"type": "resume", "from": "earliest", "filter": map[string]any{"threads": []string{"theirs", "mine"}}})
	got, rc := readFiltered(c, true)
	if want := map[int32][]int64{0: {0, 2}}; !mapsEqual(got, want) {
		t.Fatalf("tenant x got %v, want %v only", got, want)
	}
	if rc["lastOffsetsByPartition"].(map[string]any)["0"] != "3" {
		t.Fatalf("replay_complete %v", rc)
	}
	c.send(map[string]any{"type": "resume", "from": "earliest", "filter": map[string]any{"threads": []string{"theirs"}}})
	if got, _ := readFiltered(c, true); len(got) != 0 {
		t.Fatalf("a filter on another tenant's thread got %v", got)
	}
}

// TestFilterRefused: a malformed filter or one over the limits is answered
// with an error frame and the resume is refused — the connection stays, no
// implicit "latest" starts, and a corrected resume then works.
func TestFilterRefused(t *testing.T) {
	th := newTestHub(t, Config{ResumeWait: 100 * time.Millisecond}, replay.MemoryConfig{})
	th.publish(0, 0, 3) // thread t0
	th.publish(1, 0, 2) // thread t1
	many := make([]string, filter.MaxThreads+1)
	for i := range many {
		many[i] = fmt.Sprintf("t%d", i)
	}
	for _, tc := range []struct {
		filter any
		code   string
	}{
		{"threads", wsproto.CodeFilterInvalid},
		{map[string]any{"thread": []string{"a"}}, wsproto.CodeFilterInvalid},
		{map[string]any{"types": []string{"no_such_type"}}, wsproto.CodeFilterInvalid},
		{map[string]any{"threads": []string{}}, wsproto.CodeFilterInvalid},
		{map[string]any{"threads": many}, wsproto.CodeFilterTooManyThreads},
	} {
		c := th.dial(t)
		c.send(map[string]any{"type": "resume", "from": "earliest", "filter": tc.filter})
		f, err := c.read(5 * time.Second)
		if err != nil || f.json["type"] != "error" || f.json["code"] != tc.code {
			t.Fatalf("filter %v: %v %v, want error %s", tc.filter, f.json, err, tc.code)
		}
		time.Sleep(300 * time.Millisecond) // past ResumeWait: no implicit latest starts
		c.send(map[string]any{"type": "ping"})
		if f, err := c.read(5 * time.Second); err != nil || f.json["type"] != "pong" {
			t.Fatalf("filter %v: then %v %v, want only the pong", tc.filter, f.json, err)
		}
		c.send(map[string]any{"type": "resume", "from": "earliest", "filter": map[string]any{"threads": []string{"t1"}}})
		if recs, _ := c.readUntil(isType("replay_complete")); !slices.Equal(receivedOffsets(recs), []int64{0, 1}) || recs[0].partition != 1 {
			t.Fatalf("filter %v: the corrected resume got %v", tc.filter, recs)
		}
	}
}

func receivedOffsets(recs []received) []int64 {
	var out []int64
	for _, r := range recs {
		out = append(out, r.offset)
	}
	return out
}

// TestUnwrittenEndsOnAFrameBoundary: after a write cut short, what remains
// of the frame it stopped in goes out first — also when a v2 record's head
// and value are two buffers.
func TestUnwrittenEndsOnAFrameBoundary(t *testing.T) {
	v1 := (&replay.Record{Partition: 0, Offset: 7, Value: []byte("value-1")})
	v1.EncodeFrames()
	v2 := &replay.Record{Partition: 1, Offset: 9, Value: bytes.Repeat([]byte("x"), 300)}
	v2.EncodeFrames()
	head := v2.V2Head()
	ctl := wsproto.PongFrame
	bufs := [][]byte{v1.Frame, head, v2.Value, ctl}
	join := func(b [][]byte) []byte { return bytes.Join(b, nil) }
	total := int64(len(join(bufs)))
	for n := int64(0); n <= total; n++ {
		rest := join(unwritten(bufs, n))
		stream := append(join(bufs)[:n:n], rest...)
		// The stream must end on a frame boundary: it is a prefix of the
		// whole that ends where one of its frames ends.
		ends := []int64{0, int64(len(v1.Frame)), int64(len(v1.Frame) + len(head) + len(v2.Value)), total}
		if !slices.Contains(ends, int64(len(stream))) {
			t.Fatalf("cut at %d: %d bytes then, not a frame boundary %v", n, len(stream), ends)
		}
		if int64(len(stream)) < n {
			t.Fatalf("cut at %d: stream shrank", n)
		}
	}
	if got := binary.BigEndian.Uint64(head[len(head)-8:]); got != 9 {
		t.Fatalf("v2 head offset %d", got)
	}
}

// TestJoinAtCheckpoint: a resume from "latest" with join "checkpoint" first
// replays every active thread from its latest full-state record (a
// GRAPH_START with the initial state, a full StateDiff) up to the heads —
// nothing of a finished run, of a run without a full state, or of another
// thread before the heads — then replay_complete at the heads and live
// delivery of everything. WEBSOCKET_LATEST_JOIN=checkpoint does the same
// for a v1 "latest"; a filter narrows the join to its threads.
func TestJoinAtCheckpoint(t *testing.T) {
	start := dashstreampb.EventType_EVENT_TYPE_GRAPH_START
	node := dashstreampb.EventType_EVENT_TYPE_NODE_START
	for _, tc := range []struct {
		name   string
		v2     bool
		resume map[string]any
		cfg    Config
		want   map[int32][]int64
	}{
		{"v2 join", true, map[string]any{"type": "resume", "from": "latest", "join": "checkpoint"}, Config{},
			map[int32][]int64{0: {2, 3, 5}, 1: {1, 2, 4}}},
		{"v1 configured", false, map[string]any{"type": "resume", "from": "latest"}, Config{LatestJoin: "checkpoint"},
			map[int32][]int64{0: {2, 3, 5}, 1: {1, 2, 4}}},
		{"v2 filtered", true, map[string]any{"type": "resume", "from": "latest", "join": "checkpoint",
			"filter": map[string]any{"threads": []string{"r2"}}}, Config{}, map[int32][]int64{1: {1, 2, 4}}},
		{"v1 not configured", false, map[string]any{"type": "resume", "from": "latest"}, Config{}, map[int32][]int64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := newTestHub(t, tc.cfg, replay.MemoryConfig{})
			th.publishMsgs(t, 0, 0,
				msgSpec{thread: "r1", seq: 1, etype: start, full: true},                             // 0: an older full state of r1
				msgSpec{thread: "done", seq: 1, etype: start, full: true},                           // 1
				msgSpec{thread: "r1", seq: 2, etype: start, full: true},                             // 2: r1's latest full state
				msgSpec{thread: "r1", seq: 3, etype: node},                                          // 3
				msgSpec{thread: "done", seq: 2, etype: dashstreampb.EventType_EVENT_TYPE_GRAPH_END}, // 4: finished
				msgSpec{thread: "r1", seq: 4, etype: node})                                          // 5
			th.publishMsgs(t, 1, 0,
				msgSpec{thread: "r2", seq: 1, etype: start},                  // 0: no initial state
				msgSpec{thread: "r2", seq: 2, typ: "state_diff", full: true}, // 1: r2's full state
				msgSpec{thread: "r2", seq: 3, etype: node},                   // 2
				msgSpec{thread: "nofull", seq: 1, etype: node},               // 3: never a full state
				msgSpec{thread: "r2", seq: 4, typ: "state_diff"})             // 4: a partial diff
			var c *client
			if tc.v2 {
				c = th.dialV2(t, "", wsproto.SubprotocolV2)
			} else {
				c = th.dial(t)
			}
			c.send(tc.resume)
			got, rc := readFiltered(c, tc.v2)
			if !mapsEqual(got, tc.want) {
				t.Fatalf("joined %v, want %v", got, tc.want)
			}
			last := rc["lastOffsetsByPartition"].(map[string]any)
			if last["0"] != "5" || last["1"] != "4" || rc["mode"] != "latest" || int(rc["totalReplayed"].(float64)) != count(tc.want) {
				t.Fatalf("replay_complete %v", rc)
			}
			th.publishMsgs(t, 0, 6, msgSpec{thread: "r2", seq: 5, etype: node})
			if live := readLive(c, tc.v2, 1, 200*time.Millisecond); !mapsEqual(live, map[int32][]int64{0: {6}}) {
				t.Fatalf("live %v", live)
			}
		})
	}
}
