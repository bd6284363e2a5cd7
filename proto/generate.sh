#!/usr/bin/env bash
# Regenerates the Go code for proto/dashstream/v1/*.proto into
# internal/dashstream/dashstreampb (committed, so `go build` needs no protoc).
# Called by `make proto`. Installs protoc from Debian when missing, and the pinned
# protoc-gen-go with `go install` when the one found is missing or another version.
set -euo pipefail

PROTOC_GEN_GO_VERSION=v1.36.12
MODULE=github.com/dashflow/dashstream-gateway

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/toolchain.sh
source scripts/toolchain.sh

if ! command -v protoc >/dev/null; then
	echo "generate.sh: installing protoc (Debian protobuf-compiler)" >&2
	sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo"
	$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq protobuf-compiler >/dev/null
fi

gobin="$(go env GOBIN)"
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
plugin="$gobin/protoc-gen-go"

have=""
[ -x "$plugin" ] && have="$("$plugin" --version 2>/dev/null | awk '{print $2}')"
if [ "$have" != "$PROTOC_GEN_GO_VERSION" ]; then
	echo "generate.sh: installing protoc-gen-go $PROTOC_GEN_GO_VERSION (found: ${have:-none})" >&2
	GOBIN="$gobin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
fi

protoc \
	--proto_path=proto \
	--plugin=protoc-gen-go="$plugin" \
	--go_out=. \
	--go_opt=module="$MODULE" \
	proto/dashstream/v1/dashstream.proto
echo "generate.sh: wrote internal/dashstream/dashstreampb ($(protoc --version), protoc-gen-go $PROTOC_GEN_GO_VERSION)" >&2
