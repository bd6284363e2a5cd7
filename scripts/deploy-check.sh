#!/usr/bin/env bash
# deploy-check.sh: the checks of everything under deploy/ and of the release build.
#
#   scripts/deploy-check.sh          run every check; one "FAIL:" line per failure,
#                                    a summary with each step's time; exit 1 on any
#   scripts/deploy-check.sh STEP...  only these steps: release chart go-tests rules
#                                    systemd image
#
# Steps: the pinned tools (built once into $TOOLS_DIR), goreleaser check and a
# snapshot build of this machine's target, helm lint, the Go tests of deploy/check
# (chart rendered and decoded strictly into the Kubernetes types; every metric of the
# dashboard and the alert rules exported by a running gateway), promtool check and
# test of the alert rules, systemd-analyze verify and security of the unit, and the
# container image (built with buildah, inspected, its binary run from the image's
# own root filesystem up to /healthz; only as root, skipped with a message otherwise).
#
# Environment (all optional):
#   TOOLS_DIR       where the pinned tools are built (~/.cache/dashstream/tools)
#   MAX_EXPOSURE    highest accepted `systemd-analyze security` exposure (2.0)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
# shellcheck source=scripts/toolchain.sh
source scripts/toolchain.sh || exit 1

TOOLS_DIR="${TOOLS_DIR:-$HOME/.cache/dashstream/tools}"
MAX_EXPOSURE="${MAX_EXPOSURE:-2.0}"
HELM_MODULE=helm.sh/helm/v3/cmd/helm@v3.22.0
PROMTOOL_MODULE=github.com/prometheus/prometheus/cmd/promtool@v0.316.0
GORELEASER_MODULE=github.com/goreleaser/goreleaser/v2@v2.15.1

WORK="$(mktemp -d)"
FAILURES=()
SUMMARY=()
HELM="" PROMTOOL="" GORELEASER="" DASHSTREAM_BIN=""
CLEANUP=()
cleanup() {
	local i
	for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do eval "${CLEANUP[i]}" >/dev/null 2>&1 || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
	echo "deploy-check: FAIL: $*" >&2
	FAILURES+=("$*")
	return 1
}

# step NAME FUNC: run FUNC with a banner and its duration.
step() {
	local name="$1" start status=0
	shift
	start=$(date +%s)
	echo "==> $name" >&2
	"$@" || status=$?
	local verdict=ok
	((status == 0)) || verdict="FAILED"
	((status == 3)) && verdict="skipped"
	SUMMARY+=("$(printf '%-22s %-8s %5ss' "$name" "$verdict" "$(($(date +%s) - start))")")
}

# tool NAME MODULE@VERSION [GO FLAGS...]: the binary, built once into
# $TOOLS_DIR/NAME-VERSION.
tool() {
	local name="$1" module="$2" dir bin
	shift 2
	dir="$TOOLS_DIR/$name-${module##*@}"
	bin="$dir/$name"
	if [[ ! -x "$bin" ]]; then
		echo "building $module into $dir (once; minutes on a cold cache)" >&2
		mkdir -p "$dir" && GOBIN="$dir" CGO_ENABLED=0 go install "$@" "$module" >&2 || return 1
	fi
	echo "$bin"
}

need_helm() { [[ -n $HELM ]] || HELM="$(tool helm "$HELM_MODULE")" || fail "tools: go install $HELM_MODULE failed"; }
# remove_all_sd leaves out Prometheus' service-discovery plugins (cloud SDKs): a
# quarter fewer packages to compile, and rule checks do not use them.
need_promtool() { [[ -n $PROMTOOL ]] || PROMTOOL="$(tool promtool "$PROMTOOL_MODULE" -tags remove_all_sd)" || fail "tools: go install $PROMTOOL_MODULE failed"; }
need_goreleaser() { [[ -n $GORELEASER ]] || GORELEASER="$(tool goreleaser "$GORELEASER_MODULE")" || fail "tools: go install $GORELEASER_MODULE failed"; }

