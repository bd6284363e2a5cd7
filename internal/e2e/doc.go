// Package e2e holds the gateway's end-to-end tests. It has no code of its
// own outside its tests: it starts whole gateways through internal/app's
// exported entry point (app.New, App.Run, App.Ready) or as `dashstream
// serve` child processes, and talks to them only from outside, over HTTP,
// WebSocket (internal/wsclient, or a raw client for misbehaving ones), Kafka
// and Redis — the real services that `make services-up` starts
// (internal/testenv). Tests skip without the services unless
// DASHSTREAM_INTEGRATION=1, where a missing service fails them.
//
// # The kit
//
// Every test uses one kit, in the kit_*_test.go files; a test file's own
// helpers serve only its scenario:
//
//   - kit_test.go: the gateway harness (startGateway and its options,
//     restart, stop, dial, dialCursor), the environment every test gateway
//     gets (baseEnv, gatewayEnv, redisEnv), HTTP helpers (get, tryGet,
//     waitReadyz, post, getJSON, getHealth, namespaceOf, scrape, metric)
//     and producing events (event, produceEvents, produceRaw, bigEvent,
//     produceBig).
//   - kit_child_test.go: the same gateway as a `dashstream serve` child
//     process (buildBinary, newChild; optionally under prlimit and with
//     INTERNAL_ADDR), for crashes (kill: SIGKILL) and process limits.
//   - kit_client_test.go: what a client received (stream, read by readN,
//     readUntil, readMore), offset helpers (offsetsOf, assertOffsets,
//     lastOf, offsetRange), waiting for the gateway's heads (waitHeads),
//     and a raw WebSocket client (dialRaw).
//   - kit_replay_test.go: exactness against what was produced — the
//     produced log (newProduced, a background producer), a client's
//     checked cursor (exact: no duplicate, no hole, each value byte for
//     byte), readers that check as they read, and the Redis tier's keys.
//
// # One offset convention
//
// Every map of offsets per partition that the kit takes or returns holds
// the LAST offset (inclusive), as the protocol's cursors, the hub's heads
// and replay_complete's lastOffsetsByPartition do: produced.last() is the
// last offset produced to each partition, waitHeads waits until the heads
// reach it, exact.reached and readExactTo until a client applied it,
// waitRedis until Redis holds it. The exclusive end (Kafka's high
// watermark, the next offset) appears only inside a helper that asks Kafka
// or Redis, never in its signature.
package e2e
