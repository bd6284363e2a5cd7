package wsproto

import (
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// controlCase is one client frame and what ParseControl must make of it.
type controlCase struct {
	name    string
	in      string
	kind    ControlKind
	code    string // expected error code, "" for none
	from    string
	mode    string
	offsets map[int32]int64
	threads map[string]uint64
	invalid []string // expected Invalid entries (sorted); nil = none
	ns      string
}

var controlCases = []controlCase{
	{name: "ping", in: `{"type":"ping"}`, kind: ControlPing},
	{name: "ping with extra fields", in: `{"type":"ping","ts":12,"x":{"y":[1,2]}}`, kind: ControlPing},
	{name: "cursor_reset", in: `{"type":"cursor_reset"}`, kind: ControlCursorReset},
	{name: "unknown type", in: `{"type":"subscribe"}`, code: CodeUnknownType},
	{name: "missing type", in: `{"from":"latest"}`, code: CodeUnknownType},
	{name: "null document", in: `null`, code: CodeUnknownType},
	{name: "type not a string", in: `{"type":1}`, code: CodeInvalidJSON},
	{name: "malformed JSON", in: `{"type":"resume"`, code: CodeInvalidJSON},
	{name: "empty frame", in: ``, code: CodeInvalidJSON},
	{name: "array", in: `[{"type":"ping"}]`, code: CodeInvalidJSON},
	{name: "bare string", in: `"ping"`, code: CodeInvalidJSON},
	{name: "trailing garbage", in: `{"type":"ping"} x`, code: CodeInvalidJSON},
	{name: "offsets not an object", in: `{"type":"resume","lastOffsetsByPartition":[1,2]}`, code: CodeInvalidJSON},

	{name: "resume string offsets", in: `{"type":"resume","lastOffsetsByPartition":{"0":"41","3":"7"}}`,
		kind: ControlResume, from: FromCursor, mode: ModePartition, offsets: map[int32]int64{0: 41, 3: 7}},
	{name: "resume integer offsets", in: `{"type":"resume","lastOffsetsByPartition":{"0":41,"3":7}}`,
		kind: ControlResume, from: FromCursor, mode: ModePartition, offsets: map[int32]int64{0: 41, 3: 7}},
	{name: "resume offset 0 and -1", in: `{"type":"resume","lastOffsetsByPartition":{"0":0,"1":"-1","2":-1,"3":"0"}}`,
		kind: ControlResume, from: FromCursor, mode: ModePartition, offsets: map[int32]int64{0: 0, 1: -1, 2: -1, 3: 0}},
	{name: "resume 2^63-1 exact", in: `{"type":"resume","lastOffsetsByPartition":{"0":"9223372036854775807","1":9223372036854775807,"2":9223372036854775806}}`,
		kind: ControlResume, from: FromCursor, mode: ModePartition,
		offsets: map[int32]int64{0: math.MaxInt64, 1: math.MaxInt64, 2: math.MaxInt64 - 1}},
	{name: "resume 2^53+1 stays exact", in: `{"type":"resume","lastOffsetsByPartition":{"0":9007199254740993}}`,
		kind: ControlResume, from: FromCursor, mode: ModePartition, offsets: map[int32]int64{0: 9007199254740993}},
	{name: "resume invalid entries are reported and ignored",
		in:   `{"type":"resume","lastOffsetsByPartition":{"0":"-2","1":"abc","2":1.5,"3":1e3,"4":"9223372036854775808","5":"12","6":null,"7":true,"8":{},"9":"","10":" 5"}}`,
		kind: ControlResume, from: FromCursor, mode: ModePartition, offsets: map[int32]int64{5: 12},
		invalid: []string{`0="-2"`, `10=" 5"`, `1="abc"`, `2=1.5`, `3=1e3`, `4="9223372036854775808"`, `6=null`, `7=true`, `8={}`, `9=""`}},
	{name: "resume out-of-range partition keys",
		in:   `{"type":"resume","lastOffsetsByPartition":{"-1":"5","2147483648":"5","x":"5","":"5","1.0":"5","2147483647":"5"}}`,
		kind: ControlResume, from: FromCursor, mode: ModePartition, offsets: map[int32]int64{math.MaxInt32: 5},
		invalid: []string{`-1="5"`, `1.0="5"`, `2147483648="5"`, `="5"`, `x="5"`}},
	{name: "resume non-canonical partition keys are ambiguous",
		in:   `{"type":"resume","lastOffsetsByPartition":{"1":"5","01":"9","+1":"7","-0":"3"}}`,
		kind: ControlResume, from: FromCursor, mode: ModePartition, offsets: map[int32]int64{1: 5},
		invalid: []string{`+1="7"`, `-0="3"`, `01="9"`}},
	{name: "resume empty object is partition mode", in: `{"type":"resume","lastOffsetsByPartition":{}}`,
		kind: ControlResume, from: FromCursor, mode: ModePartition, offsets: map[int32]int64{}},
	{name: "resume bare", in: `{"type":"resume"}`,
		kind: ControlResume, from: FromCursor, mode: ModePartition, offsets: map[int32]int64{}},
	{name: "from latest", in: `{"type":"resume","from":"latest"}`,
		kind: ControlResume, from: FromLatest, mode: ModePartition, offsets: map[int32]int64{}},
	{name: "from earliest", in: `{"type":"resume","from":"earliest","lastOffsetsByPartition":{"0":"3"}}`,
		kind: ControlResume, from: FromEarliest, mode: ModePartition, offsets: map[int32]int64{0: 3}},
	{name: "invalid from falls back to cursor", in: `{"type":"resume","from":"beginning","lastOffsetsByPartition":{"0":"3"}}`,
		kind: ControlResume, from: FromCursor, mode: ModePartition, offsets: map[int32]int64{0: 3},
		invalid: []string{`from=beginning`}},
	{name: "invalid mode is reported", in: `{"type":"resume","mode":"both","lastOffsetsByPartition":{"0":"3"}}`,
		kind: ControlResume, from: FromCursor, mode: ModePartition, offsets: map[int32]int64{0: 3},
		invalid: []string{`mode=both`}},
	{name: "namespace", in: `{"type":"resume","namespace":"ns-1","lastOffsetsByPartition":{"0":"3"}}`,
		kind: ControlResume, from: FromCursor, mode: ModePartition, offsets: map[int32]int64{0: 3}, ns: "ns-1"},

	{name: "threads infer thread mode", in: `{"type":"resume","lastSequencesByThread":{"a":"5","b":7}}`,
		kind: ControlResume, from: FromCursor, mode: ModeThread, offsets: map[int32]int64{},
		threads: map[string]uint64{"a": 5, "b": 7}},
	{name: "threads u64 max", in: `{"type":"resume","lastSequencesByThread":{"a":"18446744073709551615","b":18446744073709551615,"c":0}}`,
		kind: ControlResume, from: FromCursor, mode: ModeThread, offsets: map[int32]int64{},
		threads: map[string]uint64{"a": math.MaxUint64, "b": math.MaxUint64, "c": 0}},
	{name: "threads invalid entries", in: `{"type":"resume","lastSequencesByThread":{"a":"-1","b":"18446744073709551616","c":2.5,"":"4","d":"4"}}`,
		kind: ControlResume, from: FromCursor, mode: ModeThread, offsets: map[int32]int64{},
		threads: map[string]uint64{"d": 4}, invalid: []string{`="4"`, `a="-1"`, `b="18446744073709551616"`, `c=2.5`}},
	{name: "threadId and lastSequence", in: `{"type":"resume","threadId":"t-1","lastSequence":12}`,
		kind: ControlResume, from: FromCursor, mode: ModeThread, offsets: map[int32]int64{},
		threads: map[string]uint64{"t-1": 12}},
	{name: "threadId and string lastSequence", in: `{"type":"resume","threadId":"t-1","lastSequence":"18446744073709551615"}`,
		kind: ControlResume, from: FromCursor, mode: ModeThread, offsets: map[int32]int64{},
		threads: map[string]uint64{"t-1": math.MaxUint64}},
	{name: "threadId without lastSequence is from the start", in: `{"type":"resume","threadId":"t-1"}`,
		kind: ControlResume, from: FromCursor, mode: ModeThread, offsets: map[int32]int64{},
		threads: map[string]uint64{"t-1": 0}},
	{name: "threadId merges with lastSequencesByThread", in: `{"type":"resume","threadId":"t-1","lastSequence":3,"lastSequencesByThread":{"t-2":"4"}}`,
		kind: ControlResume, from: FromCursor, mode: ModeThread, offsets: map[int32]int64{},
		threads: map[string]uint64{"t-1": 3, "t-2": 4}},
	{name: "offsets win over threads", in: `{"type":"resume","lastOffsetsByPartition":{"0":"1"},"lastSequencesByThread":{"a":"5"}}`,
		kind: ControlResume, from: FromCursor, mode: ModePartition, offsets: map[int32]int64{0: 1},
		threads: map[string]uint64{"a": 5}},
	{name: "null offsets count as absent", in: `{"type":"resume","lastOffsetsByPartition":null,"lastSequencesByThread":{"a":"5"}}`,
		kind: ControlResume, from: FromCursor, mode: ModeThread, offsets: map[int32]int64{},
		threads: map[string]uint64{"a": 5}},
	{name: "explicit thread mode overrides offsets", in: `{"type":"resume","mode":"thread","lastOffsetsByPartition":{"0":"1"},"lastSequencesByThread":{"a":"5"}}`,
		kind: ControlResume, from: FromCursor, mode: ModeThread, offsets: map[int32]int64{0: 1},
		threads: map[string]uint64{"a": 5}},
	{name: "explicit partition mode overrides threads", in: `{"type":"resume","mode":"partition","lastSequencesByThread":{"a":"5"}}`,
		kind: ControlResume, from: FromCursor, mode: ModePartition, offsets: map[int32]int64{},
		threads: map[string]uint64{"a": 5}},
}

func TestParseControl(t *testing.T) {
	for _, tc := range controlCases {
		t.Run(tc.name, func(t *testing.T) {
			c, e := ParseControl([]byte(tc.in))
			checkControl(t, tc, c, e)
		})
	}
}

func checkControl(t *testing.T, tc controlCase, c Control, e *Error) {
	t.Helper()
	if tc.code != "" {
		if e == nil || e.Code != tc.code || e.Type != TypeError || e.Message == "" {
			t.Fatalf("error = %+v, want code %s", e, tc.code)
		}
		if c.Kind != 0 || c.Resume != nil {
			t.Fatalf("a rejected frame still yields %+v", c)
		}
		return
	}
	if e != nil {
		t.Fatalf("unexpected error %+v", e)
	}
	if c.Kind != tc.kind {
		t.Fatalf("kind = %d, want %d", c.Kind, tc.kind)
	}
	if tc.kind != ControlResume {
		if c.Resume != nil {
			t.Fatalf("non-resume frame carries a resume")
		}
		return
	}
	r := c.Resume
	if r.From != tc.from || r.Mode != tc.mode || r.Namespace != tc.ns {
		t.Fatalf("from/mode/ns = %q/%q/%q, want %q/%q/%q", r.From, r.Mode, r.Namespace, tc.from, tc.mode, tc.ns)
	}
	if !maps.Equal(r.Offsets, tc.offsets) {
		t.Fatalf("offsets = %v, want %v", r.Offsets, tc.offsets)
	}
	if len(r.Threads) != len(tc.threads) || (len(tc.threads) > 0 && !maps.Equal(r.Threads, tc.threads)) {
		t.Fatalf("threads = %v, want %v", r.Threads, tc.threads)
	}
	if !slices.Equal(r.Invalid, tc.invalid) {
		t.Fatalf("invalid = %q, want %q", r.Invalid, tc.invalid)
	}
}

func TestReplayMode(t *testing.T) {
	for _, tc := range []struct{ from, mode, want string }{
		{FromCursor, ModePartition, "cursor"},
		{FromLatest, ModePartition, "latest"},
		{FromEarliest, ModePartition, "earliest"},
		{FromLatest, ModeThread, "thread"},
	} {
		if got := (&Resume{From: tc.from, Mode: tc.mode}).ReplayMode(); got != tc.want {
			t.Errorf("ReplayMode(%s,%s) = %s, want %s", tc.from, tc.mode, got, tc.want)
		}
	}
}

func TestParseControlLimits(t *testing.T) {
	partitions := func(n int) string {
		m := make(map[string]string, n)
		for i := range n {
			m[strconv.Itoa(i)] = "1"
		}
		b, _ := json.Marshal(map[string]any{"type": "resume", "lastOffsetsByPartition": m})
		return string(b)
	}
	threads := func(n int, extra string) string {
		m := make(map[string]string, n)
		for i := range n {
			m["thread-"+strconv.Itoa(i)] = "1"
		}
		doc := map[string]any{"type": "resume", "lastSequencesByThread": m}
		if extra != "" {
			doc["threadId"] = extra
			doc["lastSequence"] = 1
		}
		b, _ := json.Marshal(doc)
		return string(b)
	}
	for _, tc := range []struct {
		name, in, code string
		n              int
	}{
		{"1024 partitions", partitions(MaxResumePartitions), "", MaxResumePartitions},
		{"1025 partitions", partitions(MaxResumePartitions + 1), CodeResumeTooManyPartitions, 0},
		{"10000 threads", threads(MaxResumeThreads, ""), "", MaxResumeThreads},
		{"10001 threads", threads(MaxResumeThreads+1, ""), CodeResumeTooManyThreads, 0},
		{"10000 threads plus threadId", threads(MaxResumeThreads, "one-more"), CodeResumeTooManyThreads, 0},
		{"9999 threads plus threadId", threads(MaxResumeThreads-1, "one-more"), "", MaxResumeThreads},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, e := ParseControl([]byte(tc.in))
			if tc.code != "" {
				if e == nil || e.Code != tc.code || c.Resume != nil || c.Kind != 0 {
					t.Fatalf("got %+v %+v, want %s", c, e, tc.code)
				}
				return
			}
			if e != nil {
				t.Fatalf("error %+v", e)
			}
			if got := len(c.Resume.Offsets) + len(c.Resume.Threads); got != tc.n {
				t.Fatalf("%d entries, want %d", got, tc.n)
			}
		})
	}
	t.Run("frame over 1 MiB", func(t *testing.T) {
		big := `{"type":"ping","pad":"` + strings.Repeat("x", MaxControlBytes) + `"}`
		if _, e := ParseControl([]byte(big)); e == nil || e.Code != CodeControlTooLarge {
			t.Fatalf("error = %+v", e)
		}
	})
	t.Run("frame of exactly 1 MiB", func(t *testing.T) {
		doc := `{"type":"ping","pad":""}`
		exact := doc[:len(doc)-2] + strings.Repeat("x", MaxControlBytes-len(doc)) + `"}`
		if len(exact) != MaxControlBytes {
			t.Fatalf("built %d bytes", len(exact))
		}
		if c, e := ParseControl([]byte(exact)); e != nil || c.Kind != ControlPing {
			t.Fatalf("got %+v %+v", c, e)
		}
	})
	t.Run("invalid entries are bounded", func(t *testing.T) {
		m := make(map[string]string, MaxResumePartitions)
		for i := range MaxResumePartitions {
			m[strconv.Itoa(i)] = strings.Repeat("z", 500)
		}
		b, _ := json.Marshal(map[string]any{"type": "resume", "lastOffsetsByPartition": m})
		c, e := ParseControl(b)
		if e != nil {
			t.Fatal(e)
		}
		checkInvalidBounded(t, c.Resume)
		if len(c.Resume.Invalid) != maxReportedInvalid+1 || c.Resume.Invalid[maxReportedInvalid] != "…" {
			t.Fatalf("%d invalid entries, last %q", len(c.Resume.Invalid), c.Resume.Invalid[len(c.Resume.Invalid)-1])
		}
	})
	t.Run("thread id length", func(t *testing.T) {
		long := strings.Repeat("é", MaxThreadIDBytes/2+1) // 2 bytes per rune
		ok := strings.Repeat("a", MaxThreadIDBytes)
		b, _ := json.Marshal(map[string]any{"type": "resume", "lastSequencesByThread": map[string]string{long: "1", ok: "2"}})
		c, e := ParseControl(b)
		if e != nil {
			t.Fatal(e)
		}
		if len(c.Resume.Threads) != 1 || c.Resume.Threads[ok] != 2 || len(c.Resume.Invalid) != 1 {
			t.Fatalf("threads %d, invalid %q", len(c.Resume.Threads), c.Resume.Invalid)
		}
		checkInvalidBounded(t, c.Resume)
	})
	t.Run("namespace is bounded", func(t *testing.T) {
		b, _ := json.Marshal(map[string]any{"type": "resume", "namespace": strings.Repeat("ñ", 1000)})
		c, _ := ParseControl(b)
		if len(c.Resume.Namespace) > 256 || !utf8.ValidString(c.Resume.Namespace) {
			t.Fatalf("namespace of %d bytes, valid %v", len(c.Resume.Namespace), utf8.ValidString(c.Resume.Namespace))
		}
	})
}

