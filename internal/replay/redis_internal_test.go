package replay

import (
	"cmp"
	"context"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

func TestThreadsCodecRoundTrip(t *testing.T) {
	cases := [][]ThreadSeq{
		nil,
		{{Thread: "", Sequence: 0}},
		{{Thread: "a", Sequence: 1}, {Thread: "ü{}:", Sequence: math.MaxUint64}},
		{{Thread: strings.Repeat("x", 70000), Sequence: 1 << 63}},
	}
	for i, c := range cases {
		got, err := decodeThreads(string(encodeThreads(c)))
		if err != nil || !slices.Equal(got, c) {
			t.Fatalf("case %d: %v (%v), want %v", i, got, err, c)
		}
	}
	for _, bad := range []string{"\x05ab", "\x01a", "\x01a\xff", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"} {
		if _, err := decodeThreads(bad); err == nil {
			t.Errorf("decodeThreads(%q) accepted", bad)
		}
	}
}

func FuzzDecodeThreads(f *testing.F) {
	f.Add(string(encodeThreads([]ThreadSeq{{Thread: "t", Sequence: 7}})))
	f.Add("\x05ab")
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := decodeThreads(s)
		if err == nil && string(encodeThreads(ts)) != s && len(ts) > 0 {
			// Non-minimal varints decode too; re-decoding must agree.
			again, err := decodeThreads(string(encodeThreads(ts)))
			if err != nil || !slices.Equal(again, ts) {
				t.Fatalf("re-encode of %q differs", s)
			}
		}
	})
}

func FuzzParseRef(f *testing.F) {
	f.Add(refMember(5, 3, 9))
	f.Add("ffffffffffffffff:7fffffff:7fffffffffffffff")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseRef(s)
		if err == nil && refMember(r.Sequence, r.Partition, r.Offset) != strings.ToLower(s) {
			t.Fatalf("parseRef(%q) = %+v does not round trip", s, r)
		}
	})
}

// Lexicographic order of members is numeric (sequence, partition, offset)
// order, exact over the whole uint64/int32/int64 range.
func TestRefMemberOrder(t *testing.T) {
	edges := []uint64{0, 1, 1<<53 - 1, 1 << 53, 1<<53 + 1, 1<<63 - 1, 1 << 63, math.MaxUint64 - 1, math.MaxUint64}
	var refs []Ref
	for range 2000 {
		seq := edges[rand.IntN(len(edges))]
		if rand.IntN(2) == 0 {
			seq = rand.Uint64()
		}
		refs = append(refs, Ref{Sequence: seq, Partition: rand.Int32N(3), Offset: rand.Int64N(math.MaxInt64)})
	}
	byMember := slices.Clone(refs)
	slices.SortFunc(byMember, func(a, b Ref) int {
		return strings.Compare(refMember(a.Sequence, a.Partition, a.Offset), refMember(b.Sequence, b.Partition, b.Offset))
	})
	byNumber := slices.Clone(refs)
	slices.SortFunc(byNumber, func(a, b Ref) int {
		if a.Sequence != b.Sequence {
			return cmp.Compare(a.Sequence, b.Sequence)
		}
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return cmp.Compare(a.Offset, b.Offset)
	})
	if !slices.Equal(byMember, byNumber) {
		t.Fatal("member order differs from numeric order")
	}
	for _, r := range refs {
		got, err := parseRef(refMember(r.Sequence, r.Partition, r.Offset))
		if err != nil || got != r {
			t.Fatalf("parseRef(refMember(%+v)) = %+v, %v", r, got, err)
		}
	}
}

// TestRefsAfterExclusive: every member of sequence s sorts below the start
// for "> s" and every member of s+1 above it.
func TestRefsAfterExclusive(t *testing.T) {
	for _, s := range []uint64{0, 9, 15, 1 << 53, math.MaxUint64 - 1} {
		start := refsAfter(s)[1:]
		lo := refMember(s, math.MaxInt32, math.MaxInt64)
		hi := refMember(s+1, 0, 0)
		if lo >= start || start >= hi {
			t.Fatalf("seq %d: %q < %q < %q does not hold", s, lo, start, hi)
		}
	}
}

// crc16 is Redis Cluster's key hash (CRC-16/XMODEM).
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// keySlot is CLUSTER KEYSLOT: the hash tag (first {...} non-empty) or the key.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key)) % 16384
}

