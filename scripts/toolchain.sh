# shellcheck shell=bash
# toolchain.sh: the Go toolchain of every build, test and release. Sourced by
# each script that runs go and by .ci/run; the Makefile and .goreleaser.yaml
# read the same line of go.mod.
#
# The one definition is go.mod's toolchain line (`go get toolchain@go1.N.P`
# moves it). A go command whose GOTOOLCHAIN is "local" (this project's
# machines, Debian's golang, the official golang images) ignores that line,
# so it is exported as GOTOOLCHAIN: the go command then runs exactly that
# release, fetched once from the Go module proxy into the module cache
# (about 76 MB). go.mod's go line stays the minimum for `go install`.
GO_TOOLCHAIN="$(awk '$1 == "toolchain" { print $2; exit }' "$(dirname "${BASH_SOURCE[0]}")/../go.mod")"
if [[ ! $GO_TOOLCHAIN =~ ^go1\.[0-9]+\.[0-9]+$ ]]; then
	echo "toolchain.sh: go.mod has no toolchain line of a Go release (toolchain go1.N.P): '$GO_TOOLCHAIN'" >&2
	return 1
fi
export GOTOOLCHAIN="$GO_TOOLCHAIN"
