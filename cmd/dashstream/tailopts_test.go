package main

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/pkg/client"
)

// TestTailURLAndTokenSources runs tail against a gateway that requires a
// token, with the URL and token given by flags, environment and token files:
// a record printed proves which URL and token were used (a wrong token is
// refused with 401, a wrong URL is unreachable). No token is ever printed.
func TestTailURLAndTokenSources(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway")
	}
	const right, wrong = "right-token-7f3a", "wrong-token-91c2"
	gw := "ws://" + startGateway(t, map[string]string{"WEBSOCKET_AUTH_TOKEN": right}).HTTPAddr() + "/ws"
	closed := closedURL(t)
	dir := t.TempDir()
	rightFile, wrongFile := filepath.Join(dir, "right"), filepath.Join(dir, "wrong")
	writeFile(t, rightFile, "  "+right+"\n")
	writeFile(t, wrongFile, wrong+"\n")
	tests := []struct {
		name string
		args []string
		vars map[string]string
		want int // 0: one record printed; 1: refused (401); 3: unreachable
	}{
		{"flags", []string{"--url", gw, "--token", right}, nil, 0},
		{"environment", nil, map[string]string{envURL: gw, envToken: right}, 0},
		{"--url over DASHSTREAM_URL", []string{"--url", closed}, map[string]string{envURL: gw, envToken: right}, 3},
		{"DASHSTREAM_URL over the default", []string{"--token", right}, map[string]string{envURL: gw}, 0},
		{"--token over DASHSTREAM_TOKEN", []string{"--url", gw, "--token", wrong}, map[string]string{envToken: right}, 1},
		{"empty --token over DASHSTREAM_TOKEN", []string{"--url", gw, "--token", ""}, map[string]string{envToken: right}, 1},
		{"--token-file over DASHSTREAM_TOKEN", []string{"--url", gw, "--token-file", rightFile}, map[string]string{envToken: wrong}, 0},
		{"--token-file over DASHSTREAM_TOKEN, refused", []string{"--url", gw, "--token-file", wrongFile}, map[string]string{envToken: right}, 1},
		{"DASHSTREAM_TOKEN over DASHSTREAM_TOKEN_FILE", []string{"--url", gw}, map[string]string{envToken: right, envTokenFile: wrongFile}, 0},
		{"DASHSTREAM_TOKEN_FILE", []string{"--url", gw}, map[string]string{envTokenFile: rightFile}, 0},
		{"--token-file over DASHSTREAM_TOKEN_FILE", []string{"--url", gw, "--token-file", rightFile}, map[string]string{envTokenFile: wrongFile}, 0},
		{"no token", []string{"--url", gw}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var out, errOut syncBuffer
			args := append([]string{"--from", "earliest", "--max", "1"}, tt.args...)
			code := runTail(ctx, args, testEnv(nil, &out, &errOut, tt.vars))
			stdout, stderr := out.String(), errOut.String()
			if strings.Contains(stdout+stderr, right) || strings.Contains(stdout+stderr, wrong) {
				t.Fatalf("a token was printed:\n%s\n%s", stdout, stderr)
			}
			if code != tt.want {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.want, stderr)
			}
			switch tt.want {
			case 0:
				if lines := jsonLines(t, stdout); len(lines) != 1 || lines[0]["message_type"] == nil {
					t.Fatalf("stdout %q", stdout)
				}
			case 1:
				if !strings.Contains(stderr, "refused the connection (HTTP 401): check the token") {
					t.Fatalf("stderr %q", stderr)
				}
			case exitUnreachable:
				if !strings.HasPrefix(stderr, "dashstream tail: cannot reach "+closed) {
					t.Fatalf("stderr %q", stderr)
				}
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTailDefaultsAndTokenFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, content)
		return p
	}
	tests := []struct {
		name      string
		args      []string
		vars      map[string]string
		url, tok  string
		wantError string // a usage error naming this
	}{
		{"defaults", nil, nil, defaultTailURL, "", ""},
		{"trimmed file", []string{"--token-file", write("t", "\n tok \r\n")}, nil, defaultTailURL, "tok", ""},
		{"both flags", []string{"--token", "a", "--token-file", write("b", "b")}, nil, "", "", "--token and --token-file exclude each other"},
		{"missing file", []string{"--token-file", filepath.Join(dir, "nope")}, nil, "", "", `--token-file "` + filepath.Join(dir, "nope") + `": no such file`},
		{"empty file", nil, map[string]string{envTokenFile: write("e", " \n")}, "", "", "DASHSTREAM_TOKEN_FILE"},
		{"two lines", []string{"--token-file", write("2", "a\nb\n")}, nil, "", "", "more than one line"},
		{"huge file", []string{"--token-file", write("h", strings.Repeat("x", maxTokenFile+1))}, nil, "", "", "larger than 64 KiB"},
		{"bad DASHSTREAM_URL", nil, map[string]string{envURL: "http://gw/ws?token=abc"}, "", "", `DASHSTREAM_URL "http://gw/ws?token=redacted": want ws://`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errOut strings.Builder
			o, code := parseTailFlags(tt.args, testEnv(nil, io.Discard, &errOut, tt.vars))
			if tt.wantError != "" {
				if code != 2 || !strings.Contains(errOut.String(), tt.wantError) || strings.Count(errOut.String(), "\n") != 1 {
					t.Fatalf("exit %d, stderr %q; want a usage error with %q", code, errOut.String(), tt.wantError)
				}
				return
			}
			if code != -1 || o.url != tt.url || o.token != tt.tok {
				t.Fatalf("code %d url %q token %q (stderr %q)", code, o.url, o.token, errOut.String())
			}
		})
	}
}