release() {
	need_goreleaser || return
	"$GORELEASER" check >"$WORK/goreleaser-check.log" 2>&1 ||
		{ cat "$WORK/goreleaser-check.log" >&2; fail "release: goreleaser check rejects .goreleaser.yaml"; return; }
	# One target (this machine's), into a scratch dist directory.
	local dist="$WORK/dist" out
	sed "s#^project_name: dashstream#&\ndist: $dist#" .goreleaser.yaml >"$WORK/goreleaser.yaml"
	# Without this script's GOTOOLCHAIN, so the toolchain comes from .goreleaser.yaml
	# as in a release run by hand.
	GOOS="$(go env GOOS)" GOARCH="$(go env GOARCH)" env -u GOTOOLCHAIN "$GORELEASER" build --snapshot --single-target --clean \
		--config "$WORK/goreleaser.yaml" --output "$WORK/dashstream" >"$WORK/goreleaser-build.log" 2>&1 ||
		{ tail -30 "$WORK/goreleaser-build.log" >&2; fail "release: goreleaser snapshot build failed"; return; }
	out="$(go version "$WORK/dashstream" | awk '{print $2}')"
	[[ $out == "$GO_TOOLCHAIN" ]] ||
		{ fail "release: the snapshot binary was built by '$out', want $GO_TOOLCHAIN (go.mod's toolchain line; builds.env of .goreleaser.yaml)"; return; }
	file "$WORK/dashstream" 2>/dev/null | grep -q "statically linked" ||
		{ fail "release: the snapshot binary is not statically linked: $(file "$WORK/dashstream")"; return; }
	out="$("$WORK/dashstream" version)"
	[[ $out =~ ^dashstream\ v[0-9]+\.[0-9]+\.[0-9]+-snapshot ]] ||
		{ fail "release: 'dashstream version' of the snapshot build says '$out', want the snapshot version"; return; }
	DASHSTREAM_BIN="$WORK/dashstream"
	echo "snapshot build: $out" >&2
}

chart() {
	need_helm || return
	local ok=0
	"$HELM" lint --strict deploy/helm/dashstream >"$WORK/lint.log" 2>&1 ||
		{ cat "$WORK/lint.log" >&2; fail "chart: helm lint --strict (default values) fails"; ok=1; }
	"$HELM" lint --strict deploy/helm/dashstream --values deploy/helm/values-production.yaml >"$WORK/lint.log" 2>&1 ||
		{ cat "$WORK/lint.log" >&2; fail "chart: helm lint --strict (values-production.yaml) fails"; ok=1; }
	return $ok
}

gotests() {
	need_helm || return
	if [[ -z $DASHSTREAM_BIN ]]; then
		CGO_ENABLED=0 go build -o "$WORK/dashstream-plain" ./cmd/dashstream || { fail "go tests: go build failed"; return; }
		DASHSTREAM_BIN="$WORK/dashstream-plain"
	fi
	(cd deploy/check && go vet ./... && HELM="$HELM" DASHSTREAM_BIN="$DASHSTREAM_BIN" go test -count=1 -timeout 10m ./...) ||
		fail "go tests: deploy/check failed (chart objects or exported metrics; see the test output above)"
}

rules() {
	need_promtool || return
	local ok=0
	"$PROMTOOL" check rules deploy/prometheus/dashstream-rules.yaml >&2 ||
		{ fail "rules: promtool check rules rejects deploy/prometheus/dashstream-rules.yaml"; ok=1; }
	(cd deploy/prometheus && "$PROMTOOL" test rules dashstream-rules.test.yaml) >&2 ||
		{ fail "rules: an alert unit test failed (deploy/prometheus/dashstream-rules.test.yaml)"; ok=1; }
	return $ok
}

unit() {
	command -v systemd-analyze >/dev/null 2>&1 ||
		{ echo "skipped: systemd-analyze is not installed (apt-get install systemd)" >&2; return 3; }
	# verify needs ExecStart's binary to exist: point it at a stand-in.
	local dir="$WORK/systemd" score
	mkdir -p "$dir"
	printf '#!/bin/sh\n' >"$dir/dashstream" && chmod +x "$dir/dashstream"
	sed "s#^ExecStart=/usr/local/bin/dashstream#ExecStart=$dir/dashstream#" deploy/systemd/dashstream.service >"$dir/dashstream.service"
	systemd-analyze verify "$dir/dashstream.service" >&2 ||
		{ fail "unit: systemd-analyze verify rejects deploy/systemd/dashstream.service"; return; }
	score="$(systemd-analyze security --offline=true "$dir/dashstream.service" 2>&1 | sed -n 's/.*Overall exposure level for dashstream.service: \([0-9.]*\).*/\1/p')"
	[[ -n $score ]] || { fail "unit: systemd-analyze security printed no exposure level"; return; }
	echo "systemd-analyze security: exposure $score (README says 1.2)" >&2
	awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }' ||
		fail "unit: exposure $score above $MAX_EXPOSURE: hardening was lost"
}

