package bench

import (
	"fmt"
	"syscall"
	"time"
)

// threadCPU is the calling OS thread's user and system CPU time
// (RUSAGE_THREAD).
func threadCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0, fmt.Errorf("bench: getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
