//go:build unix

package bench

import (
	"fmt"
	"syscall"
)

// raiseNoFile lifts the open-file limit to at least need (up to what the
// hard limit, or privileges, allow): every client is a socket, and an
// embedded gateway holds the other end too.
func raiseNoFile(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("bench: getrlimit: %w", err)
	}
	if lim.Cur >= need {
		return nil
	}
	want := lim
	want.Cur = min(max(need, lim.Cur), lim.Max)
	if need > lim.Max { // only root may raise the hard limit; try
		want.Cur, want.Max = need, need
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		want.Cur, want.Max = lim.Max, lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) // fall back to the hard limit; the error below says why it is short
		return fmt.Errorf("bench: open-file limit %d is below the %d needed: %w", lim.Max, need, err)
	}
	return nil
}
