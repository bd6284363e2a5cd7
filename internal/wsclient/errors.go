package wsclient

import (
	"errors"
	"strconv"
)

// ErrProtocol is wrapped by every error caused by the server breaking the
// protocol (pairing of cursor and binary frames, malformed cursor frames,
// masked server frames, oversized messages).
var ErrProtocol = errors.New("wsclient: protocol violation")

// ErrHandshake is wrapped when the server refused the WebSocket upgrade;
// HandshakeError carries the HTTP status.
var ErrHandshake = errors.New("wsclient: handshake refused")

// CloseError is returned by Next when the server closed the connection with
// a close frame.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return "wsclient: closed by server: " + strconv.Itoa(e.Code) + " " + e.Reason
}

// HandshakeError reports the HTTP status of a refused upgrade (401, 403,
// 429, ...). It wraps ErrHandshake.
type HandshakeError struct {
	Status int
}

func (e *HandshakeError) Error() string {
	return "wsclient: handshake refused: HTTP " + strconv.Itoa(e.Status)
}

// Unwrap returns ErrHandshake.
func (e *HandshakeError) Unwrap() error { return ErrHandshake }

// Permanent reports whether retrying the handshake cannot help (bad
// credentials, forbidden origin, wrong path).
func (e *HandshakeError) Permanent() bool {
	switch e.Status {
	case 400, 401, 403, 404:
		return true
	}
	return false
}
