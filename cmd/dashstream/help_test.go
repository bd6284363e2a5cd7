package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// runForTest runs the whole command line (as main does) with no
// environment variables.
func runForTest(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut testenv.SyncBuffer
	code = run(context.Background(), args, testEnv(nil, &out, &errOut, nil))
	return code, out.String(), errOut.String()
}

var (
	flagEntry   = regexp.MustCompile(`^  --[a-z0-9-]+(, --[a-z0-9-]+)?( \([A-Z0-9_]+(, default ".*")?\)| \(default ".*"\))?$`)
	flagDetail  = regexp.MustCompile(`^      \S`)
	exampleLine = regexp.MustCompile(`^  (\S+=\S+ )*dashstream( |$)`)
)

// checkHelp checks the structure every help shares: the usage line, a
// one-line summary, a Flags section of two-line entries and 2-3 examples.
func checkHelp(t *testing.T, name, help string, wantFlags []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(help, "\n"), "\n")
	if len(lines) < 8 || !strings.HasPrefix(lines[0], "Usage: dashstream "+name+" [flags]") || lines[1] != "" ||
		lines[2] == "" || lines[3] != "" {
		t.Fatalf("%s: head of help:\n%s", name, help)
	}
	flagsAt, examplesAt := index(lines, "Flags:"), index(lines, "Examples:")
	if flagsAt < 0 || examplesAt < flagsAt {
		t.Fatalf("%s: no Flags: then Examples: section:\n%s", name, help)
	}
	entries := 0
	for i := flagsAt + 1; i < examplesAt-1; i++ {
		if !flagEntry.MatchString(lines[i]) {
			continue // the note heading the configuration flags
		}
		if !flagDetail.MatchString(lines[i+1]) {
			t.Errorf("%s: flag %q without a description line", name, lines[i])
		}
		entries++
	}
	if entries == 0 && lines[flagsAt+1] != "  (none besides --help)" {
		t.Errorf("%s: no flag entries", name)
	}
	if lines[examplesAt-1] != "" {
		t.Errorf("%s: no blank line before Examples:", name)
	}
	examples := lines[examplesAt+1:]
	if len(examples) < 2 || len(examples) > 3 {
		t.Errorf("%s: %d examples", name, len(examples))
	}
	for _, e := range examples {
		if !exampleLine.MatchString(e) {
			t.Errorf("%s: example %q is not a dashstream command line", name, e)
		}
	}
	for _, f := range wantFlags {
		if !strings.Contains(help, "\n  "+f) {
			t.Errorf("%s: help lacks flag %q", name, f)
		}
	}
}

func index(lines []string, s string) int {
	for i, l := range lines {
		if l == s {
			return i
		}
	}
	return -1
}

func TestHelpOfEveryCommand(t *testing.T) {
	tests := []struct {
		name      string
		wantFlags []string
	}{
		{"serve", []string{"--kafka-brokers (KAFKA_BROKERS)", `--websocket-host (WEBSOCKET_HOST, default "127.0.0.1")`, "--insecure-public"}},
		{"demo", []string{"--kafka-topic (KAFKA_TOPIC", "--websocket-port (WEBSOCKET_PORT"}},
		{"tail", []string{`--url (DASHSTREAM_URL, default "ws://127.0.0.1:3002/ws")`, "--token (DASHSTREAM_TOKEN)", "--token-file (DASHSTREAM_TOKEN_FILE)", "--timeout"}},
		{"bench", []string{`--clients (default "100")`, "--url"}},
		{"decode", []string{"--json", "--max-payload"}},
		{"config", []string{"--redis-url (REDIS_URL)"}},
		{"version", nil},
	}
	if len(tests) != len(commands()) {
		t.Fatalf("%d commands, %d tested", len(commands()), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var first string
			for _, args := range [][]string{{"help", tt.name}, {tt.name, "--help"}, {tt.name, "-h"}} {
				code, out, errOut := runForTest(t, args...)
				if code != 0 || errOut != "" {
					t.Fatalf("%v: exit %d, stderr %q", args, code, errOut)
				}
				if first == "" {
					first = out
					checkHelp(t, tt.name, out, tt.wantFlags)
				} else if out != first {
					t.Fatalf("%v prints another help:\n%s", args, out)
				}
			}
		})
	}
}

func TestTopHelp(t *testing.T) {
	var first string
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"help", "help"}} {
		code, out, errOut := runForTest(t, args...)
		if code != 0 || errOut != "" {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errOut)
		}
		if first == "" {
			first = out
			checkHelp(t, "<command>", out, []string{"--help", "--version"})
		} else if out != first {
			t.Fatalf("%v prints another help", args)
		}
	}
	for name := range commands() {
		if !regexp.MustCompile(`\n  ` + name + ` +[A-Z]`).MatchString(first) {
			t.Errorf("top help does not list %s:\n%s", name, first)
		}
	}
	code, out, errOut := runForTest(t)
	if code != 2 || out != "" || errOut != first {
		t.Errorf("no arguments: exit %d, stdout %q; want the help on stderr", code, out)
	}
}

// TestUsageErrors: every bad invocation exits 2 with one line on stderr
// naming the command and what was wrong, and nothing on stdout.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string // in the one stderr line
	}{
		{[]string{"nope"}, `dashstream: unknown command "nope"`},
		{[]string{"help", "nope"}, `dashstream help: unknown command "nope"`},
		{[]string{"help", "tail", "extra"}, `dashstream help: unknown command "tail"`},
		{[]string{"serve", "--no-such-flag"}, "dashstream serve: config: flag provided but not defined: -no-such-flag"},
		{[]string{"demo", "--websocket-port", "x"}, "dashstream demo: config: WEBSOCKET_PORT (flag --websocket-port)"},
		{[]string{"config", "stray"}, `dashstream config: unexpected argument "stray"`},
		{[]string{"tail", "--no-such-flag"}, "dashstream tail: flag provided but not defined: -no-such-flag"},
		{[]string{"tail", "--timeout", "soon"}, `dashstream tail: invalid value "soon" for flag -timeout`},
		{[]string{"tail", "--from", "nowhere"}, `dashstream tail: --from "nowhere"`},
		{[]string{"tail", "--url", "http://x/ws"}, `dashstream tail: --url "http://x/ws": want ws:// or wss://`},
		{[]string{"tail", "stray"}, `dashstream tail: unexpected argument "stray"`},
		{[]string{"bench", "--clients", "x"}, `dashstream bench: invalid value "x" for flag -clients`},
		{[]string{"decode"}, "dashstream decode: no input files"},
		{[]string{"decode", "--max-payload", "0", "f"}, "dashstream decode: --max-payload 0"},
		{[]string{"version", "--short"}, "dashstream version: flag provided but not defined: -short"},
		{[]string{"version", "x"}, `dashstream version: unexpected argument "x"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := runForTest(t, tt.args...)
			if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 2 and one line with %q", code, out, errOut, tt.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		code, out, errOut := runForTest(t, args...)
		if code != 0 || errOut != "" || strings.Count(out, "\n") != 1 || !strings.Contains(out, "go1.") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}
