package e2e

// Filtered subscriptions (docs/PROTOCOL.md §3.8) against real Kafka and
// real Redis: a filtered client gets every matching record once and nothing
// else, whichever tier serves it (memory, Redis, Kafka), across capped
// replays and a reconnect, in v1 and v2.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// subRecord is a produced record and what a filter decides on.
type subRecord struct {
	p      int32
	offset int64
	value  []byte
	thread string
	typ    string // "event" or "state_diff"
	etype  dashstreampb.EventType
}

// subValue encodes record i of a partition: threads a, b, c in turn; every
// fourth a StateDiff, the others Events alternating NODE_START / NODE_END.
func subValue(t *testing.T, p int32, i int) subRecord {
	t.Helper()
	r := subRecord{p: p, thread: []string{"a", "b", "c"}[i%3], typ: "event", etype: dashstreampb.EventType_EVENT_TYPE_NODE_START}
	if i%2 == 1 {
		r.etype = dashstreampb.EventType_EVENT_TYPE_NODE_END
	}
	h := &dashstreampb.Header{ThreadId: r.thread, Sequence: uint64(i + 1), TimestampUs: time.Now().UnixMicro(), TenantId: "test"}
	msg := &dashstreampb.DashStreamMessage{Message: &dashstreampb.DashStreamMessage_Event{Event: &dashstreampb.Event{
		Header: h, EventType: r.etype, NodeId: fmt.Sprintf("n%d-%d", p, i)}}}
	if i%4 == 3 {
		r.typ = "state_diff"
		msg.Message = &dashstreampb.DashStreamMessage_StateDiff{StateDiff: &dashstreampb.StateDiff{Header: h}}
	}
	v, err := dashstream.Encode(msg, dashstream.FramingPlain)
	if err != nil {
		t.Fatal(err)
	}
	r.value = v
	return r
}

// subProduce produces n records to each of the partitions and returns them
// in produce order.
func subProduce(t *testing.T, k *testenv.KafkaEnv, topic string, parts int32, n, from int) []subRecord {
	t.Helper()
	var all []subRecord
	for p := range parts {
		recs := make([]subRecord, n)
		vals := make([][]byte, n)
		for i := range recs {
			recs[i] = subValue(t, p, from+i)
			vals[i] = recs[i].value
		}
		for i, o := range k.Produce(t, topic, p, vals...) {
			recs[i].offset = o
		}
		all = append(all, recs...)
	}
	return all
}

// subDial connects a client resuming from cursor (nil: earliest) with
// filter.
func subDial(t *testing.T, g *gateway, v2 bool, cursor map[int32]int64, filter string) *wsclient.Conn {
	t.Helper()
	res := &wsclient.Resume{From: wsclient.FromEarliest, Filter: json.RawMessage(filter)}
	if cursor != nil {
		res = &wsclient.Resume{From: wsclient.FromCursor, Offsets: cursor, Filter: json.RawMessage(filter)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := wsclient.Dial(ctx, g.ws, wsclient.Options{Resume: res, V2: v2})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if c.V2() != v2 {
		t.Fatalf("v2 negotiated %v, want %v", c.V2(), v2)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// subRead reads a resume's replay_complete and as many records as want
// holds (a capped replay's rest follows it). Any control frame but
// replay_complete fails the test.
func subRead(t *testing.T, c *wsclient.Conn, want []subRecord) ([]wsclient.Record, []wsclient.ReplayComplete) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), arrive)
	defer cancel()
	var got []wsclient.Record
	var rcs []wsclient.ReplayComplete
	reached := func() bool { return len(got) >= len(want) && len(rcs) > 0 }
	for !reached() {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("read: %v after %d of %d records, %d replay_complete", err, len(got), len(want), len(rcs))
		}
		if m.Kind == wsclient.KindRecord {
			r := m.Record
			r.Value = bytes.Clone(r.Value)
			got = append(got, r)
			continue
		}
		if m.Control.Type != "replay_complete" {
			t.Fatalf("control frame %s: a filtered resume must cause no gap, skipped or error", m.Control.Raw)
		}
		var rc wsclient.ReplayComplete
		if err := m.Control.Decode(&rc); err != nil {
			t.Fatal(err)
		}
		rcs = append(rcs, rc)
	}
	return got, rcs
}

// subCheck compares what a client got with the records of want, per
// partition in offset order, values byte for byte.
func subCheck(t *testing.T, what string, got []wsclient.Record, want []subRecord) {
	t.Helper()
	per := map[int32][]subRecord{}
	for _, r := range want {
		per[r.p] = append(per[r.p], r)
	}
	idx := map[int32]int{}
	for _, r := range got {
		i := idx[r.Partition]
		if i >= len(per[r.Partition]) || per[r.Partition][i].offset != r.Offset || !bytes.Equal(per[r.Partition][i].value, r.Value) {
			t.Fatalf("%s: partition %d record %d is offset %d, want %v", what, r.Partition, i, r.Offset, per[r.Partition][min(i, len(per[r.Partition])-1)].offset)
		}
		idx[r.Partition]++
	}
	for p, rs := range per {
		if idx[p] != len(rs) {
			t.Fatalf("%s: partition %d: %d records, want %d", what, p, idx[p], len(rs))
		}
	}
}

