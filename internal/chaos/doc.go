// Package chaos is the gateway's fault-injection suite: real Apache Kafka and
// Redis started by scripts/, toxiproxy (scripts/toxiproxy.sh) between the
// gateway and both, `dashstream serve` run as child processes that can be
// SIGKILLed, a Producer that logs every acknowledged offset, Clients that log
// every record and control frame a dashboard would see, and Audit, which
// re-reads the topic from Kafka and proves for each client that every offset
// was delivered exactly once (or announced by gap/skipped) with its exact
// bytes, and nothing that Kafka does not hold.
//
// The scenarios live in the package's tests and run only when
// DASHSTREAM_CHAOS is "fast" (the subset of `make test`) or "full"
// (`make chaos`). Everything listens on 127.0.0.1 only.
//
// A Producer and a Client are each driven by their own goroutine and read by
// the test through methods that are safe for concurrent use.
package chaos
