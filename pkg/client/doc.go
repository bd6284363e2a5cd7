// Package client is the Go client of the DashStream gateway: it follows the
// gateway's WebSocket stream (docs/PROTOCOL.md §3) and hands an application
// every record exactly once, in order per partition, across disconnects.
//
// Dial connects and resumes; Next (or the Records iterator) returns the
// next record. When the connection drops, Next reconnects with capped,
// jittered backoff and resumes from the client's cursor: the last offset
// applied per partition, which a CursorStore (memory, or a file) keeps
// across restarts. A record is counted as applied when the application asks
// for the next one (or closes the client), so a crash replays at most the
// record being processed.
//
// Protocol v2 (Options.V2: the subprotocol "dashstream.v2") sends one frame
// per record and can send records as JSON (Options.JSON) instead of
// protobuf bytes. Filters (Options.Filter: threads, a thread prefix, message
// types, event types) are applied by the gateway, in v1 and v2 alike; with
// a filter the client receives only matching records and its cursor still
// advances over the rest. Options.Join "checkpoint" starts a fresh client
// at each active run's latest full state.
//
// A Client is used by one goroutine (Next, Records); Close may be called
// from any goroutine and ends a blocked Next.
package client
