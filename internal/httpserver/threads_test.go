package httpserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// runsT0 is the producer time of the first test record (µs).
const runsT0 = int64(1_760_000_000_000_000)

// consumed builds the record a consumer makes of msg at p/o: decoded once,
// facts set, frames encoded.
func consumed(t *testing.T, p int32, o int64, msg *pb.DashStreamMessage) *replay.Record {
	t.Helper()
	v, err := dashstream.Encode(msg, dashstream.FramingPlain)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dashstream.NewDecoder(dashstream.DecoderConfig{}).Decode(v)
	if err != nil {
		t.Fatal(err)
	}
	r := &replay.Record{Partition: p, Offset: o, Prev: o - 1, Value: v, Tenant: d.Tenant(),
		Type: uint8(d.Type()), EventTypes: d.EventTypes(), TimestampUs: d.Headers[0].TimestampUs}
	r.GraphName, r.FullState = d.RunFacts()
	for _, h := range d.Headers {
		r.Threads = append(r.Threads, replay.ThreadSeq{Thread: h.ThreadID, Sequence: h.Sequence})
	}
	r.EncodeFrames()
	return r
}

func runEvent(thread, tenant string, seq uint64, et pb.EventType, attrs map[string]string) *pb.DashStreamMessage {
	ev := &pb.Event{Header: &pb.Header{ThreadId: thread, TenantId: tenant, Sequence: seq, TimestampUs: runsT0 + 1000*int64(seq)},
		EventType: et, NodeId: "node", Attributes: map[string]*pb.AttributeValue{}}
	for k, v := range attrs {
		ev.Attributes[k] = &pb.AttributeValue{Value: &pb.AttributeValue_StringValue{StringValue: v}}
	}
	return &pb.DashStreamMessage{Message: &pb.DashStreamMessage_Event{Event: ev}}
}

// threadsTiers holds three runs on partition 0: "a" (tenant acme, graph
// planner, running, 10 records), "b" (tenant other, graph coder,
// completed), "c" (no tenant, planner, failed).
func threadsTiers(t *testing.T) *replay.Tiers {
	t.Helper()
	start := func(th, tenant, graph string) *pb.DashStreamMessage {
		return runEvent(th, tenant, 1, pb.EventType_EVENT_TYPE_GRAPH_START,
			map[string]string{"graph_name": graph, "initial_state_json": `{"n":0}`})
	}
	msgs := []*pb.DashStreamMessage{start("a", "acme", "planner"), start("b", "other", "coder"), start("c", "", "planner")}
	for seq := uint64(2); seq <= 10; seq++ {
		msgs = append(msgs, runEvent("a", "acme", seq, pb.EventType_EVENT_TYPE_NODE_START, nil))
	}
	msgs = append(msgs, runEvent("b", "other", 2, pb.EventType_EVENT_TYPE_GRAPH_END, nil),
		runEvent("c", "", 2, pb.EventType_EVENT_TYPE_GRAPH_ERROR, nil))
	var recs []*replay.Record
	for o, m := range msgs {
		recs = append(recs, consumed(t, 0, int64(o), m))
	}
	tiers := replay.NewTiers(replay.NewMemory(replay.MemoryConfig{}), nil)
	tiers.Append(recs)
	return tiers
}

