//go:build !linux

package bench

import (
	"errors"
	"time"
)

// threadCPU needs Linux's per-thread CPU accounting.
func threadCPU() (time.Duration, error) {
	return 0, errors.New("bench: the floor measurement needs Linux (RUSAGE_THREAD)")
}
