package app

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// go-redis's own lines (a failed dial at every attempt during an outage)
// reach the app's logger at debug level, never at info.
func TestRedisLogLinesAreDebug(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var buf bytes.Buffer
		routeRedisLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level})))
		redisLog{}.Printf(context.Background(), "redis: dial tcp %s: connection refused", "127.0.0.1:1")
		got := buf.String()
		if level == slog.LevelInfo && got != "" {
			t.Fatalf("logged at info: %q", got)
		}
		if level == slog.LevelDebug && (!strings.Contains(got, "level=DEBUG") || !strings.Contains(got, "dial tcp 127.0.0.1:1") ||
			!strings.Contains(got, "component=go-redis")) {
			t.Fatalf("debug line %q", got)
		}
	}
}
