package replay_test

// The Redis tier keeps each record's message type and event types (the
// facts a "types" / "event_types" filter matches on, docs/PROTOCOL.md
// §3.8), and reads entries of the previous format, which kept neither,
// with their facts: against real Redis, with the shared test vectors.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// factVector is a test vector with the facts its manifest entry states
// (not what the decoder says: the expectation is independent of it).
type factVector struct {
	name   string
	value  []byte
	valid  bool
	typ    uint8
	events []int32
}

// factVectors reads every vector file of testdata/dashstream (valid and
// invalid) with the message type and event types MANIFEST.json gives.
func factVectors(t testing.TB) []factVector {
	t.Helper()
	const dir = "../../testdata/dashstream"
	raw, err := os.ReadFile(filepath.Join(dir, "MANIFEST.json"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []struct {
		File        *string `json:"file"`
		Name        string  `json:"name"`
		Valid       bool    `json:"valid"`
		MessageType *string `json:"message_type"`
		EventType   *struct {
			Value int32 `json:"value"`
		} `json:"event_type"`
		InnerEvents []struct {
			EventType int32 `json:"event_type"`
		} `json:"inner_events"`
	}
	if err := json.Unmarshal(raw, &entries); err != nil {
		t.Fatal(err)
	}
	var out []factVector
	types := map[uint8]bool{}
	for _, e := range entries {
		if e.File == nil {
			continue // synthesized by its own test
		}
		v := factVector{name: e.Name, valid: e.Valid}
		if v.value, err = os.ReadFile(filepath.Join(dir, *e.File)); err != nil {
			t.Fatal(err)
		}
		if e.Valid && *e.MessageType != "none" {
			n, ok := dashstreampb.MessageType_value["MESSAGE_TYPE_"+strings.ToUpper(*e.MessageType)]
			if !ok {
				t.Fatalf("%s: message type %q", e.Name, *e.MessageType)
			}
			v.typ = uint8(n)
		}
		if e.EventType != nil {
			v.events = []int32{e.EventType.Value}
		}
		for _, ie := range e.InnerEvents {
			v.events = append(v.events, ie.EventType)
		}
		types[v.typ] = types[v.typ] || e.Valid
		out = append(out, v)
	}
	for typ := range uint8(10) { // 0 (no body) and every oneof type, 1 … 9
		if !types[typ] {
			t.Fatalf("no valid vector of message type %d", typ)
		}
	}
	return out
}

// batchValue encodes an EventBatch of one thread whose inner events have
// the given types, in order.
func batchValue(t testing.TB, events ...dashstreampb.EventType) []byte {
	t.Helper()
	b := &dashstreampb.EventBatch{Header: &dashstreampb.Header{TenantId: "acme"}}
	for i, et := range events {
		b.Events = append(b.Events, &dashstreampb.Event{
			Header: &dashstreampb.Header{ThreadId: "batch", Sequence: uint64(i + 1)}, EventType: et})
	}
	v, err := dashstream.Encode(&dashstreampb.DashStreamMessage{Message: &dashstreampb.DashStreamMessage_EventBatch{EventBatch: b}}, dashstream.FramingZstd)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// logKey is the key of a partition's log (docs/ARCHITECTURE.md, "Replay
// tiers and the planner"), for the entries a test writes or reads raw.
func logKey(ns string, p int32) string {
	return fmt.Sprintf("dashstream-replay:{%s:p%d}:log", ns, p)
}

// readAll reads partition p of s from the start, in small pages.
func readAll(t testing.TB, s replay.Store, p int32) []*replay.Record {
	t.Helper()
	var out []*replay.Record
	for after := int64(-1); ; {
		recs, _, err := s.Read(bg(t), p, after, replay.Limit{Records: 7})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		out = append(out, recs...)
		after = recs[len(recs)-1].Offset
	}
}

func checkFacts(t *testing.T, what string, r *replay.Record, typ uint8, events []int32) {
	t.Helper()
	if r.Type != typ || !slices.Equal(r.EventTypes, events) {
		t.Errorf("%s (offset %d): type %d event types %v, want %d %v", what, r.Offset, r.Type, r.EventTypes, typ, events)
	}
}

// TestRedisKeepsFacts: every valid vector (each message type, a batch of
// four events, an empty message of type 0), a batch with several event
// types (one above 127, one unknown to the enum, so several bytes each)
// and dead-lettered records between them come back from Redis with the
// type and event types they were appended with; the stored field is one
// byte plus one per small event type, and a skipped entry stores none.
func TestRedisKeepsFacts(t *testing.T) {
	env := testenv.Redis(t)
	s := startRedis(t, env.Client, replay.RedisConfig{Namespace: env.Prefix}, true)
	type want struct {
		name    string
		value   []byte
		skipped string
		typ     uint8
		events  []int32
	}
	var wants []want
	for _, v := range factVectors(t) {
		if v.valid {
			wants = append(wants, want{name: v.name, value: v.value, typ: v.typ, events: v.events})
		} else {
			wants = append(wants, want{name: v.name, skipped: "invalid"})
		}
	}
	batchTypes := []dashstreampb.EventType{
		dashstreampb.EventType_EVENT_TYPE_NODE_START, dashstreampb.EventType_EVENT_TYPE_LLM_END,
		dashstreampb.EventType_EVENT_TYPE_NODE_START, dashstreampb.EventType_EVENT_TYPE_NODE_END,
		dashstreampb.EventType_EVENT_TYPE_OPTIMIZATION_END, 300, dashstreampb.EventType_EVENT_TYPE_GRAPH_END,
	}
	batchEvents := make([]int32, len(batchTypes))
	for i, et := range batchTypes {
		batchEvents[i] = int32(et)
	}
	wants = append(wants, want{name: "batch of 7", value: batchValue(t, batchTypes...), typ: 8, events: batchEvents},
		want{name: "skipped after the batch", skipped: "truncated"})

	recs := make([]*replay.Record, len(wants))
	for i, w := range wants {
		recs[i] = &replay.Record{Partition: 2, Offset: int64(10 + i), Prev: int64(9 + i), Value: w.value, Skipped: w.skipped,
			Type: w.typ, EventTypes: slices.Clone(w.events), Threads: []replay.ThreadSeq{{Thread: "t", Sequence: uint64(i + 1)}}}
	}
	s.Append(bg(t), recs)
	s.flush(t)

	got := readAll(t, s, 2)
	if len(got) != len(wants) {
		t.Fatalf("read %d records, want %d", len(got), len(wants))
	}
	for i, w := range wants {
		r := got[i]
		if r.Offset != int64(10+i) || r.Skipped != w.skipped || string(r.Value) != string(w.value) {
			t.Fatalf("%s: offset %d skipped %q value %d bytes, want %d %q %d bytes", w.name, r.Offset, r.Skipped, len(r.Value), 10+i, w.skipped, len(w.value))
		}
		checkFacts(t, w.name, r, w.typ, w.events)
	}

	raw, err := env.Client.XRange(bg(t), logKey(env.Prefix, 2), "-", "+").Result()
	if err != nil || len(raw) != len(wants) {
		t.Fatalf("XRANGE: %d entries (%v)", len(raw), err)
	}
	for i, w := range wants {
		facts, ok := raw[i].Values["facts"].(string)
		if w.skipped != "" {
			if ok {
				t.Errorf("%s: a skipped entry stores facts %q", w.name, facts)
			}
			continue
		}
		size := 1 + len(w.events) // every event type of the vectors is below 128
		if w.name == "batch of 7" {
			size++ // 300 takes two bytes
		}
		if len(facts) != size || facts[0] != w.typ {
			t.Errorf("%s: stored facts %q, want %d bytes starting with type %d", w.name, facts, size, w.typ)
		}
	}
}

// oldEntry is an entry as the previous format wrote it (before the facts
// field): prev, the payload field, ts, threads, and tenant when not empty.
func oldEntry(key string, o int64, payloadField, payload, tenant string) *redis.XAddArgs {
	values := []any{"prev", strconv.FormatInt(o-1, 10), payloadField, payload, "ts", "1764158400000123",
		"threads", "\x01a" + string(rune(o%100+1))} // thread "a", sequence o%100+1 (one-byte uvarints)
	if tenant != "" {
		values = append(values, "tenant", tenant)
	}
	return &redis.XAddArgs{Stream: key, ID: strconv.FormatInt(o, 10) + "-1", Values: values}
}

// TestRedisReadsPreviousFormat: entries written raw in the previous format
// (no facts field), as a Redis of a running deployment holds them after an
// upgrade, read back with the type and event types of their values; one
// whose value does not decode reads as type 0 (a types filter refuses it),
// an old skipped entry as skipped. New entries appended after them, in the
// same log, keep theirs, and a page can mix both formats.
func TestRedisReadsPreviousFormat(t *testing.T) {
	env := testenv.Redis(t)
	s := startRedis(t, env.Client, replay.RedisConfig{Namespace: env.Prefix}, true)
	vectors := factVectors(t)
	key := logKey(env.Prefix, 0)
	for i, v := range vectors {
		if err := env.Client.XAdd(bg(t), oldEntry(key, int64(i), "value", string(v.value), "demo-tenant")).Err(); err != nil {
			t.Fatal(err)
		}
	}
	oldSkipped := int64(len(vectors))
	if err := env.Client.XAdd(bg(t), oldEntry(key, oldSkipped, "skipped", "truncated", "")).Err(); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.PExpire(bg(t), key, conformanceTTL).Err(); err != nil {
		t.Fatal(err)
	}
	batch := batchValue(t, dashstreampb.EventType_EVENT_TYPE_TOOL_START, dashstreampb.EventType_EVENT_TYPE_TOOL_END)
	next := oldSkipped + 1
	s.Append(bg(t), []*replay.Record{
		{Partition: 0, Offset: next, Prev: next - 1, Value: batch, Type: 8, EventTypes: []int32{40, 41}},
		{Partition: 0, Offset: next + 1, Prev: next, Value: []byte{0}, Type: 0}, // an empty message: type 0 stored as such
	})
	s.flush(t)

	got := readAll(t, s, 0)
	if len(got) != len(vectors)+3 {
		t.Fatalf("read %d records, want %d", len(got), len(vectors)+3)
	}
	for i, v := range vectors {
		r := got[i]
		if r.Offset != int64(i) || string(r.Value) != string(v.value) || r.Tenant != "demo-tenant" ||
			len(r.Threads) != 1 || r.Threads[0] != (replay.ThreadSeq{Thread: "a", Sequence: uint64(i%100 + 1)}) {
			t.Fatalf("%s: offset %d tenant %q threads %v, value of %d bytes", v.name, r.Offset, r.Tenant, r.Threads, len(r.Value))
		}
		// An invalid vector has neither facts in the manifest nor in the read.
		checkFacts(t, "old "+v.name, r, v.typ, v.events)
	}
	if r := got[oldSkipped]; r.Skipped != "truncated" || r.Value != nil || r.Type != 0 {
		t.Errorf("old skipped entry read as %+v", r)
	}
	checkFacts(t, "new batch", got[next], 8, []int32{40, 41})
	checkFacts(t, "new empty message", got[next+1], 0, nil)

	// One page across the formats: the last old entries and the new ones.
	recs, _, err := s.Read(bg(t), 0, oldSkipped-3, replay.Limit{Records: 10})
	if err != nil || len(recs) != 5 {
		t.Fatalf("mixed page: %d records (%v), want 5", len(recs), err)
	}
	v := vectors[oldSkipped-2]
	checkFacts(t, "old "+v.name+" in a mixed page", recs[0], v.typ, v.events)
	checkFacts(t, "new batch in a mixed page", recs[3], 8, []int32{40, 41})
}

// TestTiersRedisPageFacts: a page the tiers serve from Redis (memory holds
// only the newest records) carries each record's type and event types, so
// a types or event_types filter matches it as it is, with no decode by the
// reader.
func TestTiersRedisPageFacts(t *testing.T) {
	env := testenv.Redis(t)
	s := startRedis(t, env.Client, replay.RedisConfig{Namespace: env.Prefix}, true)
	tiers := replay.NewTiers(replay.NewMemory(replay.MemoryConfig{PerPartition: 3}), nil)
	tiers.SetRedis(s)
	var vectors []factVector
	for _, v := range factVectors(t) {
		if v.valid {
			vectors = append(vectors, v)
		}
	}
	recs := make([]*replay.Record, len(vectors))
	for i, v := range vectors {
		recs[i] = &replay.Record{Partition: 1, Offset: int64(i), Prev: int64(i) - 1, Value: v.value, Type: v.typ, EventTypes: v.events}
	}
	tiers.Append(recs)
	s.flush(t)
	var served int
	for after := int64(-1); after < int64(len(vectors)-3-1); {
		page, err := tiers.Page(bg(t), 1, after, replay.Limit{Records: 5}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if page.Tier != replay.TierRedis || len(page.Records) == 0 {
			t.Fatalf("page after %d: tier %q with %d records, want Redis", after, page.Tier, len(page.Records))
		}
		for _, r := range page.Records {
			v := vectors[r.Offset]
			checkFacts(t, v.name, r, v.typ, v.events)
			if r == recs[r.Offset] {
				t.Fatalf("offset %d: the page holds the appended record, not Redis's", r.Offset)
			}
			served++
		}
		after = page.Records[len(page.Records)-1].Offset
	}
	if served < len(vectors)-3 {
		t.Fatalf("Redis served %d records, want %d", served, len(vectors)-3)
	}
}
