// Package devbroker is the gateway's development mode: an embedded,
// single-node Kafka-protocol broker (StartBroker) and a synthetic DashFlow
// workload (Workload, RunDemo) that looks like real agent graph runs: graph
// schema, node events, LLM token streams, tool calls, state diffs whose
// state_hash verifies, metrics, errors, checkpoints and event batches.
//
// Nothing here is for production: the broker has no replication and keeps
// its log in memory unless given a data directory.
//
// A *Broker is safe for concurrent use. A *Workload is not: one goroutine
// calls Next (RunDemo does). CanonicalJSON is a pure function.
package devbroker
