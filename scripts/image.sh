#!/usr/bin/env bash
# image.sh: build the container image from Containerfile with buildah (no daemon,
# no base image to pull).
#
#   scripts/image.sh [IMAGE]     build IMAGE (default dashstream:dev)
#
# The binary is built on this host with go.mod's toolchain (scripts/toolchain.sh):
# CGO_ENABLED=0, -tags timetzdata (Go's embedded time-zone database, so the image
# needs no /usr/share/zoneinfo), version stamped from `git describe`. Needs root (buildah with the vfs storage driver and chroot
# isolation); installs buildah with apt-get when it is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/toolchain.sh
source scripts/toolchain.sh

IMAGE="${1:-dashstream:dev}"
BUILDINFO=github.com/dashflow/dashstream-gateway/internal/buildinfo
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

die() { echo "image: $*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "buildah needs root here (vfs storage, chroot isolation)"
if ! command -v buildah >/dev/null 2>&1; then
	echo "image: installing buildah" >&2
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah >/dev/null; } ||
		die "apt-get install buildah failed"
fi
[[ -r $CA_BUNDLE ]] || die "$CA_BUNDLE missing (apt-get install ca-certificates)"

version="$(git describe --tags --always --dirty 2>/dev/null || echo dev)"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/etc/ssl/certs" "$root/tmp" "$ctx/state"
CGO_ENABLED=0 go build -trimpath -tags timetzdata \
	-ldflags "-s -w -X $BUILDINFO.Version=$version -X $BUILDINFO.GitSHA=$revision -X $BUILDINFO.BuildDate=$created" \
	-o "$root/dashstream" ./cmd/dashstream
cp "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/var/lib/dashstream:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
chmod 1777 "$root/tmp"
cp Containerfile "$ctx/Containerfile"

buildah --storage-driver vfs bud --isolation chroot --quiet \
	--build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg CREATED="$created" \
	-f "$ctx/Containerfile" -t "$IMAGE" "$ctx" >/dev/null
echo "image: built $IMAGE ($version)" >&2
