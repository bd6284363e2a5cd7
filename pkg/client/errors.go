package client

import (
	"errors"
	"strconv"

	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// ErrV2Unsupported is returned when Options.JSON asked for v2 JSON records
// and the gateway did not select protocol v2.
var ErrV2Unsupported = errors.New("client: the gateway does not speak protocol v2")

// ErrClosed is returned by Next after Close.
var ErrClosed = errors.New("client: closed")

// HandshakeError is a refused WebSocket upgrade. The client retries
// statuses that may pass (429, 503, ...) and gives up on the others.
type HandshakeError struct {
	Status int // the HTTP status
}

func (e *HandshakeError) Error() string {
	return "client: handshake refused: HTTP " + strconv.Itoa(e.Status)
}

// Permanent reports whether retrying cannot help (bad credentials,
// forbidden origin, wrong path).
func (e *HandshakeError) Permanent() bool {
	switch e.Status {
	case 400, 401, 403, 404:
		return true
	}
	return false
}

// ServerError is an error frame that ends the client because reconnecting
// would meet it again: a refused filter (FILTER_INVALID,
// FILTER_TOO_MANY_THREADS). Dial also returns it for a filter it can tell
// is invalid before connecting.
type ServerError struct {
	Code    string
	Message string
}

func (e *ServerError) Error() string { return "client: " + e.Code + ": " + e.Message }

// fatalCodes are the error frames after which the client stops.
var fatalCodes = map[string]bool{
	wsproto.CodeFilterInvalid:        true,
	wsproto.CodeFilterTooManyThreads: true,
}
