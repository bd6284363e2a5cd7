package limits

import "errors"

// Sentinel errors; branch on them with errors.Is.
var (
	// ErrTooManyConnections: the client IP (IPv6: its /64) already holds the
	// maximum of concurrent connections, or the limiter tracks as many IPs
	// with open connections as it may.
	ErrTooManyConnections = errors.New("limits: too many connections from this address")
	// ErrRateLimited: the client IP opens connections faster than allowed.
	ErrRateLimited = errors.New("limits: connection rate exceeded for this address")
	// ErrServerFull: the gateway holds as many connections as its budget
	// allows (Gate, WEBSOCKET_MAX_CONNECTIONS).
	ErrServerFull = errors.New("limits: server at its connection limit")
)
