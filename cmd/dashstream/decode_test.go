package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const vectorDir = "../../testdata/dashstream"

// manifestVector holds the MANIFEST.json fields that `decode --json` reports.
type manifestVector struct {
	File        *string         `json:"file"`
	Name        string          `json:"name"`
	Valid       bool            `json:"valid"`
	Framing     string          `json:"framing"`
	MessageType *string         `json:"message_type"`
	ErrorClass  string          `json:"error_class"`
	Header      map[string]any  `json:"header"`
	InnerEvents []innerVector   `json:"inner_events"`
	Decoded     json.RawMessage `json:"decoded"`
}

type innerVector struct {
	ThreadID string `json:"thread_id"`
	Sequence string `json:"sequence"`
}

// decodeLine is one `decode --json` output line.
type decodeLine struct {
	File        string          `json:"file"`
	Valid       bool            `json:"valid"`
	ErrorKind   string          `json:"error_kind"`
	Error       string          `json:"error"`
	Framing     string          `json:"framing"`
	MessageType string          `json:"message_type"`
	Header      map[string]any  `json:"header"`
	InnerEvents []innerVector   `json:"inner_events"`
	Message     json.RawMessage `json:"message"`
}

var classKinds = map[string]string{
	"unknown_framing_or_invalid_protobuf": "invalid_protobuf",
	"truncated_protobuf":                  "invalid_protobuf",
}

func loadVectors(t *testing.T) []manifestVector {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(vectorDir, "MANIFEST.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs []manifestVector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

func runDecodeForTest(t *testing.T, stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runDecode(args, testEnv(stdin, &out, &errOut, nil))
	return code, out.String(), errOut.String()
}

func parseLines(t *testing.T, out string) []decodeLine {
	t.Helper()
	var lines []decodeLine
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l decodeLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

func TestDecodeJSONAgreesWithManifest(t *testing.T) {
	var files []string
	var vectors []manifestVector
	for _, v := range loadVectors(t) {
		if v.File != nil {
			files = append(files, filepath.Join(vectorDir, *v.File))
			vectors = append(vectors, v)
		}
	}
	code, out, errOut := runDecodeForTest(t, nil, append([]string{"--json"}, files...)...)
	if code != 1 {
		t.Errorf("exit %d with invalid vectors among inputs, want 1 (stderr %q)", code, errOut)
	}
	lines := parseLines(t, out)
	if len(lines) != len(vectors) {
		t.Fatalf("%d output lines for %d inputs", len(lines), len(vectors))
	}
	for i, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			if lines[i].File != files[i] {
				t.Fatalf("line %d is for %q, want %q", i, lines[i].File, files[i])
			}
			checkLine(t, v, lines[i])
		})
	}
}

func checkLine(t *testing.T, v manifestVector, got decodeLine) {
	t.Helper()
	if got.Valid != v.Valid {
		t.Fatalf("valid %v, want %v (error %s)", got.Valid, v.Valid, got.Error)
	}
	if !v.Valid {
		want := v.ErrorClass
		if k, ok := classKinds[want]; ok {
			want = k
		}
		if got.ErrorKind != want || got.Error == "" {
			t.Errorf("error_kind %q (%q), want %q", got.ErrorKind, got.Error, want)
		}
		return
	}
	if got.Framing != v.Framing || got.MessageType != *v.MessageType {
		t.Errorf("framing/type %s/%s, want %s/%s", got.Framing, got.MessageType, v.Framing, *v.MessageType)
	}
	checkHeaderLine(t, v.Header, got.Header)
	if !reflect.DeepEqual(got.InnerEvents, v.InnerEvents) {
		t.Errorf("inner_events %+v, want %+v", got.InnerEvents, v.InnerEvents)
	}
	if !sameJSON(t, got.Message, v.Decoded) {
		t.Errorf("message\n got %s\nwant %s", got.Message, v.Decoded)
	}
}

