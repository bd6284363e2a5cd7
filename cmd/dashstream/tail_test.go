package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/hub"
	"github.com/dashflow/dashstream-gateway/internal/hub/hubtest"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

func TestMain(m *testing.M) {
	// A child this test binary started as the program itself (the reading
	// side of `bench --floor`): run it as main would.
	if len(os.Args) > 1 && os.Args[1] == "bench" {
		main()
	}
	goleak.VerifyTestMain(m)
}

// tailHub is an in-process hub with a memory replay tier (no Kafka).
type tailHub struct {
	*hubtest.Server
	url string
}

func newTailHub(t *testing.T, mem replay.MemoryConfig) *tailHub {
	t.Helper()
	s := hubtest.Start(t, hub.Config{}, mem)
	return &tailHub{Server: s, url: s.URL}
}

// publish hands values to the hub as partition p, offsets from, from+1, ...
func (th *tailHub) publish(p int32, from int64, values ...[]byte) {
	th.Publish(p, from, values, threadsOf)
}

// threadsOf indexes a value's (thread, sequence) pairs as the consumer does.
func threadsOf(v []byte) []replay.ThreadSeq {
	d, err := dashstream.NewDecoder(dashstream.DecoderConfig{}).Decode(v)
	if err != nil {
		return nil
	}
	var ts []replay.ThreadSeq
	for _, h := range d.Headers {
		ts = append(ts, replay.ThreadSeq{Thread: h.ThreadID, Sequence: h.Sequence})
	}
	return ts
}

// tailVector is what these tests read from MANIFEST.json.
type tailVector struct {
	File        string          `json:"file"`
	Valid       bool            `json:"valid"`
	Framing     string          `json:"framing"`
	MessageType string          `json:"message_type"`
	ErrorClass  string          `json:"error_class"`
	Header      map[string]any  `json:"header"`
	Decoded     json.RawMessage `json:"decoded"`
	value       []byte
}

const tailVectorDir = "../../testdata/dashstream"

