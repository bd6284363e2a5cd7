package bench

import (
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// TestTypesMask: the filter's names map to the envelope's fields, and
// what the gateway refuses is refused.
func TestTypesMask(t *testing.T) {
	m, err := typesMask([]string{"checkpoint", "event"})
	if err != nil || m != 1<<5|1<<1 {
		t.Fatalf("mask %b, %v", m, err)
	}
	for _, bad := range [][]string{{"Checkpoint"}, {"node_start"}, {""}} {
		if _, err := typesMask(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if got := string(typesFilter([]string{"checkpoint"})); got != `{"types":["checkpoint"]}` {
		t.Fatalf("filter %s", got)
	}
}

// TestBodyKind: the message type of each kind of record the producer
// builds, binary and JSON (as the gateway writes it).
func TestBodyKind(t *testing.T) {
	rb, err := newRecordBuilder(200)
	if err != nil {
		t.Fatal(err)
	}
	dec := dashstream.NewDecoder(dashstream.DecoderConfig{})
	for kind, want := range map[int]protowire.Number{fullNone: 1, fullGraphStart: 1, fullCheckpoint: 5} {
		v, err := rb.buildFull("bench-t1", 3, 150, kind)
		if err != nil {
			t.Fatal(err)
		}
		if k, ok := bodyKind(v); !ok || k != want {
			t.Errorf("kind %d: binary %d %v, want %d", kind, k, ok, want)
		}
		msg, err := dec.ProtoJSON(v)
		if err != nil {
			t.Fatal(err)
		}
		if k, ok := jsonKind(msg); !ok || k != want {
			t.Errorf("kind %d: JSON %s: %d %v, want %d", kind, msg[:min(len(msg), 40)], k, ok, want)
		}
	}
	for _, bad := range [][]byte{nil, {0x01, 0x0a, 0x00}, {0x00, 0xff}} {
		if _, ok := bodyKind(bad); ok {
			t.Errorf("binary %x read", bad)
		}
	}
	if k, ok := jsonKind([]byte(` { "stateDiff" : {}}`)); !ok || k != 2 {
		t.Errorf("stateDiff: %d %v", k, ok)
	}
	for _, bad := range []string{`{}`, `[]`, `{"nodeStart":{}}`} {
		if _, ok := jsonKind([]byte(bad)); ok {
			t.Errorf("JSON %s read", bad)
		}
	}
}

// TestTypesAccounting: a client filtered to checkpoints counts an event
// as foreign (binary and JSON frames), and its loss is the checkpoints it
// did not receive.
func TestTypesAccounting(t *testing.T) {
	win := &window{}
	win.from.Store(100)
	win.to.Store(200)
	want := int64(3)
	c := &client{cursor: wsclient.NewCursor(), win: win, types: 1 << 5, want: func() int64 { return want }}
	c.cursor.Set(0, -1)
	rb, _ := newRecordBuilder(128)
	build := func(kind int, ts int64) []byte {
		v, err := rb.buildFull("bench-t0", 1, ts, kind)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	c.record(wsclient.Record{Partition: 0, Offset: 0, Value: build(fullCheckpoint, 150)}, 160)
	c.record(wsclient.Record{Partition: 0, Offset: 1, Value: build(fullGraphStart, 150)}, 160)
	c.record(wsclient.Record{Partition: 0, Offset: 2, Value: build(fullNone, 150)}, 160)
	dec := dashstream.NewDecoder(dashstream.DecoderConfig{})
	for o, kind := range []int{fullCheckpoint, fullNone} {
		msg, err := dec.ProtoJSON(build(kind, 150))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.frameV2(true, wsproto.AppendRecordJSON(nil, 0, int64(3+o), msg), time.Now().UnixMicro()); err != nil {
			t.Fatal(err)
		}
	}
	if c.foreign != 3 || c.applied.Load() != 2 || c.delivered != 2 {
		t.Fatalf("foreign %d applied %d delivered %d", c.foreign, c.applied.Load(), c.delivered)
	}
	if got := c.lost(map[int32]int64{0: -1}, map[int32]int64{0: 4}); got != 1 {
		t.Fatalf("lost %d, want 1 (3 checkpoints produced, 2 received)", got)
	}
}