func threadsFixture(t *testing.T, tiers *replay.Tiers) *fixture {
	t.Helper()
	authn, err := auth.NewAuthenticator(auth.AuthConfig{Token: wsToken, JWTSecret: wsSecret, TenantClaim: "tenant"})
	if err != nil {
		t.Fatal(err)
	}
	return newFixture(t, func(d *Deps) {
		d.Auth = authn
		if tiers != nil {
			d.Threads = tiers
		}
	})
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

type runsAnswer struct {
	Threads []struct {
		ThreadID         string          `json:"thread_id"`
		GraphName        string          `json:"graph_name"`
		Status           string          `json:"status"`
		FirstTimestamp   *string         `json:"first_timestamp"`
		LastTimestampUs  int64           `json:"last_timestamp_us"`
		RecordCount      int             `json:"record_count"`
		LatestFullStateR json.RawMessage `json:"latest_full_state"`
	} `json:"threads"`
	Next *string `json:"next"`
}

func getRuns(t *testing.T, f *fixture, query string, hdr map[string]string) ([]string, runsAnswer) {
	t.Helper()
	w := f.do(t, http.MethodGet, "/api/threads"+query, "", hdr)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /api/threads%s: %d %s", query, w.Code, w.Body)
	}
	var ans runsAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, th := range ans.Threads {
		ids = append(ids, th.ThreadID)
	}
	return ids, ans
}

func TestThreadsList(t *testing.T) {
	f := threadsFixture(t, threadsTiers(t))
	hdr := bearer(wsToken)
	ids, ans := getRuns(t, f, "", hdr)
	if !slices.Equal(ids, []string{"a", "b", "c"}) || ans.Next != nil {
		t.Fatalf("threads %v next %v", ids, ans.Next)
	}
	a := ans.Threads[0]
	wantFirst := time.UnixMicro(runsT0 + 1000).UTC().Format(time.RFC3339Nano)
	if a.GraphName != "planner" || a.Status != "running" || a.RecordCount != 10 || a.LastTimestampUs != runsT0+10_000 ||
		a.FirstTimestamp == nil || *a.FirstTimestamp != wantFirst ||
		string(a.LatestFullStateR) != `{"partition":0,"offset":"0","sequence":"1"}` {
		t.Fatalf("thread a: %+v (full state %s)", a, a.LatestFullStateR)
	}
	if b, c := ans.Threads[1], ans.Threads[2]; b.Status != "completed" || b.GraphName != "coder" || c.Status != "failed" {
		t.Fatalf("b %+v, c %+v", b, c)
	}
	for query, want := range map[string][]string{
		"?status=running":                                     {"a"},
		"?status=completed":                                   {"b"},
		"?status=failed&graph_name=planner":                   {"c"},
		"?graph_name=planner":                                 {"a", "c"},
		"?since=" + strconv.FormatInt((runsT0+3000)/1000, 10): {"a"},
		"?since=" + url.QueryEscape(time.UnixMicro(runsT0+10_000).UTC().Format(time.RFC3339Nano)): {"a"},
		"?graph_name=nothing": nil,
	} {
		if ids, _ := getRuns(t, f, query, hdr); !slices.Equal(ids, want) {
			t.Fatalf("%s: %v, want %v", query, ids, want)
		}
	}
	// Paged one by one with the cursor.
	var all []string
	for query := "?limit=1"; ; {
		ids, ans := getRuns(t, f, query, hdr)
		all = append(all, ids...)
		if ans.Next == nil {
			break
		}
		query = "?limit=1&cursor=" + *ans.Next
	}
	if !slices.Equal(all, []string{"a", "b", "c"}) {
		t.Fatalf("paged: %v", all)
	}
	for _, bad := range []string{"?status=done", "?limit=0", "?limit=1001", "?limit=x", "?since=yesterday", "?cursor=***"} {
		if w := f.do(t, http.MethodGet, "/api/threads"+bad, "", hdr); w.Code != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", bad, w.Code, w.Body)
		}
	}
}

type recordsAnswer struct {
	ThreadID string `json:"thread_id"`
	Records  []struct {
		Partition int32           `json:"partition"`
		Offset    string          `json:"offset"`
		Sequences []string        `json:"sequences"`
		Value     string          `json:"value"`
		Message   json.RawMessage `json:"message"`
	} `json:"records"`
	Next *string `json:"next"`
}

