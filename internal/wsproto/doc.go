// Package wsproto is the gateway's client protocol on /ws: the JSON control
// frames clients send (resume, ping, cursor_reset) parsed with hard limits,
// the frames the server sends (cursor, replay_complete, gap, ...), and the
// pre-encoded WebSocket bytes of a record.
//
// Everything here is pure (no I/O, no goroutines) and safe for concurrent use.
package wsproto
