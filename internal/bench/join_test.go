package bench

import (
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
)

// TestRunRecords: a run's thread starts with a GRAPH_START carrying its
// initial state, carries a Checkpoint every N records, and the gateway's
// decoder sees both as full states of that thread (RunFacts) with the
// header the clients time.
func TestRunRecords(t *testing.T) {
	var kinds []int
	for seq := uint64(1); seq <= 7; seq++ {
		kinds = append(kinds, fullKind(seq, 3))
	}
	want := []int{fullGraphStart, fullNone, fullCheckpoint, fullNone, fullNone, fullCheckpoint, fullNone}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("kinds %v, want %v", kinds, want)
		}
	}
	if fullKind(1, 0) != fullNone {
		t.Fatal("a full state without runs")
	}
	rb, err := newRecordBuilder(512)
	if err != nil {
		t.Fatal(err)
	}
	dec := dashstream.NewDecoder(dashstream.DecoderConfig{})
	ts := time.Now().UnixMicro()
	for _, kind := range []int{fullNone, fullGraphStart, fullCheckpoint} {
		v, err := rb.buildFull("bench-t7", 9, ts, kind)
		if err != nil {
			t.Fatal(err)
		}
		d, err := dec.Decode(v)
		if err != nil {
			t.Fatalf("kind %d: %v", kind, err)
		}
		graph, full := d.RunFacts()
		if full != (kind != fullNone) || (kind == fullGraphStart) != (graph == "bench") {
			t.Errorf("kind %d: RunFacts %q %v", kind, graph, full)
		}
		if got, ok := headerTimestamp(v); !ok || got != ts {
			t.Errorf("kind %d: timestamp %d %v", kind, got, ok)
		}
		if th, ok := headerThread(v); !ok || string(th) != "bench-t7" {
			t.Errorf("kind %d: thread %q", kind, th)
		}
		err = checkFullState(v, "bench-t7")
		if (err == nil) != (kind != fullNone) {
			t.Errorf("kind %d: checkFullState %v", kind, err)
		}
		if kind != fullNone && checkFullState(v, "bench-t8") == nil {
			t.Errorf("kind %d: another run's full state accepted", kind)
		}
	}
}

// TestPhaseRecord: live latencies split into before and during a burst by
// the time they were received; none are filed without a burst.
func TestPhaseRecord(t *testing.T) {
	win := &window{}
	c := &client{win: win}
	c.phaseRecord(100, 5) // no burst planned
	win.startBurst(time.UnixMicro(1000))
	c.phaseRecord(999, 7)
	c.phaseRecord(1000, 50)
	c.phaseRecord(5000, 60) // the burst's end is not known yet: during
	win.burstTo.Store(burstEnd(time.UnixMicro(1000), time.UnixMicro(1200)))
	c.phaseRecord(1_000_999, 70)
	c.phaseRecord(1_001_000, 9) // after the burst (1 s minimum)
	if c.before.Count() != 1 || c.during.Count() != 3 {
		t.Fatalf("before %d during %d, want 1 and 3", c.before.Count(), c.during.Count())
	}
	jr := &JoinResult{}
	jr.setLivePhases([]*client{c})
	if jr.LiveP99BeforeMs <= 0 || jr.LiveP99DuringMs < jr.LiveP99BeforeMs {
		t.Fatalf("phases %+v", jr)
	}
	if got := burstEnd(time.UnixMicro(0), time.UnixMicro(3_000_000)); got != 3_000_000 {
		t.Fatalf("burstEnd = %d", got)
	}
}
