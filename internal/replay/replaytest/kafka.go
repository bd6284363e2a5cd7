package replaytest

import (
	"context"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// WindowKafka is a replay.DeepReader for tests that run a hub without a
// broker: it models a Kafka topic whose retention is exactly the memory
// tier's window, so records memory evicted are gone from "Kafka" too and a
// gap is still backed by a log start a deep reader reported. It is a fake
// because those tests have no Kafka; the real deep reader is tested against
// real Kafka in internal/kafka and internal/app.
//
// Heads returns the newest offset handed to the hub per partition: the log
// start of a partition memory holds nothing of is its head + 1 (everything
// was deleted). Safe for concurrent use when Memory and Heads are.
type WindowKafka struct {
	Memory *replay.Memory
	Heads  func() map[int32]int64
}

// LogStart implements replay.DeepReader: memory's oldest offset of p.
func (k WindowKafka) LogStart(ctx context.Context, p int32, _ time.Duration) (int64, error) {
	if oldest, _, ok, _ := k.Memory.Bounds(ctx, p); ok {
		return oldest, nil
	}
	if h, ok := k.Heads()[p]; ok {
		return h + 1, nil
	}
	return 0, nil
}

// ReadAfter implements replay.DeepReader: what memory holds after 'after',
// or nothing when after+1 lies below the log start (offset out of range).
func (k WindowKafka) ReadAfter(ctx context.Context, p int32, after int64, limit int) ([]*replay.Record, int64, error) {
	ls, _ := k.LogStart(ctx, p, 0)
	if after+1 < ls {
		return nil, ls, nil
	}
	recs, _, err := k.Memory.Read(ctx, p, after, replay.Limit{Records: limit})
	if err != nil {
		return nil, 0, err
	}
	return recs, ls, nil
}