func subSelect(recs []subRecord, after map[int32]int64, keep func(subRecord) bool) []subRecord {
	var out []subRecord
	for _, r := range recs {
		if a, ok := after[r.p]; ok && r.offset <= a {
			continue
		}
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

// TestFilterExactAcrossTiers: 150 records per partition, memory holding
// the newest 20 and Redis the newest 80, so an "earliest" resume reads
// Redis then memory, and a resume from an old cursor Kafka, Redis and
// memory; replays capped at 15 records. For a
// thread filter (memory's thread index, then the tiers below), a types
// filter (every tier returns the message type: Redis stores it with the
// value) and an event-type filter, in v1 and v2: exactly the matching records,
// then live, then again after a reconnect from the client's position.
func TestFilterExactAcrossTiers(t *testing.T) {
	const parts, n = 2, 150
	k, topic := kafkaEnv(t, parts)
	r := testenv.Redis(t)
	g := startGateway(t, redisEnv(k, topic, r.URL, map[string]string{
		"REPLAY_BUFFER_MEMORY_SIZE": "20", "REDIS_MAX_SEQUENCES": "80", "REPLAY_MAX_TOTAL": "15"}))
	cleanupRedisKeys(t, r.Client, namespaceOf(t, g))
	recs := subProduce(t, k, topic, parts, n, 0)
	ends := map[int32]int64{}
	for _, rec := range recs {
		ends[rec.p] = max(ends[rec.p], rec.offset)
	}
	ns := namespaceOf(t, g)
	redis0, kafka0 := tierHits(t, g, "redis"), tierHits(t, g, "kafka")
	// "earliest" starts at the replay window (Redis's oldest record, which
	// moves as records arrive), not at Kafka's log start; the reconnect
	// below reads Kafka.
	windowOf := func(all []subRecord) map[int32]int64 {
		t.Helper()
		last := map[int32]int64{}
		for _, rec := range all {
			last[rec.p] = max(last[rec.p], rec.offset)
		}
		window := map[int32]int64{}
		testenv.WaitFor(t, arrive, func() bool {
			for p := range int32(parts) {
				ctx := context.Background()
				first, err1 := r.Client.XRangeN(ctx, redisLogKey(ns, p), "-", "+", 1).Result()
				newest, err2 := r.Client.XRevRangeN(ctx, redisLogKey(ns, p), "+", "-", 1).Result()
				if err1 != nil || err2 != nil || len(first) != 1 || len(newest) != 1 ||
					newest[0].ID != fmt.Sprintf("%d-1", last[p]) {
					return false
				}
				var o int64
				if _, err := fmt.Sscanf(first[0].ID, "%d-1", &o); err != nil {
					t.Fatalf("entry id %q: %v", first[0].ID, err)
				}
				window[p] = o - 1
			}
			return true
		}, "Redis holds every produced record")
		return window
	}
	cases := []struct {
		name, filter string
		keep         func(subRecord) bool
	}{
		{"thread", `{"threads":["b"]}`, func(r subRecord) bool { return r.thread == "b" }},
		{"types", `{"types":["state_diff"]}`, func(r subRecord) bool { return r.typ == "state_diff" }},
		{"event type and thread", `{"threads":["a","c"],"event_types":["NODE_END"]}`, func(r subRecord) bool {
			return r.typ == "event" && r.thread != "b" && r.etype == dashstreampb.EventType_EVENT_TYPE_NODE_END
		}},
	}
	from := n
	all := slices.Clone(recs)
	for _, tc := range cases {
		for _, v2 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/v2=%v", tc.name, v2), func(t *testing.T) {
				waitHeads(t, g, subLast(all), arrive)
				want := subSelect(all, windowOf(all), tc.keep)
				c := subDial(t, g, v2, nil, tc.filter)
				got, rcs := subRead(t, c, want)
				subCheck(t, "replay from the start", got, want)
				if !rcs[0].Capped || len(rcs) != 1 {
					t.Fatalf("replay_complete frames %+v, want one, capped", rcs)
				}

				live := subProduce(t, k, topic, parts, 6, from)
				from += 6
				wantLive := subSelect(live, nil, tc.keep)
				got, _ = subReadLive(t, c, len(wantLive))
				subCheck(t, "live", got, wantLive)
				c.CloseNow()

				all = append(all, live...)
				cursor := map[int32]int64{0: ends[0] - 30, 1: ends[1] - 100} // partition 1 from Kafka
				c = subDial(t, g, v2, cursor, tc.filter)
				want = subSelect(all, cursor, tc.keep)
				got, _ = subRead(t, c, want)
				subCheck(t, "after the reconnect", got, want)
			})
		}
	}
	if tierHits(t, g, "redis") <= redis0 || tierHits(t, g, "kafka") <= kafka0 {
		t.Errorf("the resumes did not read the lower tiers: redis %v → %v, kafka %v → %v",
			redis0, tierHits(t, g, "redis"), kafka0, tierHits(t, g, "kafka"))
	}
}

// subReadLive reads n live records; a control frame fails the test.
func subReadLive(t *testing.T, c *wsclient.Conn, n int) ([]wsclient.Record, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), arrive)
	defer cancel()
	var got []wsclient.Record
	for len(got) < n {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("live: %v after %d of %d", err, len(got), n)
		}
		if m.Kind != wsclient.KindRecord {
			t.Fatalf("live control frame %s", m.Control.Raw)
		}
		r := m.Record
		r.Value = bytes.Clone(r.Value)
		got = append(got, r)
	}
	return got, nil
}

// subLast is what waitHeads waits for: each partition's last offset.
func subLast(recs []subRecord) map[int32]int64 {
	last := map[int32]int64{}
	for _, r := range recs {
		if o, ok := last[r.p]; !ok || r.offset > o {
			last[r.p] = r.offset
		}
	}
	return last
}
