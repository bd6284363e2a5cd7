package httpserver

import "errors"

// Sentinel errors. Deps callbacks return (wrapped) ErrNotPaused or
// ErrUnknownPartition so that the admin endpoint answers 409 or 404.
var (
	// ErrNotPaused: the partition given to ResumePartition is not paused.
	ErrNotPaused = errors.New("httpserver: partition is not paused")
	// ErrUnknownPartition: the partition does not exist.
	ErrUnknownPartition = errors.New("httpserver: unknown partition")
	// ErrTooManySchemas: the pinned-schema store is full.
	ErrTooManySchemas = errors.New("httpserver: too many pinned schemas")
)
