//go:build unix

package rlimit

import (
	"fmt"
	"syscall"
)

func current() (NoFile, bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return NoFile{}, false
	}
	return NoFile{Soft: uint64(lim.Cur), Hard: uint64(lim.Max)}, true
}

func raise() (before, after NoFile, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return NoFile{}, NoFile{}, fmt.Errorf("rlimit: get RLIMIT_NOFILE: %w", err)
	}
	before = NoFile{Soft: uint64(lim.Cur), Hard: uint64(lim.Max)}
	if lim.Cur >= lim.Max {
		return before, before, nil
	}
	lim.Cur = lim.Max
	// macOS refuses an unlimited hard limit (the kernel caps at
	// kern.maxfilesperproc): the error is reported, the process keeps the
	// limit Go's runtime already raised it to.
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return before, before, fmt.Errorf("rlimit: raise RLIMIT_NOFILE to %d: %w", before.Hard, err)
	}
	after, _ = current()
	return before, after, nil
}