func TestKeySlotMatchesRedis(t *testing.T) {
	// Reference values from the Redis Cluster specification and CLUSTER KEYSLOT.
	for key, want := range map[string]int{"123456789": 12739, "foo": 12182, "{user1000}.following": 3443, "foo{}{bar}": 8363} {
		if got := keySlot(key); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestKeysHashTags(t *testing.T) {
	r := &Redis{tag: keyRoot + "{ns-1:"}
	cases := []struct{ key, tag string }{
		{r.logKey(0), "ns-1:p0"},
		{r.logKey(1023), "ns-1:p1023"},
		{r.threadKey("a}b{c"), "ns-1:t:YX1ie2M"},
		{r.threadKey(""), "ns-1:t:"},
	}
	for _, c := range cases {
		if keySlot(c.key) != int(crc16(c.tag))%16384 || !strings.Contains(c.key, "{"+c.tag+"}") {
			t.Errorf("key %q: hash tag is not %q", c.key, c.tag)
		}
	}
	if keySlot(r.logKey(0)) == keySlot(r.logKey(1)) && keySlot(r.logKey(1)) == keySlot(r.logKey(2)) {
		t.Error("partitions share one slot")
	}
}

// Every redis.call in the scripts addresses the one declared key.
func TestScriptsTouchOneKey(t *testing.T) {
	call := regexp.MustCompile(`redis\.call\('(\w+)',\s*([^,)]+)`)
	for name, src := range map[string]string{"append": appendLua, "thread index": threadIndexLua} {
		if !strings.Contains(src, "local key = KEYS[1]") || strings.Contains(src, "KEYS[2]") {
			t.Errorf("%s: does not bind exactly KEYS[1]", name)
		}
		calls := call.FindAllStringSubmatch(src, -1)
		if len(calls) == 0 {
			t.Errorf("%s: no redis.call found", name)
		}
		for _, c := range calls {
			if c[2] != "key" {
				t.Errorf("%s: %s on %s, not on KEYS[1]", name, c[1], c[2])
			}
		}
	}
}

// slotCheck records the key slots of every script call sent.
type slotCheck struct {
	mu    sync.Mutex
	evals int
	bad   []string
}

func (h *slotCheck) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *slotCheck) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.check(cmd); return next(ctx, cmd) }
}
func (h *slotCheck) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.check(c)
		}
		return next(ctx, cmds)
	}
}

func (h *slotCheck) check(cmd redis.Cmder) {
	name := strings.ToLower(cmd.Name())
	if name != "eval" && name != "evalsha" {
		return
	}
	args := cmd.Args()
	n, _ := strconv.Atoi(toString(args[2]))
	h.mu.Lock()
	defer h.mu.Unlock()
	h.evals++
	if n != 1 {
		h.bad = append(h.bad, cmd.String())
	}
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	}
	return ""
}

