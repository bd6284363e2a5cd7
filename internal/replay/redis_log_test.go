package replay

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestRedisLogLinesAreDebug(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var buf bytes.Buffer
		l := redisLog{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level}))}
		l.Printf(context.Background(), "redis: dial tcp %s: connection refused", "127.0.0.1:1")
		got := buf.String()
		if level == slog.LevelInfo && got != "" {
			t.Fatalf("logged at info: %q", got)
		}
		if level == slog.LevelDebug && (!strings.Contains(got, "level=DEBUG") || !strings.Contains(got, "dial tcp 127.0.0.1:1")) {
			t.Fatalf("debug line %q", got)
		}
	}
}
