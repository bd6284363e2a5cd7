//go:build !unix

package rlimit

func current() (NoFile, bool) { return NoFile{}, false }

func raise() (before, after NoFile, err error) { return NoFile{}, NoFile{}, nil }
