package replay

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// SetRedisLogger sends go-redis's own log lines (a failed dial at every
// attempt during an outage, pool notices) to log at debug level instead of
// go-redis's default, stderr. The Redis tier's circuit breaker already
// reports an outage, once per state change. go-redis keeps one logger per
// process, so main calls this once.
func SetRedisLogger(log *slog.Logger) { redis.SetLogger(redisLog{log}) }

type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	if l.log.Enabled(ctx, slog.LevelDebug) {
		l.log.DebugContext(ctx, fmt.Sprintf(format, v...)) //nolint:sloglint // forwards go-redis's own messages
	}
}
