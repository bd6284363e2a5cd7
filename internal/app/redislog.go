package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// go-redis logs through one process-wide logger (redis.SetLogger; a client
// has no logger of its own): a failed dial at every attempt during an
// outage, pool notices. New, which builds the client, routes those lines to
// the logger the app was given, at debug level instead of go-redis's default, stderr: the
// Redis tier's circuit breaker already reports an outage, once per state
// change. The go-redis logger is installed once and forwards to the newest
// app's logger, so apps built concurrently (tests) do not race on it.
var (
	redisLogOnce sync.Once
	redisLogTo   atomic.Pointer[slog.Logger]
)

func routeRedisLog(log *slog.Logger) {
	redisLogTo.Store(log.With("component", "go-redis"))
	redisLogOnce.Do(func() { redis.SetLogger(redisLog{}) })
}

// redisLog is go-redis's logger: it forwards to redisLogTo at debug level.
type redisLog struct{}

func (redisLog) Printf(ctx context.Context, format string, v ...any) {
	if log := redisLogTo.Load(); log != nil && log.Enabled(ctx, slog.LevelDebug) {
		log.DebugContext(ctx, fmt.Sprintf(format, v...)) //nolint:sloglint // forwards go-redis's own messages
	}
}
