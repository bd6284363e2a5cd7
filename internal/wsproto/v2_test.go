package wsproto

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/gobwas/ws"
)

// TestAppendRecordV2: the 13-byte envelope of docs/PROTOCOL.md §3.8, written
// out by hand.
func TestAppendRecordV2(t *testing.T) {
	cases := []struct {
		p    int32
		o    int64
		v    []byte
		want string
	}{
		{0, 0, nil, "01" + "00000000" + "0000000000000000"},
		{3, 41, []byte{0x00, 0xAB}, "01" + "00000003" + "0000000000000029" + "00ab"},
		{math.MaxInt32, math.MaxInt64, []byte("x"), "01" + "7fffffff" + "7fffffffffffffff" + "78"},
		{258, 1 << 40, []byte{0x01}, "01" + "00000102" + "0000010000000000" + "01"},
	}
	for _, c := range cases {
		got := AppendRecordV2([]byte("prefix"), c.p, c.o, c.v)
		if hex.EncodeToString(got[6:]) != c.want || string(got[:6]) != "prefix" {
			t.Errorf("p%d o%d: %x, want prefix+%s", c.p, c.o, got, c.want)
		}
		rec, err := ParseRecordV2(got[6:])
		if err != nil || rec.Partition != c.p || rec.Offset != c.o || !bytes.Equal(rec.Value, c.v) {
			t.Errorf("p%d o%d: parsed %+v, %v", c.p, c.o, rec, err)
		}
	}
}

// TestRecordFrameV2: one binary frame per record, no cursor frame, read back
// by gobwas/ws; valueAt points at the value.
func TestRecordFrameV2(t *testing.T) {
	for _, n := range frameLengths {
		value := payloadOf(n)
		frame, at := RecordFrameV2(7, 1234567890123, value)
		if !bytes.Equal(frame[at:], value) {
			t.Fatalf("%d bytes: valueAt %d does not point at the value", n, at)
		}
		r := bytes.NewReader(frame)
		f := readFrame(t, r)
		if f.Header.OpCode != ws.OpBinary || r.Len() != 0 {
			t.Fatalf("%d bytes: opcode %v, %d bytes left over", n, f.Header.OpCode, r.Len())
		}
		rec, err := ParseRecordV2(f.Payload)
		if err != nil || rec.Partition != 7 || rec.Offset != 1234567890123 || !bytes.Equal(rec.Value, value) {
			t.Fatalf("%d bytes: %v (p%d o%d)", n, err, rec.Partition, rec.Offset)
		}
	}
}

func TestParseRecordV2Malformed(t *testing.T) {
	cases := map[string]string{
		"empty":               "",
		"tag only":            "01",
		"12 bytes":            "01" + "00000000" + "00000000000000",
		"text tag":            "7b" + "00000000" + "0000000000000000",
		"v1 cursor-less":      "00" + "00000000" + "0000000000000000",
		"partition over 2^31": "01" + "80000000" + "0000000000000000",
		"negative offset":     "01" + "00000000" + "ffffffffffffffff",
	}
	for name, h := range cases {
		b, _ := hex.DecodeString(h)
		if _, err := ParseRecordV2(b); !errors.Is(err, ErrRecordV2) {
			t.Errorf("%s: err %v, want ErrRecordV2", name, err)
		}
	}
}

// TestRecordFrameJSON: the JSON record text frame is valid JSON carrying the
// message as is, the offset as an exact string, and parses back.
func TestRecordFrameJSON(t *testing.T) {
	msg := []byte(`{"event":{"header":{"timestampUs":"9007199254740993"}}}`)
	frame := RecordFrameJSON(2, math.MaxInt64, msg)
	f := readFrame(t, bytes.NewReader(frame))
	if f.Header.OpCode != ws.OpText {
		t.Fatalf("opcode %v", f.Header.OpCode)
	}
	want := `{"type":"record","partition":2,"offset":"9223372036854775807","message":` + string(msg) + `}`
	if string(f.Payload) != want {
		t.Fatalf("frame\n got %s\nwant %s", f.Payload, want)
	}
	rec, ok, err := ParseRecordJSON(f.Payload)
	if err != nil || !ok || rec.Partition != 2 || rec.Offset != math.MaxInt64 || !bytes.Equal(rec.Message, msg) {
		t.Fatalf("parsed %+v ok %v err %v", rec, ok, err)
	}
	var generic map[string]any
	if err := json.Unmarshal(f.Payload, &generic); err != nil || generic["type"] != TypeRecord {
		t.Fatalf("not JSON of type record: %v", err)
	}
}