// Against real Redis: every EVAL/EVALSHA the tier sends declares exactly one
// key, so no script can span two slots.
func TestScriptCallsDeclareOneKey(t *testing.T) {
	env := testenv.Redis(t)
	opts, _ := redis.ParseURL(env.URL)
	c := redis.NewClient(opts)
	defer c.Close()
	h := &slotCheck{}
	c.AddHook(h)
	r, err := NewRedis(c, RedisConfig{Namespace: env.Prefix}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testenv.WaitFor(t, 10*time.Second, r.Healthy, "healthy")
	var recs []*Record
	for o := int64(0); o < 600; o++ {
		recs = append(recs, &Record{Partition: int32(o % 3), Offset: o, Prev: -1, Value: []byte("v"),
			Threads: []ThreadSeq{{Thread: "T" + strconv.FormatInt(o%7, 10), Sequence: uint64(o + 1)}, {Thread: "all", Sequence: uint64(o + 1)}}})
	}
	r.Append(ctx, recs)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if h.evals < 3+8 || len(h.bad) > 0 {
		t.Fatalf("%d script calls, bad: %v", h.evals, h.bad)
	}
}

func TestRecordFieldsTenant(t *testing.T) {
	r := &Record{Offset: 5, Prev: 4, Value: []byte("v"), Tenant: "acme"}
	args := appendArgs(nil, r)
	if len(args) != argsPerRecord || args[argsPerRecord-2] != "acme" {
		t.Fatalf("args %q", args)
	}
	for _, tc := range []struct {
		fields map[string]any
		want   string
	}{
		{map[string]any{"prev": "4", "value": "v", "ts": "0", "threads": "", "tenant": "acme"}, "acme"},
		{map[string]any{"prev": "4", "value": "v", "ts": "0", "threads": ""}, ""}, // written before tenants
	} {
		var got Record
		if _, err := decodeFields(&got, tc.fields); err != nil || got.Tenant != tc.want {
			t.Fatalf("decodeFields(%v): tenant %q (%v), want %q", tc.fields, got.Tenant, err, tc.want)
		}
	}
	if (&Record{Tenant: "acme"}).Size() != (&Record{}).Size()+len("acme") {
		t.Fatal("Size does not count the tenant")
	}
}

func TestFactsCodecRoundTrip(t *testing.T) {
	cases := []struct {
		typ    uint8
		events []int32
		size   int
	}{
		{0, nil, 1},
		{2, nil, 1},
		{1, []int32{31}, 2},
		{8, []int32{10, 11, 10, 91, 127}, 6},
		{8, []int32{128, math.MaxInt32, -1, math.MinInt32, 0}, 1 + 2 + 5 + 5 + 5 + 1},
		{255, []int32{1}, 2},
	}
	for _, c := range cases {
		b := encodeFacts(c.typ, c.events)
		if len(b) != c.size {
			t.Errorf("encodeFacts(%d, %v): %d bytes, want %d", c.typ, c.events, len(b), c.size)
		}
		typ, events, err := decodeFacts(string(b))
		if err != nil || typ != c.typ || !slices.Equal(events, c.events) {
			t.Fatalf("decodeFacts(encodeFacts(%d, %v)) = %d, %v, %v", c.typ, c.events, typ, events, err)
		}
	}
	// A truncated varint, one above uint32 and an empty field are corrupt.
	for _, bad := range []string{"", "\x08\x80", "\x01\xff\xff\xff\xff\x10"} {
		if _, _, err := decodeFacts(bad); err == nil {
			t.Errorf("decodeFacts(%q) accepted", bad)
		}
	}
}

func FuzzDecodeFacts(f *testing.F) {
	f.Add(string(encodeFacts(8, []int32{10, 300, -1})))
	f.Add("\x01\x80")
	f.Fuzz(func(t *testing.T, s string) {
		typ, events, err := decodeFacts(s)
		if err != nil {
			return
		}
		// Non-minimal varints decode too; re-decoding must agree.
		typ2, events2, err := decodeFacts(string(encodeFacts(typ, events)))
		if err != nil || typ2 != typ || !slices.Equal(events2, events) {
			t.Fatalf("re-encode of %q differs", s)
		}
	})
}

// TestDecodeFieldsFormats: an entry of a valid record carries its facts
// (also Type 0); one without the facts field is of the previous format
// (legacy, no facts); a skipped entry is never legacy; a corrupt facts
// field fails the entry.
func TestDecodeFieldsFormats(t *testing.T) {
	base := func(extra ...string) map[string]any {
		m := map[string]any{"prev": "4", "ts": "7", "threads": string(encodeThreads([]ThreadSeq{{Thread: "a", Sequence: 3}}))}
		for i := 0; i < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	cases := []struct {
		name   string
		fields map[string]any
		legacy bool
		typ    uint8
		events []int32
	}{
		{"event", base("value", "v", "facts", string(encodeFacts(1, []int32{12}))), false, 1, []int32{12}},
		{"no body", base("value", "v", "facts", string(encodeFacts(0, nil))), false, 0, nil},
		{"previous format", base("value", "v", "tenant", "acme"), true, 0, nil},
		{"skipped", base("skipped", "truncated"), false, 0, nil},
	}
	for _, c := range cases {
		var r Record
		legacy, err := decodeFields(&r, c.fields)
		if err != nil || legacy != c.legacy || r.Type != c.typ || !slices.Equal(r.EventTypes, c.events) {
			t.Errorf("%s: legacy %v type %d events %v (%v), want %v %d %v", c.name, legacy, r.Type, r.EventTypes, err, c.legacy, c.typ, c.events)
		}
	}
	if _, err := decodeFields(&Record{}, base("value", "v", "facts", "")); err == nil {
		t.Error("an empty facts field was accepted")
	}
	args := appendArgs(nil, &Record{Offset: 1, Prev: 0, Skipped: "truncated", Type: 3})
	if f := args[argsPerRecord-1].([]byte); len(f) != 0 {
		t.Errorf("a skipped record's facts argument is %q, want empty", f)
	}
	args = appendArgs(nil, &Record{Offset: 1, Prev: 0, Value: []byte{0}})
	if f := args[argsPerRecord-1].([]byte); len(f) != 1 {
		t.Errorf("a Type 0 record's facts argument is %q, want one byte", f)
	}
}
