// Package dashstreampb holds the Go types generated from
// proto/dashstream/v1/dashstream.proto (package dashstream.v1).
//
// Do not edit the generated file; change the .proto and run `make proto`
// (proto/generate.sh). Messages follow the usual protobuf-go rules: a value is
// not safe for concurrent mutation, but concurrent reads are fine.
package dashstreampb
