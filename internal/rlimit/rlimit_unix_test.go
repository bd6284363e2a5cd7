//go:build unix

package rlimit

import (
	"syscall"
	"testing"
)

// TestRaise lowers the soft limit of this process and checks Raise lifts it
// to the hard limit again.
func TestRaise(t *testing.T) {
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	if orig.Max <= 512 {
		t.Skipf("hard RLIMIT_NOFILE %d too low to lower the soft limit below it", orig.Max)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig) })
	low := orig
	low.Cur = 256
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	before, after, err := Raise()
	if err != nil {
		t.Fatal(err)
	}
	if before.Soft != 256 || after.Soft != uint64(orig.Max) || after.Hard != uint64(orig.Max) {
		t.Fatalf("before %+v after %+v, hard %d", before, after, orig.Max)
	}
	cur, ok := Current()
	if !ok || cur != after {
		t.Fatalf("Current = %+v, %v; want %+v", cur, ok, after)
	}
	// At the hard limit already: nothing to do, no error.
	if b, a, err := Raise(); err != nil || b != a {
		t.Fatalf("second Raise: %+v %+v %v", b, a, err)
	}
}