// TestTailUnreachable: a gateway that cannot be reached is one line on
// stderr and exit 3: at once without --timeout, after --timeout with one.
func TestTailUnreachable(t *testing.T) {
	closed := closedURL(t)
	hung, err := net.Listen("tcp", "127.0.0.1:0") // accepts connections (backlog), never answers
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	hungURL := "ws://" + hung.Addr().String() + "/ws"
	refused := regexp.QuoteMeta(closed) + ` \(connection refused\): is it running\? try 'dashstream demo'`
	tests := []struct {
		name     string
		args     []string
		line     string // regexp of the one stderr line after "dashstream tail: cannot reach "
		min, max time.Duration
	}{
		{"refused, no timeout", []string{"--url", closed}, refused, 0, 5 * time.Second},
		{"refused until the timeout", []string{"--url", closed, "--timeout", "1s"}, refused, 900 * time.Millisecond, 10 * time.Second},
		{"refused until the timeout, --max", []string{"--url", closed, "--timeout", "1s", "--max", "5"}, refused, 900 * time.Millisecond, 10 * time.Second},
		{"no answer until the timeout", []string{"--url", hungURL, "--timeout", "700ms"},
			regexp.QuoteMeta(hungURL) + ` \(no answer within 700ms\): is it running\? try 'dashstream demo'`, 600 * time.Millisecond, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			code, out, errOut := runTailForTest(t, tt.args...)
			took := time.Since(start)
			re := regexp.MustCompile(`^dashstream tail: cannot reach ` + tt.line + "\n$")
			if code != exitUnreachable || out != "" || !re.MatchString(errOut) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d and a line matching %s", code, out, errOut, exitUnreachable, re)
			}
			if took < tt.min || took > tt.max {
				t.Fatalf("gave up after %s, want %s..%s", took, tt.min, tt.max)
			}
		})
	}
}

// TestUnreachableLine: the hint fits the target; the URL's token is hidden.
func TestUnreachableLine(t *testing.T) {
	tests := []struct {
		url  string
		err  error
		want string
	}{
		{"ws://gw.example.com/ws?token=abc", &net.DNSError{Err: "no such host", Name: "gw.example.com", IsNotFound: true},
			"cannot reach ws://gw.example.com/ws?token=redacted (no such host): is it running, and reachable from here?"},
		{"ws://localhost:3002/ws", &client.HandshakeError{Status: 503},
			"cannot reach ws://localhost:3002/ws (HTTP 503): it answers but does not accept connections now; retry, or wait with --timeout"},
		{"ws://[::1]:3002/ws", nil, "cannot reach ws://[::1]:3002/ws (no answer): is it running? try 'dashstream demo'"},
	}
	for _, tt := range tests {
		tl := &tail{o: tailOptions{url: tt.url}, lastErr: tt.err}
		if got := tl.unreachable(); got != tt.want {
			t.Errorf("%s, %v:\n got %s\nwant %s", tt.url, tt.err, got, tt.want)
		}
	}
}

func TestShownURL(t *testing.T) {
	for in, want := range map[string]string{
		"ws://127.0.0.1:3002/ws":               "ws://127.0.0.1:3002/ws",
		"wss://gw/ws?token=abc&x=1":            "wss://gw/ws?token=redacted&x=1",
		"wss://gw/ws?access_token=abc":         "wss://gw/ws?access_token=redacted",
		"wss://user:pw@gw/ws":                  "wss://user:redacted@gw/ws",
		"wss://gw/ws?Token=abc&token=def&y=%2": "wss://gw/ws?Token=redacted&token=redacted", // the bad pair is dropped
		"ws://[::1/ws?token=abc":               "<unparsable URL>",
	} {
		if got := shownURL(in); got != want {
			t.Errorf("shownURL(%q) = %q, want %q", in, got, want)
		}
	}
}
