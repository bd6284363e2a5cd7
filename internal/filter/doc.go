// Package filter is the subscription filter of a resume (docs/PROTOCOL.md
// §3.8): which records of the topic one client wants.
//
// A filter object {"threads":[…], "thread_prefix":"…", "types":[…],
// "event_types":[…]} is parsed and validated by Parse; its fields combine
// with AND, the entries of one field with OR. The tenant of a client's token
// is added with WithTenant and cannot be widened by anything the client
// sends. Match decides for one record, from the facts the consumer computed
// once when it decoded the record (replay.Record's Type, EventTypes, Threads,
// Tenant): it never decodes, never allocates, and is meant to run on every
// record a session considers. An EventBatch matches when any one of its inner
// events matches every field (it is then sent whole).
//
// ThreadScope, AdmitsType and AdmitsAll tell an index which records it can
// skip without calling Match.
//
// A *Filter is immutable after Parse (WithTenant returns a copy) and safe for
// concurrent use. A nil *Filter matches every record.
package filter
