package e2e

// A types / event_types filter (docs/PROTOCOL.md §3.8) served from the
// Redis tier decides on the message type and event types the Redis entry
// stores, with no decode of the value by the gateway, and still gets them
// for entries of the previous format (written by an older gateway, without
// them), against real Kafka and real Redis.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// Stored facts as the Redis entry's "facts" field holds them: the message
// type byte, then one byte per event type below 128.
var (
	factsStateDiff = string([]byte{byte(dashstreampb.MessageType_MESSAGE_TYPE_STATE_DIFF)})
	factsNodeEnd   = string([]byte{byte(dashstreampb.MessageType_MESSAGE_TYPE_EVENT), byte(dashstreampb.EventType_EVENT_TYPE_NODE_END)})
)

// TestFilterRedisStoredFacts: 100 records on one partition, memory holding
// the newest 20. Once Redis holds them all the test rewrites the Redis log
// (same entries, same order): offsets 0–29 in the previous format (no facts
// field), offsets 30–59 with facts that contradict their value (a
// StateDiff stored as a NODE_END event, an event stored as a StateDiff),
// 60–79 as written. A "types" and an "event_types" client reading from the
// start then get exactly the records whose facts match: for 0–29 those of
// their value (the Redis tier reads the facts of an old entry from it), for
// 30–59 those stored — a gateway that decoded the value of a Redis record
// would deliver the others — and for 60–99 those of their value.
func TestFilterRedisStoredFacts(t *testing.T) {
	const n = 100
	k, topic := kafkaEnv(t, 1)
	r := testenv.Redis(t)
	g := startGateway(t, redisEnv(k, topic, r.URL, map[string]string{
		"REPLAY_BUFFER_MEMORY_SIZE": "20", "REDIS_MAX_SEQUENCES": "1000", "REPLAY_MAX_TOTAL": "1000"}))
	ns := namespaceOf(t, g)
	cleanupRedisKeys(t, r.Client, ns)
	recs := subProduce(t, k, topic, 1, n, 0)
	last := subLast(recs)
	waitHeads(t, g, last, arrive)
	waitRedis(t, r.Client, ns, last, arrive)

	first := recs[0].offset
	byOffset := map[int64]subRecord{}
	for _, rec := range recs {
		byOffset[rec.offset] = rec
	}
	tampered := func(o int64) bool { return o-first >= 30 && o-first < 60 }
	rewriteRedisLog(t, r.Client, ns, func(o int64, values map[string]any) {
		switch {
		case o-first < 30:
			delete(values, "facts")
		case tampered(o) && isStateDiff(byOffset[o]):
			values["facts"] = factsNodeEnd
		case tampered(o):
			values["facts"] = factsStateDiff
		}
	})

	// What each record is to a filter: the stored lie in 30–59, the value's
	// truth elsewhere.
	seen := func(rec subRecord) subRecord {
		if !tampered(rec.offset) {
			return rec
		}
		if isStateDiff(rec) {
			rec.typ, rec.etype = "event", dashstreampb.EventType_EVENT_TYPE_NODE_END
		} else {
			rec.typ, rec.etype = "state_diff", 0
		}
		return rec
	}
	redis0 := tierHits(t, g, "redis")
	cases := []struct {
		name, filter string
		keep         func(subRecord) bool
	}{
		{"types", `{"types":["state_diff"]}`, func(r subRecord) bool { return seen(r).typ == "state_diff" }},
		{"event types", `{"event_types":["NODE_END"]}`, func(r subRecord) bool {
			s := seen(r)
			return s.typ == "event" && s.etype == dashstreampb.EventType_EVENT_TYPE_NODE_END
		}},
	}
	for _, tc := range cases {
		for _, v2 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/v2=%v", tc.name, v2), func(t *testing.T) {
				want := subSelect(recs, nil, tc.keep)
				c := subDial(t, g, v2, nil, tc.filter)
				got, rcs := subRead(t, c, want)
				subCheck(t, "replay from the start", got, want)
				if len(rcs) != 1 || rcs[0].Capped {
					t.Fatalf("replay_complete frames %+v, want one, not capped", rcs)
				}
				var lies int
				for _, rec := range got {
					if tampered(rec.Offset) {
						lies++
					}
				}
				if lies == 0 {
					t.Fatal("no record of the rewritten facts was delivered: the case proves nothing")
				}
			})
		}
	}
	if tierHits(t, g, "redis") <= redis0 {
		t.Fatal("the replays did not read Redis")
	}
}

func isStateDiff(r subRecord) bool { return r.typ == "state_diff" }

// rewriteRedisLog replaces partition 0's Redis log of namespace ns by the
// same entries, in order, each passed to edit first; the TTL is kept.
// Nothing else writes to it meanwhile (no record is being produced).
func rewriteRedisLog(t *testing.T, rc *redis.Client, ns string, edit func(offset int64, values map[string]any)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := redisLogKey(ns, 0)
	entries, err := rc.XRange(ctx, key, "-", "+").Result()
	if err != nil || len(entries) == 0 {
		t.Fatalf("XRANGE %s: %d entries (%v)", key, len(entries), err)
	}
	ttl, err := rc.PTTL(ctx, key).Result()
	if err != nil || ttl <= 0 {
		t.Fatalf("PTTL %s: %v (%v)", key, ttl, err)
	}
	for _, e := range entries {
		id, _, _ := strings.Cut(e.ID, "-")
		o, err := strconv.ParseInt(id, 10, 64)
		if _, ok := e.Values["value"]; err != nil || !ok {
			t.Fatalf("entry %s: not a record value: %v (%v)", e.ID, e.Values, err)
		}
		edit(o, e.Values)
	}
	_, err = rc.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Del(ctx, key)
		for _, e := range entries {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: e.ID, Values: e.Values})
		}
		pipe.PExpire(ctx, key, ttl)
		return nil
	})
	if err != nil {
		t.Fatalf("rewrite %s: %v", key, err)
	}
}