func tailVectors(t *testing.T) []tailVector {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(tailVectorDir, "MANIFEST.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all, vs []tailVector
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	for _, v := range all {
		if v.File == "" {
			continue // synthesized at test time by other tests
		}
		if v.value, err = os.ReadFile(filepath.Join(tailVectorDir, v.File)); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	return vs
}

func runTailForTest(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runTail(context.Background(), args, testEnv(nil, &out, &errOut, nil))
	return code, out.String(), errOut.String()
}

func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

var tailClassKinds = map[string]string{
	"unknown_framing_or_invalid_protobuf": "invalid_protobuf",
	"truncated_protobuf":                  "invalid_protobuf",
}

func TestTailPrintsVectors(t *testing.T) {
	th := newTailHub(t, replay.MemoryConfig{})
	vs := tailVectors(t)
	values := make([][]byte, len(vs))
	for i := range vs {
		values[i] = vs[i].value
	}
	th.publish(0, 0, values...)
	cursorFile := filepath.Join(t.TempDir(), "cursor.json")
	code, out, errOut := runTailForTest(t, "--url", th.url, "--from", "earliest", "--max", itoa(len(vs)),
		"--cursor-file", cursorFile, "--timeout", "10s")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	lines := jsonLines(t, out)
	if len(lines) != len(vs) {
		t.Fatalf("%d lines for %d vectors", len(lines), len(vs))
	}
	for i, v := range vs {
		checkTailLine(t, v, i, lines[i])
	}
	b, _ := os.ReadFile(cursorFile)
	var cur struct{ Offsets map[string]string }
	if json.Unmarshal(b, &cur) != nil || cur.Offsets["0"] != itoa(len(vs)-1) {
		t.Fatalf("cursor file %s", b)
	}
}

func checkTailLine(t *testing.T, v tailVector, offset int, l map[string]any) {
	t.Helper()
	if l["partition"] != 0.0 || l["offset"] != itoa(offset) {
		t.Fatalf("%s: coordinates %v@%v", v.File, l["partition"], l["offset"])
	}
	if !v.Valid {
		kind := v.ErrorClass
		if k, ok := tailClassKinds[kind]; ok {
			kind = k
		}
		if l["error_kind"] != kind || l["error"] == "" {
			t.Fatalf("%s: error line %v, want kind %s", v.File, l, kind)
		}
		return
	}
	if l["framing"] != v.Framing || l["message_type"] != v.MessageType {
		t.Fatalf("%s: framing %v type %v", v.File, l["framing"], l["message_type"])
	}
	var want any
	json.Unmarshal(v.Decoded, &want)
	if want == nil {
		want = map[string]any{}
	}
	if !reflect.DeepEqual(l["message"], want) {
		t.Fatalf("%s: message %v\nwant %v", v.File, l["message"], want)
	}
	if v.Header == nil {
		return
	}
	ts, _ := json.Marshal(v.Header["timestamp_us"])
	if l["thread_id"] != v.Header["thread_id"] || l["sequence"] != v.Header["sequence"] || l["timestamp_us"] != string(ts) {
		t.Fatalf("%s: header fields %v %v %v, want %v", v.File, l["thread_id"], l["sequence"], l["timestamp_us"], v.Header)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestTailPretty(t *testing.T) {
	th := newTailHub(t, replay.MemoryConfig{})
	names := []string{"event_node_start_attrs_plain.bin", "event_batch_two_threads_zstd.bin",
		"tool_execution_failed_plain.bin", "invalid_zstd_corrupt.bin", "empty_message_plain.bin"}
	var values [][]byte
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(tailVectorDir, n))
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, b)
	}
	th.publish(2, 40, values...)
	code, out, errOut := runTailForTest(t, "--url", th.url, "--from", "earliest", "--pretty", "--max", "5", "--timeout", "10s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := []string{
		`^p2@40 event NODE_START node=\S+ thread=tv-thread-1 seq=2$`,
		`^p2@41 event_batch events=4 thread=tv-batch-a seq=0$`,
		`^p2@42 tool_execution \S+ FAILED thread=tv-thread-1 seq=\d+$`,
		`^p2@43 undecodable bad_zstd: .+$`,
		`^p2@44 none thread= seq=0$`,
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(want) {
		t.Fatalf("lines:\n%s", out)
	}
	for i, re := range want {
		if !regexp.MustCompile(re).MatchString(lines[i]) {
			t.Errorf("line %d %q does not match %s", i, lines[i], re)
		}
	}
}

func values(n int, from int) [][]byte {
	vs := make([][]byte, n)
	for i := range vs {
		vs[i] = []byte("\x02bad-" + itoa(from+i)) // undecodable: printed as error lines
	}
	return vs
}

func TestTailResumesFromCursorFile(t *testing.T) {
	th := newTailHub(t, replay.MemoryConfig{})
	th.publish(0, 0, values(10, 0)...)
	th.publish(1, 0, values(10, 0)...)
	cursorFile := filepath.Join(t.TempDir(), "cursor.json")
	var seen []string
	for run := 0; run < 4; run++ {
		code, out, errOut := runTailForTest(t, "--url", th.url, "--from", "earliest", "--max", "5",
			"--cursor-file", cursorFile, "--save-every", "2", "--timeout", "10s")
		if code != 0 {
			t.Fatalf("run %d: exit %d: %s", run, code, errOut)
		}
		for _, l := range jsonLines(t, out) {
			seen = append(seen, fmt.Sprint(l["partition"], "@", l["offset"]))
		}
	}
	if len(seen) != 20 {
		t.Fatalf("seen %d records: %v", len(seen), seen)
	}
	uniq := map[string]bool{}
	for _, s := range seen {
		if uniq[s] {
			t.Fatalf("duplicate %s in %v", s, seen)
		}
		uniq[s] = true
	}
}

func TestTailReportsControlFrames(t *testing.T) {
	th := newTailHub(t, replay.MemoryConfig{PerPartition: 5})
	th.publish(0, 0, values(20, 0)...)
	cursorFile := filepath.Join(t.TempDir(), "cursor.json")
	os.WriteFile(cursorFile, []byte(`{"namespace":"","offsets":{"0":"2"}}`), 0o600)
	code, out, errOut := runTailForTest(t, "--url", th.url, "--max", "5", "--cursor-file", cursorFile, "--timeout", "10s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"cursor_stale: partition 0 requested 2", "gap: partition 0 offsets 3..14 lost (12 records"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if lines := jsonLines(t, out); len(lines) != 5 || lines[0]["offset"] != "15" {
		t.Fatalf("stdout:\n%s", out)
	}
}

func TestTailTimeoutAndUsage(t *testing.T) {
	th := newTailHub(t, replay.MemoryConfig{})
	cases := []struct {
		args []string
		code int
	}{
		{[]string{"--url", th.url, "--timeout", "300ms"}, 0},
		{[]string{"--url", th.url, "--timeout", "300ms", "--max", "3"}, 1},
		{[]string{"--from", "nowhere"}, 2},
		{[]string{"--url", "http://x"}, 2},
		{[]string{"stray"}, 2},
		{[]string{"-h"}, 0},
	}
	for _, tc := range cases {
		if code, _, errOut := runTailForTest(t, tc.args...); code != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, code, tc.code, errOut)
		}
	}
}

func TestTailThreadResume(t *testing.T) {
	th := newTailHub(t, replay.MemoryConfig{})
	vs := tailVectors(t)
	var values [][]byte
	want := 0
	for _, v := range vs {
		values = append(values, v.value)
		if v.Header["thread_id"] == "tv-thread-1" && seqOf(v.Header["sequence"]) > 3 {
			want++
		}
	}
	th.publish(0, 0, values...)
	code, out, errOut := runTailForTest(t, "--url", th.url, "--thread", "tv-thread-1", "--last-sequence", "3",
		"--max", itoa(want), "--timeout", "10s")
	if code != 0 || want < 3 {
		t.Fatalf("exit %d (want %d records): %s", code, want, errOut)
	}
	for _, l := range jsonLines(t, out) {
		if l["thread_id"] != "tv-thread-1" || seqOf(l["sequence"]) <= 3 {
			t.Fatalf("thread resume delivered %v %v", l["thread_id"], l["sequence"])
		}
	}
}

func seqOf(v any) uint64 {
	s, _ := v.(string)
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}
