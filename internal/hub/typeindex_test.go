package hub

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/filter"
	"github.com/dashflow/dashstream-gateway/internal/metrics"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// countingSub counts its wake-ups. The index's unit tests use it instead of
// a session, whose wake-ups a test cannot count.
type countingSub struct{ n int }

func (c *countingSub) wake() { c.n++ }

const (
	nodeStart = int32(dashstreampb.EventType_EVENT_TYPE_NODE_START)
	nodeEnd   = int32(dashstreampb.EventType_EVENT_TYPE_NODE_END)
)

// indexRec is a record with the facts the wake-up index reads.
func indexRec(typ uint8, thread string, events ...int32) *replay.Record {
	r := &replay.Record{Type: typ, EventTypes: events, Threads: []replay.ThreadSeq{{Thread: thread, Sequence: 1}}}
	for range len(events) - 1 {
		r.Threads = append(r.Threads, replay.ThreadSeq{Thread: thread, Sequence: 1})
	}
	return r
}

// A subscriber filtered by types or event types is woken only by records
// its filter may match, including after wakeIndexed's rounds; with the
// indexes off (or a thread prefix alone) it is broad. The hub here has no
// pinger and no sessions: every wake-up is the test's.
func TestTypeIndexWakesOnlyItsTypes(t *testing.T) {
	for _, scan := range []bool{false, true} {
		t.Run(fmt.Sprintf("scan=%v", scan), func(t *testing.T) {
			h := &Hub{index: newSubIndex(), m: metrics.New(nil), cfg: Config{ScanFilters: scan}}
			subs := map[string]*countingSub{}
			paths := map[string]string{}
			for name, spec := range map[string]filter.Spec{
				"state_diff":            {Types: []string{"state_diff"}},
				"node_end":              {EventTypes: []string{"NODE_END"}},
				"event":                 {Types: []string{"event"}},
				"batch with node_start": {Types: []string{"event_batch"}, EventTypes: []string{"NODE_START"}},
				"thread a":              {Threads: []string{"a"}, Types: []string{"token_chunk"}},
				"prefix":                {ThreadPrefix: "x"},
				"none":                  {},
			} {
				s := &countingSub{}
				subs[name] = s
				h.index.add(s)
				raw, err := json.Marshal(spec)
				if err != nil {
					t.Fatal(err)
				}
				d := h.newDelivery("", true, s)
				if e := d.setFilter(raw); e != nil {
					t.Fatalf("%s: %v", name, e)
				}
				paths[name] = d.path
			}
			wantPaths := map[string]string{"state_diff": pathTypeIndex, "node_end": pathTypeIndex, "event": pathTypeIndex,
				"batch with node_start": pathTypeIndex, "thread a": pathIndex, "prefix": pathScan, "none": pathScan}
			if scan {
				for name := range wantPaths {
					wantPaths[name] = pathScan
				}
			}
			if !maps.Equal(paths, wantPaths) {
				t.Fatalf("paths %v, want %v", paths, wantPaths)
			}
			broad := []string{"prefix", "none"}
			if scan {
				broad = slices.Sorted(maps.Keys(subs))
			}
			steps := []struct {
				name string
				recs []*replay.Record
				want []string // besides the broad subscribers
			}{
				{"state_diff", []*replay.Record{indexRec(2, "b")}, []string{"state_diff"}},
				{"token_chunk of another thread", []*replay.Record{indexRec(3, "b")}, nil},
				{"token_chunk of thread a", []*replay.Record{indexRec(3, "a")}, []string{"thread a"}},
				// Indexed by its event types, "batch with node_start" is
				// woken by an Event of them too (its delivery finds nothing).
				{"NODE_START event", []*replay.Record{indexRec(1, "b", nodeStart)}, []string{"event", "batch with node_start"}},
				{"NODE_END event", []*replay.Record{indexRec(1, "b", nodeEnd)}, []string{"event", "node_end"}},
				{"batch of NODE_START", []*replay.Record{indexRec(8, "b", nodeStart, nodeStart)}, []string{"batch with node_start", "event"}},
				{"batch of NODE_END", []*replay.Record{indexRec(8, "b", nodeEnd)}, []string{"event", "node_end"}},
				{"skipped", []*replay.Record{{Skipped: "decode"}}, nil},
				{"two at once", []*replay.Record{indexRec(2, "b"), indexRec(8, "b", 3, nodeStart)}, []string{"batch with node_start", "event", "state_diff"}},
			}
			for _, st := range steps {
				for _, s := range subs {
					s.n = 0
				}
				h.noteThreads(st.recs)
				h.wakeSubscribers()
				want := st.want
				if scan {
					want = nil
				}
				checkWoken(t, st.name, subs, append(slices.Clone(broad), want...))
			}

			// wakeIndexed: a round without records wakes every indexed
			// subscriber once a round later; one its records woke during
			// a round is not woken at its end.
			for _, s := range subs {
				s.n = 0
			}
			h.wakeIndexed()
			h.wakeIndexed()
			var indexed []string
			for name := range subs {
				if !slices.Contains(broad, name) {
					indexed = append(indexed, name)
				}
			}
			checkWoken(t, "two quiet rounds", subs, indexed)
			for _, s := range subs {
				s.n = 0
			}
			h.wakeIndexed() // all were woken at the start of the round that ends here: none is due
			checkWoken(t, "a round after a wake-up", subs, nil)
			h.noteThreads([]*replay.Record{indexRec(2, "b")})
			h.wakeSubscribers()
			h.wakeIndexed()
			var rest []string
			for _, name := range indexed {
				if name != "state_diff" {
					rest = append(rest, name)
				}
			}
			if !scan {
				rest = append(rest, "state_diff") // woken by its record, not again by the round
			}
			checkWoken(t, "a round after a state_diff", subs, append(slices.Clone(broad), rest...))
			if !scan && subs["state_diff"].n != 1 {
				t.Fatalf("state_diff woken %d times in its round, want once (by its record)", subs["state_diff"].n)
			}

			// Leaving, and changing filter, moves a subscriber in the index.
			gone := subs["state_diff"]
			h.removeSub(gone)
			delete(subs, "state_diff")
			h.subscribe(subs["node_end"], wakeKey{types: replay.TypeQuery{Types: 1 << 3}})
			for _, s := range subs {
				s.n = 0
			}
			gone.n = 0
			h.noteThreads([]*replay.Record{indexRec(2, "b"), indexRec(1, "b", nodeEnd)})
			h.wakeSubscribers()
			if gone.n != 0 {
				t.Fatalf("a subscriber that left was woken")
			}
			want := []string{"prefix", "none", "event"}
			if scan {
				want = []string{"prefix", "none", "event", "batch with node_start", "thread a"}
			}
			checkWoken(t, "after leaving", subs, want)
		})
	}
}

