// Package wsclient is a client of the gateway's WebSocket protocol (docs/PROTOCOL.md §3):
// it dials /ws, sends a resume, and returns what the server sends as
// messages: a Record (a cursor text frame joined with the binary frame that
// must follow it) or a Control frame (replay_complete, gap, skipped, ...).
// The pairing rule is enforced: a binary frame without its cursor, or a
// cursor not immediately followed by a binary frame, is ErrProtocol.
//
// Two transports implement the same Next API:
//   - Conn, built on coder/websocket: the general client (tail, tests).
//     Record values are owned by the caller.
//   - Lean, built on gobwas/ws over a raw net.Conn and one read buffer:
//     the load generator's reader. Next neither allocates nor copies for
//     records; a Record's Value is only valid until the next call, and
//     ReceivedAt times it with one clock reading per socket read.
//
// Cursor tracks the last applied offset per partition, tells duplicates,
// out-of-order records and unannounced holes apart, and persists atomically.
// Follower keeps a Conn open across disconnects, resuming from its Cursor.
//
// A Conn or Lean is used by one reading goroutine; Send and Close may be
// called concurrently with Next. A Cursor is not safe for concurrent use.
package wsclient