func getRecords(t *testing.T, f *fixture, target string, hdr map[string]string) recordsAnswer {
	t.Helper()
	w := f.do(t, http.MethodGet, target, "", hdr)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", target, w.Code, w.Body)
	}
	var ans recordsAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil {
		t.Fatal(err)
	}
	return ans
}

func TestThreadRecordsPaged(t *testing.T) {
	tiers := threadsTiers(t)
	f := threadsFixture(t, tiers)
	var seqs []string
	after := "0"
	for page := 0; ; page++ {
		ans := getRecords(t, f, "/api/threads/a/records?limit=3&after_sequence="+after, bearer(wsToken))
		if len(ans.Records) > 3 || ans.ThreadID != "a" || page > 10 {
			t.Fatalf("page %d: %+v", page, ans)
		}
		for _, r := range ans.Records {
			seqs = append(seqs, r.Sequences...)
			if r.Partition != 0 || r.Value == "" || r.Message != nil {
				t.Fatalf("record %+v", r)
			}
		}
		if ans.Next == nil {
			break
		}
		after = *ans.Next
	}
	want := []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}
	if !slices.Equal(seqs, want) {
		t.Fatalf("sequences %v, want %v", seqs, want)
	}
	// base64 is the value byte for byte; json its canonical JSON.
	h, err := tiers.ThreadHistory(t.Context(), "a", 4, 1)
	if err != nil || len(h.Records) != 1 {
		t.Fatalf("history: %+v %v", h, err)
	}
	value := h.Records[0].Record.Value
	b64 := getRecords(t, f, "/api/threads/a/records?after_sequence=4&limit=1&format=base64", bearer(wsToken))
	if got, _ := base64.StdEncoding.DecodeString(b64.Records[0].Value); !bytes.Equal(got, value) {
		t.Fatal("base64 value differs from the record's")
	}
	js := getRecords(t, f, "/api/threads/a/records?after_sequence=4&limit=1&format=json", bearer(wsToken))
	want5, err := dashstream.NewDecoder(dashstream.DecoderConfig{}).ProtoJSON(value)
	if err != nil || !bytes.Equal(js.Records[0].Message, want5) || js.Records[0].Value != "" {
		t.Fatalf("json message %s, want %s (%v)", js.Records[0].Message, want5, err)
	}
	if none := getRecords(t, f, "/api/threads/nobody/records", bearer(wsToken)); len(none.Records) != 0 || none.Next != nil {
		t.Fatalf("unknown thread: %+v", none)
	}
	for _, bad := range []string{"?after_sequence=-1", "?after_sequence=x", "?limit=0", "?format=xml"} {
		if w := f.do(t, http.MethodGet, "/api/threads/a/records"+bad, "", bearer(wsToken)); w.Code != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", bad, w.Code, w.Body)
		}
	}
}

