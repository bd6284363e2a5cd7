package replay_test

import (
	"testing"

	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/replay/replaytest"
)

// TestMemoryConformance runs the shared suite against the memory tier, as
// it is: replay.Memory implements replay.Store, thread index included.
func TestMemoryConformance(t *testing.T) {
	replaytest.Run(t, func(*testing.T) replay.Store {
		return replay.NewMemory(replay.MemoryConfig{PerPartition: 64})
	}, replaytest.Options{PerPartition: 64})
}
