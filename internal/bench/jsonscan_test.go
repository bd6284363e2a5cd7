package bench

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// gatewayMessage is the "message" the gateway writes for a bench record of
// thread with timestamp ts: dashstream's canonical JSON of the encoded
// record, as the hub makes it.
func gatewayMessage(t testing.TB, size int, thread string, ts int64) []byte {
	t.Helper()
	rb, err := newRecordBuilder(size)
	if err != nil {
		t.Fatal(err)
	}
	v, err := rb.build(thread, 7, ts)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := dashstream.NewDecoder(dashstream.DecoderConfig{}).ProtoJSON(v)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestScanRecordJSON: every form of record frame the gateway's encoder
// writes is read, and read as encoding/json reads it.
func TestScanRecordJSON(t *testing.T) {
	bench := gatewayMessage(t, 512, "bench-p3", 1733100000000000)
	cases := []struct {
		name      string
		frame     string
		partition int32
		offset    int64
		timed     bool
		ts        int64
		thread    string // "-": none
	}{
		{"bench record", string(wsproto.AppendRecordJSON(nil, 3, 5120, bench)), 3, 5120, true, 1733100000000000, "bench-p3"},
		{"zero coordinates", string(wsproto.AppendRecordJSON(nil, 0, 0, bench)), 0, 0, true, 1733100000000000, "bench-p3"},
		{"largest coordinates", string(wsproto.AppendRecordJSON(nil, math.MaxInt32, math.MaxInt64, bench)), math.MaxInt32, math.MaxInt64, true, 1733100000000000, "bench-p3"},
		{"negative timestamp", `{"type":"record","partition":1,"offset":"2","message":{"event":{"header":{"timestampUs":"-42","threadId":"t"}}}}`, 1, 2, true, -42, "t"},
		{"smallest timestamp", `{"type":"record","partition":1,"offset":"2","message":{"event":{"header":{"timestampUs":"-9223372036854775808"}}}}`, 1, 2, true, math.MinInt64, "-"},
		{"escaped strings", `{"type":"record","partition":1,"offset":"2","message":{"event":{"header":{"timestampUs":"5","threadId":"t"},"nodeId":"a\"b\\\\","attributes":{"pad":{"stringValue":"\"\\\"\u00e9\n\\"}}}}}`, 1, 2, true, 5, "t"},
		{"escaped keys where nothing is read", `{"type":"record","partition":1,"offset":"2","message":{"event":{"header":{"timestampUs":"5"},"attributes":{"k\"ey\\":{"stringValue":"v"}}}}}`, 1, 2, true, 5, "-"},
		{"look-alike text in strings", `{"type":"record","partition":1,"offset":"2","message":{"event":{"header":{"timestampUs":"5","threadId":"offset:9,partition:7"},"nodeId":"\"partition\":7,\"offset\":\"8\",\"header\":{\"timestampUs\":\"1\"}"}}}`, 1, 2, true, 5, "offset:9,partition:7"},
		{"look-alike keys below the header", `{"type":"record","partition":1,"offset":"2","message":{"checkpoint":{"header":{"timestampUs":"5"},"state":{"offset":"9","partition":8,"type":"x","header":{"timestampUs":"7"}}}}}`, 1, 2, true, 5, "-"},
		{"members in another order", `{"message":{"event":{"header":{"threadId":"t","timestampUs":"5"}}},"offset":"2","partition":1,"type":"record"}`, 1, 2, true, 5, "t"},
		{"extra members", `{"type":"record","x":[1,-2.5e3,true,false,null,{"a":[]},"s"],"partition":1,"offset":"2","message":{"event":{"header":{"timestampUs":"5"}}},"y":{}}`, 1, 2, true, 5, "-"},
		{"whitespace between tokens", " {\n\t\"type\" : \"record\" ,\r\n \"partition\" : 1 , \"offset\" : \"2\" , \"message\" : { \"event\" : { \"header\" : { \"timestampUs\" : \"5\" , \"threadId\" : \"t\" } } } } \n", 1, 2, true, 5, "t"},
		{"no header", `{"type":"record","partition":1,"offset":"2","message":{"event":{"nodeId":"n"}}}`, 1, 2, false, 0, "-"},
		{"header without timestamp", `{"type":"record","partition":1,"offset":"2","message":{"event":{"header":{"threadId":"t"}}}}`, 1, 2, false, 0, "t"},
		{"empty message", `{"type":"record","partition":1,"offset":"2","message":{}}`, 1, 2, false, 0, "-"},
		{"body not an object", `{"type":"record","partition":1,"offset":"2","message":{"event":null}}`, 1, 2, false, 0, "-"},
		{"offset with leading zeros", `{"type":"record","partition":1,"offset":"007","message":{}}`, 1, 7, false, 0, "-"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := scanRecordJSON([]byte(tc.frame))
			if err != nil {
				t.Fatalf("scan: %v", err)
			}
			th := "-"
			if rec.thread != nil {
				th = string(rec.thread)
			}
			if rec.partition != tc.partition || rec.offset != tc.offset || rec.timed != tc.timed || rec.ts != tc.ts || th != tc.thread {
				t.Fatalf("scanned %s", rec)
			}
			if err := verifyScan([]byte(tc.frame), rec); err != nil {
				t.Fatal(err)
			}
			// The protocol parser agrees on what the record is.
			m, err := wsclient.ParseV2Frame(true, []byte(tc.frame))
			if err != nil || m.Kind != wsclient.KindRecord || m.Record.Partition != rec.partition || m.Record.Offset != rec.offset || string(m.Record.JSON) != string(rec.message) {
				t.Fatalf("ParseV2Frame %+v %v", m.Record, err)
			}
		})
	}
}

