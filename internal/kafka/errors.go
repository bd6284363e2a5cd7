package kafka

import "errors"

// Sentinel errors. Callers branch on them with errors.Is; every error this
// package returns that matches one wraps it once with the operation.
var (
	// ErrInvalidConfig is wrapped by New for a Config it cannot run with.
	ErrInvalidConfig = errors.New("kafka: invalid config")
	// ErrInvalidSecurity is wrapped by ClientOpts for an invalid
	// combination of security settings.
	ErrInvalidSecurity = errors.New("kafka: invalid security settings")
	// ErrTopicNotFound means the metadata of the configured topic could not
	// be loaded (the consumer keeps retrying in the background).
	ErrTopicNotFound = errors.New("kafka: topic not found")
	// ErrNotRunning is returned by ResumePartition while the consumer is
	// not connected (before Run has connected, or after it returned).
	ErrNotRunning = errors.New("kafka: consumer not running")
	// ErrNotPaused is returned by ResumePartition for a partition that is
	// not paused.
	ErrNotPaused = errors.New("kafka: partition not paused")
	// ErrUnknownPartition is returned by ResumePartition for a partition
	// the consumer does not read.
	ErrUnknownPartition = errors.New("kafka: unknown partition")
	// ErrAlreadyRunning is returned by a second call to Run.
	ErrAlreadyRunning = errors.New("kafka: Run called twice")
)