// removeSub is Hub.remove for a subscriber that is not a session.
func (h *Hub) removeSub(s subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.index.remove(s)
	h.indexed.Store(int64(len(h.index.indexed)))
}

func woken(subs map[string]*countingSub) []string {
	var out []string
	for name, s := range subs {
		if s.n > 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func checkWoken(t *testing.T, step string, subs map[string]*countingSub, want []string) {
	t.Helper()
	want = slices.Compact(slices.Sorted(slices.Values(want)))
	want = slices.DeleteFunc(want, func(name string) bool { return subs[name] == nil })
	if got := woken(subs); !slices.Equal(got, want) {
		t.Fatalf("%s: woken %v, want %v", step, got, want)
	}
}

// mixed publishes n records of p from 'from' of which every kth is a
// state_diff and every kth, shifted, a batch with a NODE_END; the rest are
// token chunks and NODE_START events.
func mixed(t *testing.T, th *testHub, p int32, from int64, n, k int) []*replay.Record {
	t.Helper()
	msgs := make([]msgSpec, n)
	for i := range msgs {
		o := from + int64(i)
		th := "t" + itoa64(o%7)
		switch {
		case int(o)%k == 0:
			msgs[i] = msgSpec{thread: th, seq: uint64(o + 1), typ: "state_diff"}
		case int(o)%k == k/2:
			msgs[i] = msgSpec{thread: th, seq: uint64(o + 1), batch: []msgSpec{
				{thread: th, seq: uint64(o + 1), etype: dashstreampb.EventType_EVENT_TYPE_NODE_START},
				{thread: "u", seq: uint64(o + 1), etype: dashstreampb.EventType_EVENT_TYPE_NODE_END}}}
		case o%2 == 0:
			msgs[i] = msgSpec{thread: th, seq: uint64(o + 1), typ: "token_chunk"}
		default:
			msgs[i] = msgSpec{thread: th, seq: uint64(o + 1), etype: dashstreampb.EventType_EVENT_TYPE_NODE_START}
		}
	}
	return th.publishMsgs(t, p, from, msgs...)
}

// A client filtered by message types or event types gets every matching
// record once — in the replay, live (also after a long stretch of other
// types, over which the once-a-second wake-up moves it), and after a
// reconnect from the positions it was given — and the type index reads
// nothing else: the records it examined are the records it matched.
func TestTypeFilterExactOnce(t *testing.T) {
	for _, spec := range []filter.Spec{{Types: []string{"state_diff"}}, {EventTypes: []string{"NODE_END"}}} {
		for _, v2 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/v2=%v", spec, v2), func(t *testing.T) {
				th := newTestHub(t, Config{PingInterval: time.Hour}, replay.MemoryConfig{PerPartition: 5000})
				dial := func() *client {
					if v2 {
						return th.dialV2(t, "", wsproto.SubprotocolV2)
					}
					return th.dial(t)
				}
				next := map[int32]int64{}
				publish := func(p int32, n, k int) []*replay.Record {
					recs := mixed(t, th, p, next[p], n, k)
					next[p] += int64(n)
					return recs
				}
				recs := append(publish(0, 300, 10), publish(1, 200, 25)...)
				c := dial()
				c.send(map[string]any{"type": "resume", "from": "earliest", "filter": spec})
				got, _ := readFiltered(c, v2)
				if want := matching(t, spec, recs, nil); !mapsEqual(got, want) {
					t.Fatalf("replay %v, want %v", got, want)
				}

				var live []*replay.Record
				for i := range 20 {
					live = append(live, publish(int32(i%2), 10, 10)...)
				}

				// A long stretch of other types, over more than one of
				// wakeIndexed's rounds: none of it arrives, and the
				// matches after it arrive once.
				for range 4 {
					msgs := make([]msgSpec, 100)
					for i := range msgs {
						msgs[i] = msgSpec{thread: "t", seq: uint64(i + 1), typ: "token_chunk"}
					}
					th.publishMsgs(t, 0, next[0], msgs...)
					next[0] += int64(len(msgs))
					time.Sleep(400 * time.Millisecond)
				}
				live = append(live, publish(0, 10, 10)...)
				want := matching(t, spec, live, nil)
				if got := readLive(c, v2, count(want), 300*time.Millisecond); !mapsEqual(got, want) {
					t.Fatalf("live %v, want %v", got, want)
				}
				c.conn.Close(websocket.StatusNormalClosure, "")

				cursor := th.Heads()
				more := append(publish(0, 100, 10), publish(1, 100, 10)...)
				c = dial()
				c.send(map[string]any{"type": "resume", "lastOffsetsByPartition": map[string]any{
					"0": itoa64(cursor[0]), "1": itoa64(cursor[1])}, "filter": spec})
				got, _ = readFiltered(c, v2)
				if want := matching(t, spec, more, cursor); !mapsEqual(got, want) {
					t.Fatalf("after the reconnect %v, want %v", got, want)
				}
				scanned := testutil.ToFloat64(th.m.FilterRecordsScanned.WithLabelValues(pathTypeIndex))
				matched := testutil.ToFloat64(th.m.FilterRecordsMatched.WithLabelValues(pathTypeIndex))
				if scanned != matched || matched == 0 {
					t.Fatalf("type index examined %v records, matched %v", scanned, matched)
				}
				if n := testutil.ToFloat64(th.m.FilterRecordsScanned.WithLabelValues(pathScan)); n != 0 {
					t.Fatalf("%v records scanned", n)
				}
			})
		}
	}
}
