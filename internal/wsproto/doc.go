// Package wsproto is the gateway's client protocol on /ws: the JSON control
// frames clients send (resume, ping, cursor_reset, refresh) parsed with hard
// limits, the frames the server sends (cursor, replay_complete, gap, ...),
// and the pre-encoded WebSocket bytes of a record: v1's cursor text frame
// plus binary frame, and v2's (subprotocol SubprotocolV2) single binary frame
// with a 13-byte envelope or JSON record text frame, with the parsers a
// client needs for them (docs/PROTOCOL.md §3.8).
//
// Everything here is pure (no I/O, no goroutines) and safe for concurrent use.
package wsproto
