package hub

// A gap needs proof (docs/PROTOCOL.md §3.4): cursor_stale and gap are sent
// only on a log start Kafka reported; when Kafka cannot be asked, a resume
// or a catch-up ends with REPLAY_UNAVAILABLE and close 1013 instead.

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dashflow/dashstream-gateway/internal/replay"
)

var errKafkaDown = errors.New("kafka: dial tcp 127.0.0.1:9092: connect: connection refused")

// deadKafka is a Kafka tier that cannot be reached; with cached set, its
// log start look-ups still answer 0 from a recent cache. A fake: these unit
// tests run without a broker (internal/app/fault_gap_test.go kills a real
// one).
type deadKafka struct{ cached bool }

func (deadKafka) ReadAfter(context.Context, int32, int64, int) ([]*replay.Record, int64, error) {
	return nil, 0, errKafkaDown
}

func (k deadKafka) LogStart(context.Context, int32, time.Duration) (int64, error) {
	if k.cached {
		return 0, nil
	}
	return 0, errKafkaDown
}

// expectUnavailable reads to the end of the connection and checks that it
// ended with error REPLAY_UNAVAILABLE and close 1013, with no cursor_stale
// and no gap on the way. It returns the records read.
func expectUnavailable(t *testing.T, c *client) []received {
	t.Helper()
	recs, ctrl, code := drainStream(t, c)
	if code != websocket.StatusTryAgainLater {
		t.Fatalf("close %d, want 1013 (controls %v)", code, ctrl)
	}
	if len(ctrl) == 0 || ctrl[len(ctrl)-1]["type"] != "error" || ctrl[len(ctrl)-1]["code"] != "REPLAY_UNAVAILABLE" {
		t.Fatalf("controls %v, want error REPLAY_UNAVAILABLE last", ctrl)
	}
	for _, m := range ctrl {
		if m["type"] == "gap" || m["type"] == "cursor_stale" {
			t.Fatalf("%v sent while Kafka could not be asked", m)
		}
	}
	return recs
}

// A cursor older than memory while Kafka is unreachable: REPLAY_UNAVAILABLE
// and 1013, never cursor_stale or a gap — whether the planner cannot ask for
// the log start, or it has a recent one and the deep read fails. A cursor
// memory covers needs no Kafka.
func TestResumeKafkaUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		kafka deadKafka
	}{
		{"log start unknown", deadKafka{}},
		{"log start cached, read fails", deadKafka{cached: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := resumeFixture(t, Config{}) // p0 holds 50..99
			th.tiers.SetKafka(tc.kafka)
			c := th.dial(t)
			c.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": "10"}})
			for _, r := range expectUnavailable(t, c) {
				if r.partition == 0 {
					t.Fatalf("p0 record %d delivered over the unread range 11..49", r.offset)
				}
			}

			c2 := th.dial(t)
			c2.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": "60"}})
			recs, ctrl := c2.readUntil(isType("replay_complete"))
			checkExact(t, recs, map[int32][]int64{0: seq(61, 99), 1: seq(0, 9), 2: seq(0, 9), 3: seq(0, 9)})
			if len(ctrl) != 1 {
				t.Fatalf("controls %v", ctrl)
			}
		})
	}
}

// A live client that falls behind the memory tier while Kafka is
// unreachable gets no gap: its catch-up ends with REPLAY_UNAVAILABLE and
// 1013 after the records still in memory before the hole (none skipped).
func TestCatchupKafkaUnavailable(t *testing.T) {
	th := newTestHubBuffers(t, Config{SendTimeout: 5 * time.Second}, replay.MemoryConfig{PerPartition: 20}, sockBuf)
	th.tiers.SetKafka(deadKafka{})
	th.publishSized(0, 0, 10, 4096)
	c := th.dialSmall(t, sockBuf)
	c.send(map[string]any{"type": "resume", "from": "latest"})
	c.readUntil(isType("replay_complete"))
	th.publishSized(0, 10, 10, 4096)
	recs, _ := c.readRecords(10) // live
	for o := int64(20); o < 320; o += 10 {
		th.publishSized(0, o, 10, 4096) // 1.2 MB unread; memory keeps the last 20
	}
	recs = append(recs, expectUnavailable(t, c)...)
	for i, r := range recs {
		if r.offset != 10+int64(i) || !valueOK(r) {
			t.Fatalf("record %d: p%d@%d, want offset %d (no hole)", i, r.partition, r.offset, 10+i)
		}
	}
	if len(recs) >= 300 {
		t.Fatalf("all %d records arrived: the client never fell behind memory", len(recs))
	}
	t.Logf("%d records before REPLAY_UNAVAILABLE", len(recs))
}

// movedKafka is a Kafka tier whose log start moved from 0 to 30 after the
// answer it cached 'age' ago: LogStart answers the cached 0 while it is
// younger than the caller's maxAge, else Kafka's 30; a read finds 30 and
// returns 30..49 (memory holds 50..99). A fake: a unit test cannot move a
// real broker's log start between the planner's look-up and the first
// fetch (internal/app/fault_gap_test.go does it with DeleteRecords).
type movedKafka struct{ age time.Duration }

