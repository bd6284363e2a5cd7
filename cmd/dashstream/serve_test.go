package main

import (
	"context"
	"io"
	"maps"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/app"
	"github.com/dashflow/dashstream-gateway/internal/app/apptest"
	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

// TestServeRefusesUnsafeBinds: a non-loopback bind without KAFKA_BROKERS
// exits 2 with one line naming it, whatever else is configured; without
// auth it exits 2 too unless --insecure-public. Nothing is started.
func TestServeRefusesUnsafeBinds(t *testing.T) {
	tests := []struct {
		name string
		args []string
		vars map[string]string
		want string
	}{
		{"serve 0.0.0.0", []string{"serve", "--websocket-host", "0.0.0.0"}, nil, "without KAFKA_BROKERS"},
		{"serve insecure-public", []string{"serve", "--websocket-host", "0.0.0.0", "--insecure-public"}, nil, "without KAFKA_BROKERS"},
		{"serve with auth", []string{"serve", "--websocket-auth-token", "s3cret"}, map[string]string{"WEBSOCKET_HOST": "::"}, "without KAFKA_BROKERS"},
		{"demo 0.0.0.0", []string{"demo", "--websocket-host", "0.0.0.0", "--insecure-public"}, nil, "without KAFKA_BROKERS"},
		{"serve brokers, no auth", []string{"serve"}, map[string]string{"WEBSOCKET_HOST": "10.1.2.3", "KAFKA_BROKERS": "kafka-1:9092"}, "without client authentication"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut testenv.SyncBuffer
			code := run(context.Background(), tt.args, testEnv(nil, &out, &errOut, tt.vars))
			msg := errOut.String()
			if code != 2 || out.String() != "" || strings.Count(msg, "\n") != 1 ||
				!strings.Contains(msg, "refusing to listen on ") || !strings.Contains(msg, tt.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 2 and one line with %q", code, out.String(), msg, tt.want)
			}
			if strings.Contains(msg, "s3cret") {
				t.Fatalf("the token leaked: %q", msg)
			}
		})
	}
}

// streams records the order in which stdout and stderr were written.
type streams struct {
	mu     sync.Mutex
	writes []streamWrite
	line   chan string // stdout's first line
}

type streamWrite struct {
	stdout bool
	text   string
}

func newStreams() *streams { return &streams{line: make(chan string, 1)} }

func (s *streams) env(vars map[string]string) env {
	return testEnv(nil, streamWriter{s, true}, streamWriter{s, false}, vars)
}

type streamWriter struct {
	s      *streams
	stdout bool
}

func (w streamWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.s.writes = append(w.s.writes, streamWrite{w.stdout, string(p)})
	if out := w.s.stdout(); w.stdout && strings.Contains(out, "\n") {
		select {
		case w.s.line <- strings.SplitN(out, "\n", 2)[0]:
		default:
		}
	}
	return len(p), nil
}

// stdout is everything written to stdout; s.mu is held.
func (s *streams) stdout() string {
	var b strings.Builder
	for _, w := range s.writes {
		if w.stdout {
			b.WriteString(w.text)
		}
	}
	return b.String()
}

func (s *streams) all() (first streamWrite, stdout, stderr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errB strings.Builder
	for _, w := range s.writes {
		if !w.stdout {
			errB.WriteString(w.text)
		}
	}
	if len(s.writes) > 0 {
		first = s.writes[0]
	}
	return first, s.stdout(), errB.String()
}

// runDemo starts `dashstream demo` with vars and returns its first stdout
// line, after checking that the page it names is served; the demo stops
// when the test ends.
func runDemo(t *testing.T, vars map[string]string) (line string, s *streams) {
	t.Helper()
	s = newStreams()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"demo"}, s.env(vars)) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			_, _, stderr := s.all()
			t.Errorf("demo exit %d: %s", code, stderr)
		}
	})
	select {
	case line = <-s.line:
	case code := <-done:
		done <- code
		_, _, stderr := s.all()
		t.Fatalf("demo exited %d before printing a line: %s", code, stderr)
	case <-time.After(60 * time.Second):
		t.Fatal("demo printed no line within 60s")
	}
	waitForPage(t, line)
	return line, s
}

// waitForPage fetches url until it answers 200 (a fixed-port demo prints
// its URL before it listens).
func waitForPage(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDemoPrintsURLFirst(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway")
	}
	httpPort, kafkaPort, err := twoFreePorts()
	if err != nil {
		t.Fatal(err)
	}
	line, s := runDemo(t, map[string]string{
		"WEBSOCKET_PORT": strconv.Itoa(httpPort), "EMBEDDED_KAFKA_ADDR": "127.0.0.1:" + strconv.Itoa(kafkaPort)})
	want := "http://127.0.0.1:" + strconv.Itoa(httpPort) + "/"
	first, _, stderr := s.all()
	if line != want || !first.stdout || first.text != want+"\n" {
		t.Fatalf("first line %q, first write %+v; want %q on stdout before anything else", line, first, want)
	}
	if !strings.Contains(stderr, "starting dashstream gateway") || !strings.Contains(stderr, "KAFKA_TOPIC:dashstream-quality") {
		t.Fatalf("no configuration logged on stderr:\n%s", stderr)
	}
}

// TestDemoPrintsURLOnFreePort: on port 0 the URL names the chosen port; with
// auth on it carries no token, and stderr says how to add one.
func TestDemoPrintsURLOnFreePort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway")
	}
	const token = "s3cret-demo-token"
	line, s := runDemo(t, map[string]string{"WEBSOCKET_PORT": "0", "EMBEDDED_KAFKA_ADDR": "127.0.0.1:0",
		"WEBSOCKET_AUTH_TOKEN": token})
	if !regexp.MustCompile(`^http://127\.0\.0\.1:[1-9][0-9]*/$`).MatchString(line) {
		t.Fatalf("first line %q", line)
	}
	_, stdout, stderr := s.all()
	if stdout != line+"\n" || !strings.Contains(stderr, "#token=<token>") || strings.Contains(stdout+stderr, token) {
		t.Fatalf("stdout %q, stderr:\n%s", stdout, stderr)
	}
}

func TestPageURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:3002": "http://127.0.0.1:3002/",
		"0.0.0.0:80":     "http://127.0.0.1:80/",
		"[::]:3002":      "http://[::1]:3002/",
		"[::1]:3002":     "http://[::1]:3002/",
		"gw.local:8080":  "http://gw.local:8080/",
	} {
		if got := pageURL("http", in); got != want {
			t.Errorf("pageURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// startGateway runs a gateway in this process (embedded broker, free
// ports, the demo workload) with vars on top, until the test ends.
func startGateway(t *testing.T, vars map[string]string) *app.App {
	t.Helper()
	env := map[string]string{"WEBSOCKET_PORT": "0", "EMBEDDED_KAFKA_ADDR": "127.0.0.1:0",
		"SHUTDOWN_TIMEOUT_SECS": "5", "LOG_LEVEL": "warn"}
	maps.Copy(env, vars)
	return apptest.Start(t, env, app.Options{Demo: true})
}

// closedURL is a ws:// URL on a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "ws://" + addr + "/ws"
}