// checkInvalidBounded asserts the invariants of Resume.Invalid: bounded in
// number and size, valid UTF-8 once JSON-encoded in an error frame.
func checkInvalidBounded(t testing.TB, r *Resume) {
	t.Helper()
	if len(r.Invalid) > maxReportedInvalid+1 {
		t.Fatalf("%d invalid entries", len(r.Invalid))
	}
	for _, s := range r.Invalid {
		if len(s) > 64+1+64 {
			t.Fatalf("invalid entry of %d bytes", len(s))
		}
	}
	e := NewError(CodeResumeInvalidEntry, "x")
	e.Entries = r.Invalid
	var back Error
	if err := json.Unmarshal(Frame(e)[frameHeaderLen(Frame(e)):], &back); err != nil {
		t.Fatalf("error frame is not JSON: %v", err)
	}
}

func frameHeaderLen(f []byte) int {
	switch f[1] & 0x7f {
	case 126:
		return 4
	case 127:
		return 10
	}
	return 2
}

func FuzzParseControl(f *testing.F) {
	for _, tc := range controlCases {
		f.Add([]byte(tc.in))
	}
	f.Add([]byte(`{"type":"resume","lastOffsetsByPartition":{"0":"1","00":"2"},"threadId":"","lastSequence":"x"}`))
	f.Add([]byte(`{"type":"resume","lastSequencesByThread":{"\ud800":"1"},"namespace":"\xff\xfe"}`))
	f.Add([]byte(`{"type":"refresh","token":"a.b.c"}`))
	f.Add([]byte(`{"type":"refresh","token":"\u0000"}`))
	f.Add([]byte(`{"type":"resume","from":"latest","filter":{"threads":["a"],"types":["event"]},"format":"json","join":"checkpoint"}`))
	f.Add([]byte(`{"type":"resume","filter":null,"format":7,"join":["none"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, e := ParseControl(data)
		if e != nil {
			if c.Kind != 0 || e.Code == "" {
				t.Fatalf("error %+v with control %+v", e, c)
			}
			_ = Frame(e) // every error must encode
			return
		}
		switch c.Kind {
		case ControlPing, ControlCursorReset:
			if c.Resume != nil || c.Token != "" {
				t.Fatal("resume or token on a frame without them")
			}
			return
		case ControlRefresh:
			if c.Resume != nil || c.Token == "" || len(c.Token) > MaxRefreshTokenBytes {
				t.Fatalf("refresh %+v: want a token of 1..%d bytes and no resume", c, MaxRefreshTokenBytes)
			}
			return
		case ControlResume:
		default:
			t.Fatalf("kind %d without error", c.Kind)
		}
		r := c.Resume
		if r == nil {
			t.Fatal("resume frame without Resume")
		}
		if r.From != FromLatest && r.From != FromCursor && r.From != FromEarliest {
			t.Fatalf("from %q", r.From)
		}
		if r.Mode != ModePartition && r.Mode != ModeThread {
			t.Fatalf("mode %q", r.Mode)
		}
		if len(r.Offsets) > MaxResumePartitions || len(r.Threads) > MaxResumeThreads {
			t.Fatalf("%d offsets, %d threads", len(r.Offsets), len(r.Threads))
		}
		for p, o := range r.Offsets {
			if p < 0 || o < -1 {
				t.Fatalf("accepted p%d o%d", p, o)
			}
		}
		for th := range r.Threads {
			if th == "" || len(th) > MaxThreadIDBytes {
				t.Fatalf("accepted thread of %d bytes", len(th))
			}
		}
		if len(r.Namespace) > 256 {
			t.Fatalf("namespace of %d bytes", len(r.Namespace))
		}
		if (r.Format != FormatBinary && r.Format != FormatJSON) || (r.Join != JoinNone && r.Join != JoinCheckpoint) {
			t.Fatalf("format %q join %q", r.Format, r.Join)
		}
		if r.Filter != nil && (!json.Valid(r.Filter) || string(r.Filter) == "null") {
			t.Fatalf("filter %q", r.Filter)
		}
		checkInvalidBounded(t, r)
	})
}

func TestParseRefresh(t *testing.T) {
	maxToken := strings.Repeat("t", MaxRefreshTokenBytes)
	cases := []struct {
		name  string
		in    string
		token string
		code  string
	}{
		{"token", `{"type":"refresh","token":"a.b.c"}`, "a.b.c", ""},
		{"extra fields ignored", `{"type":"refresh","token":"a.b.c","from":"latest"}`, "a.b.c", ""},
		{"largest token", `{"type":"refresh","token":"` + maxToken + `"}`, maxToken, ""},
		{"oversize token", `{"type":"refresh","token":"` + maxToken + `x"}`, "", CodeTokenInvalid},
		{"missing token", `{"type":"refresh"}`, "", CodeTokenInvalid},
		{"empty token", `{"type":"refresh","token":""}`, "", CodeTokenInvalid},
		{"null token", `{"type":"refresh","token":null}`, "", CodeTokenInvalid},
		{"number token", `{"type":"refresh","token":12}`, "", CodeTokenInvalid},
		{"object token", `{"type":"refresh","token":{"jwt":"a.b.c"}}`, "", CodeTokenInvalid},
		{"malformed", `{"type":"refresh","token":"a.b.c"`, "", CodeInvalidJSON},
		{"over the frame limit", `{"type":"refresh","token":"` + strings.Repeat("t", MaxControlBytes) + `"}`, "", CodeControlTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, e := ParseControl([]byte(tc.in))
			if tc.code != "" {
				if e == nil || e.Code != tc.code || c.Kind != 0 || c.Token != "" {
					t.Fatalf("got %+v, %+v; want error %s and no control", c, e, tc.code)
				}
				return
			}
			if e != nil || c.Kind != ControlRefresh || c.Token != tc.token {
				t.Fatalf("got kind %d token %.20q err %+v; want refresh %.20q", c.Kind, c.Token, e, tc.token)
			}
		})
	}
}