const movedStart = 30

func (k movedKafka) LogStart(_ context.Context, _ int32, maxAge time.Duration) (int64, error) {
	if k.age < maxAge {
		return 0, nil
	}
	return movedStart, nil
}

func (movedKafka) ReadAfter(_ context.Context, p int32, after int64, limit int) ([]*replay.Record, int64, error) {
	if after+1 < movedStart {
		return nil, movedStart, nil
	}
	var recs []*replay.Record
	for o := after + 1; o < 50 && len(recs) < limit; o++ {
		r := &replay.Record{Partition: p, Offset: o, Prev: o - 1, Value: []byte("v-" + itoa(p) + "-" + itoa64(o))}
		r.EncodeFrames()
		recs = append(recs, r)
	}
	return recs, movedStart, nil
}

// A resume from a cursor below a log start that moved: cursor_stale first,
// then the gap with the exact range, then the records — whether the
// planner asked Kafka (its cached answer was too old to prove anything) or
// trusted a recent cached answer and the deep read found the move.
func TestResumeLogStartMoved(t *testing.T) {
	for _, age := range []time.Duration{time.Second, replay.ProofMaxAge + time.Second} {
		t.Run(fmt.Sprint("cache ", age), func(t *testing.T) {
			th := resumeFixture(t, Config{}) // p0 holds 50..99
			th.tiers.SetKafka(movedKafka{age: age})
			c := th.dial(t)
			c.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": "10"}})
			var order []string
			var recs []received
			for {
				f, err := c.read(5 * time.Second)
				if err != nil {
					t.Fatalf("read: %v (so far %v)", err, order)
				}
				switch f.json["type"] {
				case "cursor":
					b, err := c.read(5 * time.Second)
					if err != nil || b.binary == nil {
						t.Fatalf("cursor without its binary frame: %v", err)
					}
					d := received{int32(num(f.json, "partition")), parseOffset(t, f.json["offset"]), string(b.binary)}
					if d.partition == 0 && (len(order) == 0 || order[len(order)-1] != "p0 records") {
						order = append(order, "p0 records")
					}
					recs = append(recs, d)
					continue
				case "cursor_stale":
					if num(f.json, "partition") != 0 || parseOffset(t, f.json["requested"]) != 10 ||
						parseOffset(t, f.json["oldest"]) != movedStart {
						t.Fatalf("cursor_stale %v, want p0 requested 10 oldest %d", f.json, movedStart)
					}
				case "gap":
					if num(f.json, "partition") != 0 || parseOffset(t, f.json["fromOffset"]) != 11 ||
						parseOffset(t, f.json["toOffset"]) != movedStart-1 || num(f.json, "count") != movedStart-11 {
						t.Fatalf("gap %v, want p0 11..%d", f.json, movedStart-1)
					}
				}
				order = append(order, f.json["type"].(string))
				if f.json["type"] == "replay_complete" {
					break
				}
			}
			if want := "[cursor_stale gap p0 records replay_complete]"; fmt.Sprint(order) != want {
				t.Fatalf("frames %v, want %s", order, want)
			}
			checkExact(t, recs, map[int32][]int64{0: seq(movedStart, 99), 1: seq(0, 9), 2: seq(0, 9), 3: seq(0, 9)})
		})
	}
}

// The rest of a capped replay that falls behind the memory tier while Kafka
// is unreachable gets no gap either: REPLAY_UNAVAILABLE and 1013 after the
// records still held, none skipped.
func TestCappedRestKafkaUnavailable(t *testing.T) {
	th := newTestHubBuffers(t, Config{SendTimeout: 5 * time.Second, ReplayMaxTotal: 5}, replay.MemoryConfig{PerPartition: 20}, sockBuf)
	th.tiers.SetKafka(deadKafka{})
	th.publishSized(0, 0, 20, 32<<10) // 640 KB: the capped rest outgrows the socket buffers
	c := th.dialSmall(t, sockBuf)
	c.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{"0": "-1"}})
	recs, ctrl := c.readUntil(isType("replay_complete"))
	if rc := ctrl[len(ctrl)-1]; rc["capped"] != true || len(recs) != 5 {
		t.Fatalf("replay_complete %v after %d records, want capped after 5", rc, len(recs))
	}
	for o := int64(20); o < 320; o += 10 {
		th.publishSized(0, o, 10, 4096) // memory keeps the last 20: the rest falls out
	}
	recs = append(recs, expectUnavailable(t, c)...)
	for i, r := range recs {
		if r.offset != int64(i) || !valueOK(r) {
			t.Fatalf("record %d: p%d@%d, want offset %d (no hole)", i, r.partition, r.offset, i)
		}
	}
	if len(recs) >= 20 {
		t.Fatalf("%d records arrived: the capped rest (5..19) never fell behind memory", len(recs))
	}
	t.Logf("%d records before REPLAY_UNAVAILABLE", len(recs))
}
