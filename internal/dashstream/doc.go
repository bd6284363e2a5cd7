// Package dashstream implements the DashStream wire format carried in Kafka
// record values: the framing byte (plain, zstd, legacy unframed), bounded zstd
// inflation, strict protobuf decoding into dashstreampb types, header
// extraction for replay indexing, safe handling of untrusted ids, an encoder
// for demos and tests, and a JSON view of decoded messages.
//
// A Decoder is safe for concurrent use by many goroutines. It never allocates
// more than its payload cap for one value, also while inflating zstd. Every
// failure is a *DecodeError whose Kind is one of the docs/PROTOCOL.md §2.6 failure kinds,
// so callers (the Kafka consumer, the DLQ) branch on the kind, never on text.
package dashstream
