package tracing

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestParseTraceparent(t *testing.T) {
	const tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	tests := []struct {
		name, in string
		ok       bool
		sampled  bool
	}{
		{"sampled", "00-" + tid + "-" + sid + "-01", true, true},
		{"not sampled", "00-" + tid + "-" + sid + "-00", true, false},
		{"future version with more fields", "01-" + tid + "-" + sid + "-01-extra", true, true},
		{"version 00 with more fields", "00-" + tid + "-" + sid + "-01-extra", false, false},
		{"version ff", "ff-" + tid + "-" + sid + "-01", false, false},
		{"upper case", "00-" + strings.ToUpper(tid) + "-" + sid + "-01", false, false},
		{"zero trace id", "00-" + strings.Repeat("0", 32) + "-" + sid + "-01", false, false},
		{"zero span id", "00-" + tid + "-" + strings.Repeat("0", 16) + "-01", false, false},
		{"short", "00-" + tid + "-" + sid, false, false},
		{"empty", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, ok := ParseTraceparent(tt.in)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if sc.TraceID().String() != tid || sc.SpanID().String() != sid || !sc.IsRemote() || sc.IsSampled() != tt.sampled {
				t.Fatalf("span context = %+v", sc)
			}
		})
	}
}

func TestLinksCapped(t *testing.T) {
	var l Links
	l.Add(nil)
	l.Add([]byte("garbage"))
	for i := range MaxLinks + 5 {
		l.Add(fmt.Appendf(nil, "00-%032x-%016x-01", i+1, i+1))
	}
	if len(l.Links()) != MaxLinks {
		t.Fatalf("links = %d, want %d", len(l.Links()), MaxLinks)
	}
	if got := l.Dropped().Value.AsInt64(); got != 5 {
		t.Fatalf("dropped = %d, want 5", got)
	}
	if got := l.Links()[0].SpanContext.SpanID().String(); got != "0000000000000001" {
		t.Fatalf("first link span id = %s", got)
	}
}

func TestLogHandlerAddsTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewTextHandler(&buf, nil))).With("component", "test")
	sc, _ := ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	log.InfoContext(trace.ContextWithSpanContext(context.Background(), sc), "traced")
	log.InfoContext(context.Background(), "untraced")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines = %q", lines)
	}
	if !strings.Contains(lines[0], "trace_id=4bf92f3577b34da6a3ce929d0e0e4736") || !strings.Contains(lines[0], "span_id=00f067aa0ba902b7") ||
		!strings.Contains(lines[0], "component=test") {
		t.Errorf("traced line = %q", lines[0])
	}
	if strings.Contains(lines[1], "trace_id") {
		t.Errorf("untraced line = %q", lines[1])
	}
}

func TestSetupOff(t *testing.T) {
	p, err := Setup(context.Background(), Config{}, slog.New(slog.DiscardHandler))
	if err != nil || p != nil || p.TracerProvider() != nil || p.Shutdown(context.Background()) != nil {
		t.Fatalf("Setup off = %v, %v", p, err)
	}
}
