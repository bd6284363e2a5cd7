// Package bench is the gateway's end-to-end load benchmark: it produces
// DashStream records into the gateway's Kafka topic at a target rate, reads
// them back through many WebSocket clients (wsclient.Lean, spread over
// loopback source addresses), verifies exact delivery per client (offsets
// strictly increasing and contiguous with what was produced) and measures
// producer-to-client latency from each record's header timestamp.
//
// Run is bounded in time (warmup + duration + grace) and in records
// (Config.MaxRecords), and only ever targets the gateway it is given. The
// gateway under test is a Target: an external one (--url) or one started in
// process by the caller (cmd/dashstream's embedded mode).
//
// Histogram is not safe for concurrent use; Run gives each client its own and
// merges them at the end.
package bench
