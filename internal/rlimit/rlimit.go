// Package rlimit reads and raises the process's open-file limit
// (RLIMIT_NOFILE), which bounds how many connections the gateway can hold.
// Where the platform has no such limit (Windows) Current reports ok=false
// and Raise does nothing. Safe for concurrent use.
package rlimit

// NoFile is the open-file limit: Soft is enforced, Hard is how far an
// unprivileged process may raise Soft.
type NoFile struct {
	Soft, Hard uint64
}

// Raise sets the soft limit to the hard limit and returns the limit before
// and after. (Go's runtime already lifts the soft limit to one below the
// hard limit at start; Raise takes it the whole way and reports it.) On
// failure after equals before: the process runs with what it has.
func Raise() (before, after NoFile, err error) { return raise() }

// Current returns the limit now; ok is false where there is none.
func Current() (lim NoFile, ok bool) { return current() }