// checkHeaderLine compares every manifest header field; timestamp_us is a
// number in the manifest and a decimal string in our output.
func checkHeaderLine(t *testing.T, want, got map[string]any) {
	t.Helper()
	if (want == nil) != (got == nil) {
		t.Fatalf("header %v, want %v", got, want)
	}
	for k, w := range want {
		g := got[k]
		if k == "timestamp_us" {
			w = json.Number(formatJSON(t, w))
			g = json.Number(g.(string))
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("header.%s = %#v, want %#v", k, g, w)
		}
	}
}

func formatJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sameJSON(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("got JSON %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("want JSON %s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

// endlessReader serves bytes forever and counts how many were read.
type endlessReader struct {
	fill byte
	read int
}

func (r *endlessReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.fill
	}
	r.read += len(p)
	return len(p), nil
}

func TestDecodeStdinOverSizeIsBounded(t *testing.T) {
	stdin := &endlessReader{fill: 0x0a}
	code, out, _ := runDecodeForTest(t, stdin, "--json", "--max-payload", "1000", "-")
	lines := parseLines(t, out)
	if code != 1 || len(lines) != 1 || lines[0].ErrorKind != "payload_too_large" {
		t.Fatalf("exit %d, output %q", code, out)
	}
	if stdin.read > 1002 { // cap + framing byte + 1
		t.Errorf("read %d bytes from stdin for a 1000-byte cap", stdin.read)
	}
}

func TestDecodeSynthesizedTooLarge(t *testing.T) {
	value := append([]byte{0x00}, bytes.Repeat([]byte{0x0a}, 10<<20+1)...)
	code, out, _ := runDecodeForTest(t, bytes.NewReader(value), "--json", "-")
	lines := parseLines(t, out)
	if code != 1 || len(lines) != 1 || lines[0].ErrorKind != "payload_too_large" || lines[0].File != "-" {
		t.Fatalf("exit %d, output %q", code, out)
	}
}

func TestDecodeExitCodes(t *testing.T) {
	valid := filepath.Join(vectorDir, "event_node_end_plain.bin")
	invalid := filepath.Join(vectorDir, "invalid_zstd_corrupt.bin")
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"all valid", []string{valid, valid}, 0},
		{"all valid json", []string{"--json", valid}, 0},
		{"one invalid", []string{valid, invalid}, 1},
		{"missing file", []string{"--json", filepath.Join(vectorDir, "no-such.bin")}, 1},
		{"no files", nil, 2},
		{"only flags", []string{"--json"}, 2},
		{"unknown flag", []string{"--nope", valid}, 2},
		{"bad max payload", []string{"--max-payload", "x", valid}, 2},
		{"zero max payload", []string{"--max-payload", "0", valid}, 2},
		{"help", []string{"-h"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runDecodeForTest(t, strings.NewReader(""), tt.args...)
			if code != tt.want {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.want, errOut)
			}
		})
	}
}

func TestDecodeStdin(t *testing.T) {
	value, err := os.ReadFile(filepath.Join(vectorDir, "token_chunk_final_zstd.bin"))
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ := runDecodeForTest(t, bytes.NewReader(value), "--json", "-")
	lines := parseLines(t, out)
	if code != 0 || len(lines) != 1 || !lines[0].Valid || lines[0].File != "-" || lines[0].Framing != "zstd" {
		t.Fatalf("exit %d, output %q", code, out)
	}
}

func TestDecodeText(t *testing.T) {
	files := []string{"event_thread_300_bytes_plain.bin", "event_batch_two_threads_plain.bin",
		"empty_message_plain.bin", "invalid_truncated_plain.bin"}
	var args []string
	for _, f := range files {
		args = append(args, filepath.Join(vectorDir, f))
	}
	code, out, _ := runDecodeForTest(t, nil, args...)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{
		"valid event, framing plain", "(truncated, 300 bytes)", "2025-11-26T12:00:00.",
		"valid event_batch", `thread:     "tv-batch-b"`, "sequence:   22", "EVENT_TYPE_TOOL_END",
		"valid none, framing plain", "INVALID (invalid_protobuf)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