// TestScanRecordJSONRefuses: a frame the scanner cannot read is refused,
// never guessed at: malformed and truncated frames, frames that are not
// records, and forms the gateway does not write (left to encoding/json).
func TestScanRecordJSONRefuses(t *testing.T) {
	valid := string(wsproto.AppendRecordJSON(nil, 3, 5120, gatewayMessage(t, 256, "bench-p3", 1733100000000000)))
	for n := range len(valid) {
		if _, err := scanRecordJSON([]byte(valid[:n])); !errors.Is(err, errScan) {
			t.Fatalf("prefix of %d bytes: %v", n, err)
		}
	}
	m := `"message":{"event":{"header":{"timestampUs":"5"}}}`
	for _, frame := range []string{
		string(wsproto.AppendRecordJSON(nil, 1, -1, []byte(`{}`))), // a negative offset: the encoder writes it, the protocol refuses it
		string(wsproto.AppendRecordJSON(nil, -1, 1, []byte(`{}`))), // a negative partition
		string(wsproto.AppendRecordJSON(nil, 1, math.MinInt64, []byte(`{}`))),
		`{"type":"record","partition":2147483648,"offset":"1",` + m + `}`, // partition out of range
		`{"type":"record","partition":1,"offset":"9223372036854775808",` + m + `}`,
		`{"type":"record","partition":1,"offset":"99999999999999999999",` + m + `}`,
		`{"type":"record","partition":1,"offset":"",` + m + `}`,
		`{"type":"record","partition":1,"offset":"1x",` + m + `}`,
		`{"type":"record","partition":1,"offset":"+1",` + m + `}`,
		`{"type":"record","partition":1,"offset":1,` + m + `}`, // a number: the protocol parser's business
		`{"type":"record","partition":1.0,"offset":"1",` + m + `}`,
		`{"type":"record","partition":01,"offset":"1",` + m + `}`,
		`{"type":"record","partition":"1","offset":"1",` + m + `}`,
		`{"type":"record","partition":1,"offset":"1","message":[]}`,
		`{"type":"record","partition":1,"offset":"1","message":"{}"}`,
		`{"type":"record","partition":1,"offset":"1"}`,
		`{"partition":1,"offset":"1",` + m + `}`,
		`{"type":"gap","partition":1,"offset":"1",` + m + `}`,
		`{"type":"replay_complete","totalReplayed":2}`,
		`{"type":"record","type":"record","partition":1,"offset":"1",` + m + `}`,
		`{"type":"record","partition":1,"offset":"1","offset":"2",` + m + `}`,
		`{"Type":"record","partition":1,"offset":"1",` + m + `}`,
		`{"type":"record","OFFSET":"3","partition":1,"offset":"1",` + m + `}`,
		`{"\u0074ype":"record","partition":1,"offset":"1",` + m + `}`,
		`{"type":"rec\u006frd","partition":1,"offset":"1",` + m + `}`,
		`{"type":"record","partition":1,"offset":"1",` + m + `}x`,
		`{"type":"record","partition":1,"offset":"1",` + m + `}}`,
		`{"type":"record","partition":1,"offset":"1",` + m + `,}`,
		`{"type":"record","partition":1,"offset":"1" ` + m + `}`,
		`{"type":"record","partition":1,"offset":"1",,` + m + `}`,
		`{"type":"record","partition":1,"offset":"1","x":tru,` + m + `}`,
		`{"type":"record","partition":1,"offset":"1","x":[1,],` + m + `}`,
		`{"type":"record","partition":1,"offset":"1","x":"\",` + m + `}`,
		`{"type":"record","partition":1,"offset":"1","x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `,` + m + `}`,
		`{"type":"record","partition":1,"offset":"1","message":{"event":{"header":{"timestampUs":"5"}},"checkpoint":{}}}`,
		`{"type":"record","partition":1,"offset":"1","message":{"event":{"header":{"timestampUs":"5"},"header":{}}}}`,
		`{"type":"record","partition":1,"offset":"1","message":{"event":{"header":{"timestampUs":"5","timestampUs":"6"}}}}`,
		`{"type":"record","partition":1,"offset":"1","message":{"event":{"header":{"timestampUs":5}}}}`,
		`{"type":"record","partition":1,"offset":"1","message":{"event":{"header":{"timestampUs":"5.0"}}}}`,
		`{"type":"record","partition":1,"offset":"1","message":{"event":{"header":{"timestampUs":"-"}}}}`,
		`{"type":"record","partition":1,"offset":"1","message":{"event":{"header":{"threadId":"t\u0031"}}}}`,
		`{"type":"record","partition":1,"offset":"1","message":{"event":{"header":{"threadId":"` + "\xff" + `"}}}}`,
		`{"type":"record","partition":1,"offset":"1","message":{"event":{"header":null}}}`,
		``, `{}`, `null`, `[]`, `"record"`,
	} {
		if rec, err := scanRecordJSON([]byte(frame)); !errors.Is(err, errScan) {
			t.Errorf("scanned %s from %s", rec, frame)
		}
	}
}

// TestFrameV2: a client accounts JSON record frames read by the scanner
// and by the full decode alike (timed, checked against its thread); a
// malformed record frame is an error, and so is one the sampled check
// finds misread.
func TestFrameV2(t *testing.T) {
	win := &window{}
	win.from.Store(100)
	win.to.Store(200)
	c := &client{cursor: wsclient.NewCursor(), win: win, thread: []byte("bench-t3"), want: func() int64 { return 3 }}
	c.cursor.Set(0, -1)
	frame := func(thread string, o, ts int64) []byte {
		return wsproto.AppendRecordJSON(nil, 0, o, gatewayMessage(t, 128, thread, ts))
	}
	now := time.Now().UnixMicro()
	for _, f := range [][]byte{
		frame("bench-t3", 0, 150),
		frame("bench-t4", 1, 150), // not its thread
		frame("bench-t3", 2, 250), // outside the window
		frame("bench-t3", 2, 150), // a duplicate
		[]byte(`{"type":"record","partition":0,"offset":3,"message":{"event":{"header":{"timestampUs":"160","threadId":"bench-t\u0033"}}}}`), // for encoding/json
		[]byte(`{"type":"gap","partition":0,"fromOffset":"4","toOffset":"4","count":1}`),
	} {
		if err := c.frameV2(true, f, now); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if c.foreign != 1 || c.applied.Load() != 3 || c.delivered != 2 || c.hist.Count() != 2 || c.cursor.Duplicates != 1 || c.gaps != 1 {
		t.Fatalf("foreign %d applied %d delivered %d timed %d duplicates %d gaps %d", c.foreign, c.applied.Load(), c.delivered, c.hist.Count(), c.cursor.Duplicates, c.gaps)
	}
	if c.scanned != 4 || c.fullDecodes != 1 {
		t.Fatalf("scanned %d, full decodes %d", c.scanned, c.fullDecodes)
	}
	for _, bad := range []string{
		`{"type":"record","partition":0,"offset":"5","message":{"event":{"header":{"timestampUs":"x"}}}}`,
		`{"type":"record","partition":0,"offset":"-5","message":{}}`,
		`{"type":"record","partition":0,"offset":"5","message":{"event":{}}`,
	} {
		if err := c.frameV2(true, []byte(bad), now); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
	// The sampled check: a frame the scanner reads but encoding/json
	// refuses (a raw control character in a string it skips) is caught
	// when it is the one checked.
	bad := []byte("{\"type\":\"record\",\"partition\":0,\"offset\":\"9\",\"message\":{\"event\":{\"nodeId\":\"a\x01\"}}}")
	if _, err := scanRecordJSON(bad); err != nil {
		t.Fatalf("scanner: %v", err)
	}
	c.scanned = verifyEvery // the next one is sampled
	if err := c.frameV2(true, bad, now); err == nil {
		t.Fatal("the sampled check let a malformed frame through")
	}
}

// TestScanRecordJSONAllocs: the scanner allocates nothing.
func TestScanRecordJSONAllocs(t *testing.T) {
	f := wsproto.AppendRecordJSON(nil, 3, 5120, gatewayMessage(t, 512, "bench-p3", 1733100000000000))
	if n := testing.AllocsPerRun(100, func() {
		if _, err := scanRecordJSON(f); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per scan", n)
	}
}

// TestFrameV2Allocs: a client's accounting of a JSON record frame (scan,
// cursor, histogram) allocates nothing; only the sampled check does.
func TestFrameV2Allocs(t *testing.T) {
	win := &window{}
	win.from.Store(0)
	win.to.Store(math.MaxInt64)
	c := &client{cursor: wsclient.NewCursor(), win: win, want: func() int64 { return 0 }}
	c.cursor.Set(3, -1)
	msg := gatewayMessage(t, 512, "bench-p3", 1733100000000000)
	frames := make([][]byte, 200)
	for i := range frames {
		frames[i] = wsproto.AppendRecordJSON(nil, 3, int64(i), msg)
	}
	i := 0
	c.scanned = 2 // the sampled check comes after these runs
	n := testing.AllocsPerRun(100, func() {
		if err := c.frameV2(true, frames[i], 1733100000001000); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if n != 0 || c.delivered != int64(i) {
		t.Fatalf("%v allocations per frame, %d of %d delivered", n, c.delivered, i)
	}
}

func BenchmarkScanRecordJSON(b *testing.B) {
	f := wsproto.AppendRecordJSON(nil, 3, 5120, gatewayMessage(b, 512, "bench-p3", 1733100000000000))
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		if _, err := scanRecordJSON(f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeRecordJSON(b *testing.B) {
	f := wsproto.AppendRecordJSON(nil, 3, 5120, gatewayMessage(b, 512, "bench-p3", 1733100000000000))
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		if _, _, err := decodeRecordJSON(f); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzScanRecordJSON: frames are untrusted input. The scanner never
// panics, and on a valid JSON frame it reads, it reads what encoding/json
// reads (decodeRecordJSON), and what the protocol parser reads.
func FuzzScanRecordJSON(f *testing.F) {
	f.Add([]byte(`{"type":"record","partition":1,"offset":"2","message":{"event":{"header":{"timestampUs":"5","threadId":"t"}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := scanRecordJSON(b)
		if err != nil {
			if !errors.Is(err, errScan) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if !json.Valid(b) {
			return // the sampled check's business (TestFrameV2)
		}
		if err := verifyScan(b, rec); err != nil {
			t.Fatalf("%v for %q", err, b)
		}
		m, err := wsclient.ParseV2Frame(true, b)
		if err != nil || m.Kind != wsclient.KindRecord || m.Record.Partition != rec.partition || m.Record.Offset != rec.offset {
			t.Fatalf("ParseV2Frame %+v %v, scanner %s for %q", m.Record, err, rec, b)
		}
	})
}

// FuzzScanEncodedRecord: whatever the coordinates and strings, a frame
// made the gateway's way (wsproto.AppendRecordJSON around a JSON message)
// is read exactly, or, when it holds an escape in a string the scanner
// reads or coordinates the protocol refuses, refused.
func FuzzScanEncodedRecord(f *testing.F) {
	f.Add(int32(3), int64(5120), int64(1733100000000000), "bench-p3", "xxxx")
	f.Fuzz(func(t *testing.T, p int32, o, ts int64, thread, pad string) {
		type header struct {
			TimestampUs string `json:"timestampUs"`
			ThreadID    string `json:"threadId"`
		}
		type event struct {
			Header     header            `json:"header"`
			NodeID     string            `json:"nodeId"`
			Attributes map[string]string `json:"attributes"`
		}
		msg, err := json.Marshal(map[string]event{"event": {Header: header{TimestampUs: strconv.FormatInt(ts, 10), ThreadID: thread},
			NodeID: pad, Attributes: map[string]string{pad: thread}}})
		if err != nil {
			t.Fatal(err)
		}
		frame := wsproto.AppendRecordJSON(nil, p, o, msg)
		rec, err := scanRecordJSON(frame)
		th, _ := json.Marshal(thread) // invalid UTF-8 becomes U+FFFD, some characters escapes
		var want string
		if err := json.Unmarshal(th, &want); err != nil {
			t.Fatal(err)
		}
		plain := !strings.Contains(string(th), `\`)
		switch {
		case p < 0 || o < 0 || !plain:
			if err == nil {
				t.Fatalf("scanned %s from %s", rec, frame)
			}
		case err != nil:
			t.Fatalf("%v: %s", err, frame)
		case rec.partition != p || rec.offset != o || !rec.timed || rec.ts != ts || string(rec.thread) != want || string(rec.message) != string(msg):
			t.Fatalf("scanned %s from %s", rec, frame)
		}
		if err == nil {
			if err := verifyScan(frame, rec); err != nil {
				t.Fatal(err)
			}
		}
	})
}