// Both routes authenticate as /ws does, and a tenant-bound token sees only
// its tenant's runs and records.
func TestThreadsAuthAndTenant(t *testing.T) {
	f := threadsFixture(t, threadsTiers(t))
	acme := tenantJWT(t, "acme", time.Now().Add(time.Hour))
	for _, target := range []string{"/api/threads", "/api/threads/a/records"} {
		for name, hdr := range map[string]map[string]string{
			"none":         nil,
			"wrong token":  bearer("nope"),
			"expired jwt":  bearer(tenantJWT(t, "acme", time.Now().Add(-time.Hour))),
			"other secret": bearer("eyJhbGciOiJIUzI1NiJ9.eyJ0ZW5hbnQiOiJhY21lIiwiZXhwIjo5OTk5OTk5OTk5fQ.x"),
		} {
			w := f.do(t, http.MethodGet, target, "", hdr)
			if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" {
				t.Fatalf("%s, %s: %d %s", target, name, w.Code, w.Body)
			}
		}
		if w := f.do(t, http.MethodGet, target+"?token="+wsToken, "", nil); w.Code != http.StatusOK {
			t.Fatalf("%s?token=: %d", target, w.Code)
		}
	}
	if ids, _ := getRuns(t, f, "", bearer(acme)); !slices.Equal(ids, []string{"a"}) {
		t.Fatalf("acme sees %v", ids)
	}
	if ids, _ := getRuns(t, f, "?token="+acme, nil); !slices.Equal(ids, []string{"a"}) {
		t.Fatalf("acme (query token) sees %v", ids)
	}
	if ids, _ := getRuns(t, f, "", bearer(tenantJWT(t, "nobody", time.Now().Add(time.Hour)))); len(ids) != 0 {
		t.Fatalf("tenant nobody sees %v", ids)
	}
	if ans := getRecords(t, f, "/api/threads/a/records", bearer(acme)); len(ans.Records) != 10 {
		t.Fatalf("acme reads %d of a's records", len(ans.Records))
	}
	for _, th := range []string{"b", "c"} {
		if ans := getRecords(t, f, "/api/threads/"+th+"/records", bearer(acme)); len(ans.Records) != 0 {
			t.Fatalf("acme reads %d of %s's records", len(ans.Records), th)
		}
	}
	if ans := getRecords(t, f, "/api/threads/b/records", bearer(wsToken)); len(ans.Records) != 2 {
		t.Fatalf("the static token reads %d of b's records", len(ans.Records))
	}
}

func TestThreadsUnavailable(t *testing.T) {
	if w := threadsFixture(t, nil).do(t, http.MethodGet, "/api/threads", "", bearer(wsToken)); w.Code != http.StatusNotImplemented {
		t.Fatalf("no thread index: %d", w.Code)
	}
	// A Redis tier that cannot answer (no server; its breaker has not
	// closed): history beyond memory is unknown, so the answer is 503.
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = client.Close() })
	store, err := replay.NewRedis(client, replay.RedisConfig{Namespace: "unavailable"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tiers := threadsTiers(t)
	tiers.SetRedis(store)
	w := threadsFixture(t, tiers).do(t, http.MethodGet, "/api/threads/a/records", "", bearer(wsToken))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || decode(t, w)["code"] != "REPLAY_UNAVAILABLE" {
		t.Fatalf("redis unavailable: %d %s", w.Code, w.Body)
	}
}

// blockingThreads holds every history read until release is closed. A fake:
// the real tiers cannot be made to hold a read open on cue.
type blockingThreads struct {
	*replay.Tiers
	started chan struct{}
	release chan struct{}
}

func (b blockingThreads) ThreadHistory(ctx context.Context, thread string, after uint64, limit int) (replay.History, error) {
	b.started <- struct{}{}
	<-b.release
	return b.Tiers.ThreadHistory(ctx, thread, after, limit)
}

// History reads beyond maxHistoryReads at once are refused with 503, not
// queued: they would hold deep-read slots that resumes need.
func TestThreadRecordsBounded(t *testing.T) {
	b := blockingThreads{Tiers: threadsTiers(t), started: make(chan struct{}), release: make(chan struct{})}
	f := threadsFixture(t, nil)
	f.srv.deps.Threads = b
	var wg sync.WaitGroup
	for range maxHistoryReads {
		wg.Go(func() {
			if w := f.do(t, http.MethodGet, "/api/threads/a/records", "", bearer(wsToken)); w.Code != http.StatusOK {
				t.Errorf("held read: %d %s", w.Code, w.Body)
			}
		})
		<-b.started
	}
	w := f.do(t, http.MethodGet, "/api/threads/a/records", "", bearer(wsToken))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("read beyond the bound: %d %s", w.Code, w.Body)
	}
	close(b.release)
	wg.Wait()
	go func() { <-b.started }() // the next read passes straight through
	if w := f.do(t, http.MethodGet, "/api/threads/a/records", "", bearer(wsToken)); w.Code != http.StatusOK {
		t.Fatalf("after the reads ended: %d", w.Code)
	}
}