# free_port: a free TCP port on loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

image() {
	if [[ $(id -u) != 0 ]]; then
		echo "skipped: the image check needs root (buildah with vfs storage and chroot isolation)" >&2
		return 3
	fi
	local img="localhost/dashstream:deploy-check-$$" b=(buildah --storage-driver vfs) cfg ctr mnt
	bash scripts/image.sh "$img" || { fail "image: scripts/image.sh could not build the image"; return; }
	CLEANUP+=("${b[*]} rmi -f $img")
	cfg="$("${b[@]}" inspect --type image "$img")" ||
		{ fail "image: buildah inspect failed"; return; }
	python3 - "$cfg" <<'PY' || { fail "image: configuration (see above)"; return; }
import json, sys
c = json.loads(sys.argv[1])["OCIv1"]["config"]
want = {"User": "65532:65532", "Entrypoint": ["/dashstream", "serve"]}
bad = [f"{k} is {c.get(k)!r}, want {v!r}" for k, v in want.items() if c.get(k) != v]
if "3002/tcp" not in (c.get("ExposedPorts") or {}):
    bad.append(f"port 3002/tcp not exposed: {c.get('ExposedPorts')}")
labels = c.get("Labels") or {}
for l in ["title", "description", "version", "revision", "created", "licenses", "source"]:
    if not labels.get("org.opencontainers.image." + l):
        bad.append(f"label org.opencontainers.image.{l} missing")
if labels.get("org.opencontainers.image.licenses") != "Apache-2.0":
    bad.append("license label is not Apache-2.0")
for b in bad:
    print("image config:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
	ctr="$("${b[@]}" from "$img")" || { fail "image: buildah from failed"; return; }
	CLEANUP+=("${b[*]} rm $ctr")
	mnt="$("${b[@]}" mount "$ctr")" || { fail "image: buildah mount failed"; return; }
	CLEANUP+=("${b[*]} umount $ctr")
	local f
	for f in dashstream etc/passwd etc/group etc/ssl/certs/ca-certificates.crt; do
		[[ -s "$mnt/$f" ]] || { fail "image: /$f missing from the image"; return; }
	done
	grep -q '^nonroot:x:65532:65532:' "$mnt/etc/passwd" || { fail "image: no user 65532 in /etc/passwd"; return; }
	[[ $(stat -c %u "$mnt/var/lib/dashstream") == 65532 ]] || { fail "image: /var/lib/dashstream not owned by 65532"; return; }

	local port kport pid ok=1 i
	port="$(free_port)" kport="$(free_port)"
	env -i PATH=/usr/bin:/bin WEBSOCKET_HOST=127.0.0.1 WEBSOCKET_PORT="$port" EMBEDDED_KAFKA_ADDR="127.0.0.1:$kport" \
		EXPECTED_SCHEMAS_PATH="$WORK/schemas.json" "$mnt/dashstream" serve >"$WORK/image-serve.log" 2>&1 &
	pid=$!
	CLEANUP+=("kill $pid")
	for ((i = 0; i < 150; i++)); do
		if python3 -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=2).status != 200)" 2>/dev/null; then
			ok=0
			break
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	((ok == 0)) || { tail -20 "$WORK/image-serve.log" >&2; fail "image: the image's /dashstream serve did not answer /healthz"; return; }
	echo "image: $("$mnt/dashstream" version); /healthz answered" >&2
}

main() {
	local start=$SECONDS s
	local -A steps=([release]=release [chart]=chart [go-tests]=gotests [rules]=rules [systemd]=unit [image]=image)
	(($#)) || set -- release chart go-tests rules systemd image
	for s in "$@"; do
		[[ -n ${steps[$s]:-} ]] || { echo "deploy-check: unknown step $s (release chart go-tests rules systemd image)" >&2; return 2; }
	done
	for s in "$@"; do step "$s" "${steps[$s]}"; done
	echo "deploy-check summary (total $((SECONDS - start))s):" >&2
	printf '  %s\n' "${SUMMARY[@]}" >&2
	if ((${#FAILURES[@]})); then
		echo "deploy-check: ${#FAILURES[@]} failure(s):" >&2
		printf '  FAIL: %s\n' "${FAILURES[@]}" >&2
		return 1
	fi
	echo "deploy-check: all checks passed" >&2
}

main "$@"