func TestParseRecordJSONOthers(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		ok     bool
		hasErr bool
	}{
		{"control frame", `{"type":"replay_complete","totalReplayed":0}`, false, false},
		{"integer offset", `{"type":"record","partition":0,"offset":5,"message":{}}`, true, false},
		{"not JSON", `{"type":"record"`, false, true},
		{"negative offset", `{"type":"record","partition":0,"offset":"-1","message":{}}`, true, true},
		{"float offset", `{"type":"record","partition":0,"offset":1.5,"message":{}}`, true, true},
		{"no partition", `{"type":"record","offset":"1","message":{}}`, true, true},
		{"partition too big", `{"type":"record","partition":2147483648,"offset":"1","message":{}}`, true, true},
		{"message not object", `{"type":"record","partition":0,"offset":"1","message":"x"}`, true, true},
		{"no message", `{"type":"record","partition":0,"offset":"1"}`, true, true},
	}
	for _, c := range cases {
		_, ok, err := ParseRecordJSON([]byte(c.in))
		if ok != c.ok || (err != nil) != c.hasErr {
			t.Errorf("%s: ok %v err %v, want ok %v err %v", c.name, ok, err, c.ok, c.hasErr)
		}
	}
}

// TestResumeV2Fields: filter, format and join are read; a v1 resume without
// them parses as before, and a value of the wrong type is an invalid entry,
// never a JSON error.
func TestResumeV2Fields(t *testing.T) {
	cases := []struct {
		name, in, filter, format, join string
		invalid                        []string
	}{
		{"v1 resume", `{"type":"resume","lastOffsetsByPartition":{"0":"3"}}`, "", FormatBinary, JoinNone, nil},
		{"all v2 fields", `{"type":"resume","from":"latest","filter":{"threads":["a"]},"format":"json","join":"checkpoint"}`,
			`{"threads":["a"]}`, FormatJSON, JoinCheckpoint, nil},
		{"explicit defaults", `{"type":"resume","format":"binary","join":"none","filter":null}`, "", FormatBinary, JoinNone, nil},
		{"filter kept raw, even malformed", `{"type":"resume","filter":"x"}`, `"x"`, FormatBinary, JoinNone, nil},
		{"unknown format", `{"type":"resume","format":"xml"}`, "", FormatBinary, JoinNone, []string{"format=xml"}},
		{"unknown join", `{"type":"resume","join":"snapshot"}`, "", FormatBinary, JoinNone, []string{"join=snapshot"}},
		{"format not a string", `{"type":"resume","format":5,"join":{"a":1}}`, "", FormatBinary, JoinNone, []string{`format=5`, `join={"a":1}`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctl, e := ParseControl([]byte(c.in))
			if e != nil || ctl.Kind != ControlResume {
				t.Fatalf("error %+v", e)
			}
			r := ctl.Resume
			if string(r.Filter) != c.filter || r.Format != c.format || r.Join != c.join {
				t.Errorf("filter %q format %q join %q", r.Filter, r.Format, r.Join)
			}
			if len(r.Invalid) != len(c.invalid) {
				t.Fatalf("invalid %q, want %q", r.Invalid, c.invalid)
			}
			for i := range c.invalid {
				if r.Invalid[i] != c.invalid[i] {
					t.Errorf("invalid %q, want %q", r.Invalid, c.invalid)
				}
			}
		})
	}
}

// FuzzParseRecordV2: a client's parsers of v2 record frames never panic,
// and what they accept re-encodes to the same bytes.
func FuzzParseRecordV2(f *testing.F) {
	f.Add(AppendRecordV2(nil, 3, 41, []byte{0, 1, 2}))
	f.Add(AppendRecordV2(nil, math.MaxInt32, math.MaxInt64, nil))
	f.Add([]byte{0x01, 0x80})
	f.Add(AppendRecordJSON(nil, 1, 2, []byte(`{"event":{}}`)))
	f.Add([]byte(`{"type":"record","partition":1,"offset":"x","message":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if rec, err := ParseRecordV2(data); err == nil {
			if rec.Partition < 0 || rec.Offset < 0 || !bytes.Equal(AppendRecordV2(nil, rec.Partition, rec.Offset, rec.Value), data) {
				t.Fatalf("accepted %x as p%d o%d", data, rec.Partition, rec.Offset)
			}
		} else if !errors.Is(err, ErrRecordV2) {
			t.Fatalf("error %v is not ErrRecordV2", err)
		}
		rec, ok, err := ParseRecordJSON(data)
		if err == nil && ok {
			again, ok2, err2 := ParseRecordJSON(AppendRecordJSON(nil, rec.Partition, rec.Offset, rec.Message))
			if !ok2 || err2 != nil || again.Partition != rec.Partition || again.Offset != rec.Offset || !bytes.Equal(again.Message, rec.Message) {
				t.Fatalf("re-encoded record differs: %+v %v", again, err2)
			}
		}
	})
}
