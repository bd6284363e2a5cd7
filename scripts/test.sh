#!/usr/bin/env bash
# test.sh: the project's checks, as `make test` and CI (.ci/run) run them.
#
#   scripts/test.sh all            toolchain, check-tree, fmt-check, vet, lint
#                                  (golangci-lint, staticcheck included),
#                                  ShellCheck of scripts/, cross-build, vulncheck,
#                                  services-up, go test -race with integration
#                                  tests, the JavaScript client's tests (js-client),
#                                  the fast chaos scenarios, the browser
#                                  test of the UI, deploy-check, fuzz;
#                                  services-down always, even on failure
#   scripts/test.sh chaos          every chaos scenario (make chaos)
#   scripts/test.sh PHASE          one of: toolchain check-tree fmt-check vet lint
#                                  staticcheck shellcheck cross-build vulncheck
#                                  services-up services-down go-test js-client
#                                  chaos-fast browser deploy-check fuzz
#
# Every go command runs the toolchain of go.mod's toolchain line, exported as
# GOTOOLCHAIN by scripts/toolchain.sh (fetched from the Go module proxy once).
#
# Environment (all optional):
#   VULNCHECK_STRICT  1 (default): a reachable vulnerability of the standard
#                   library fails vulncheck like one of a module; 0 reports it
#   GO_TEST_FLAGS   flags of the go test phase (-race -count=1 -timeout 40m)
#   GO_TEST_PKGS    packages of the go test phase (./...)
#   FUZZTIME        duration of each fuzz target (30s; a target listed with
#                   a divisor in FUZZ_TARGETS gets that share of it)
#   CHAOS_FLAGS     extra go test flags of the chaos phases (e.g. -run 'TestChaos/broker')
#   KAFKA_PORT, REDIS_PORT, ...  see scripts/kafka.sh and scripts/redis.sh
#
# services-up writes .state/services.env; `source` it to run integration
# tests of one package by hand:
#   make services-up && source .state/services.env && go test -race ./internal/kafka/
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/toolchain.sh
source scripts/toolchain.sh
SERVICES_ENV=.state/services.env
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOLANGCI_LINT=github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
GOVULNCHECK=golang.org/x/vuln/cmd/govulncheck@v1.9.0
# The vulnerability database is built from this snapshot of golang.org/x/vulndb
# (vuln.go.dev is not reachable from every machine that runs the checks; a
# newer snapshot is a one-line change here).
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018
CROSS_TARGETS=(linux/amd64 linux/arm64 darwin/arm64 windows/amd64)
FUZZ_TARGETS=(
	"FuzzDecode ./internal/dashstream"
	"FuzzParseControl ./internal/wsproto"
	"FuzzParseRecordV2 ./internal/wsproto 3"
	"FuzzV2Message ./internal/wsclient 3"
	"FuzzReadFrame ./internal/hub"
	"FuzzParseJWKS ./internal/limits"
	"FuzzParseFilter ./internal/filter 3"
	"FuzzDecodeFacts ./internal/replay 3"
)

SUMMARY=()
TEST_COUNTS=""

# phase NAME CMD...: run CMD with a banner and its duration; returns CMD's status.
phase() {
	local name="$1" start status=0
	shift
	start=$(date +%s)
	echo "==> $name" >&2
	"$@" || status=$?
	local took=$(($(date +%s) - start))
	local verdict=ok
	((status == 0)) || verdict="FAILED (exit $status)"
	echo "<== $name: $verdict in ${took}s" >&2
	SUMMARY+=("$(printf '%-14s %-18s %5ss' "$name" "$verdict" "$took")")
	return "$status"
}

# The phase functions run under `||` (see phase), where set -e is off: each
# checks its commands itself.

# toolchain fails unless the go command runs go.mod's toolchain (fetching it
# the first time), so a failed download is one clear line, not a failure of
# whichever phase came first; and when the docs tell another release to export.
toolchain() {
	local have stale
	have="$(go env GOVERSION)" || { echo "toolchain: the go command cannot run $GO_TOOLCHAIN (GOTOOLCHAIN=$GOTOOLCHAIN; it is fetched from the Go module proxy)" >&2; return 1; }
	[[ "$have" == "$GO_TOOLCHAIN" ]] || { echo "toolchain: go runs $have, want $GO_TOOLCHAIN (go.mod's toolchain line)" >&2; return 1; }
	stale="$(grep -noE 'GOTOOLCHAIN=go[0-9]+(\.[0-9]+)*((rc|beta)[0-9]+)?' README.md docs/OPERATIONS.md | grep -v "=$GO_TOOLCHAIN\$")" || true
	[[ -z "$stale" ]] || { printf 'toolchain: the docs name another release than go.mod (%s):\n%s\n' "$GO_TOOLCHAIN" "$stale" >&2; return 1; }
	echo "toolchain: $have" >&2
}

# check_tree fails on tracked build outputs and large files (after proving
# that the check itself catches them).
check_tree() { bash scripts/check-tree.sh selftest && bash scripts/check-tree.sh; }

# fmt_check runs the toolchain's own gofmt (the one on PATH may be older).
fmt_check() {
	local files gofmt
	gofmt="$(go env GOROOT)/bin/gofmt" || return
	files="$("$gofmt" -l .)" || return
	[[ -z "$files" ]] && return 0
	echo "gofmt needed on:" >&2
	echo "$files" >&2
	return 1
}

vet() { go vet ./...; }

staticcheck() { go run "$STATICCHECK" ./...; }

# lint runs golangci-lint with .golangci.yml (errcheck, govet, staticcheck,
# unused, ineffassign, bodyclose, gosec, errorlint, misspell, revive, sloglint).
lint() {
	go run "$GOLANGCI_LINT" run ./... || {
		echo "lint: golangci-lint found problems (run: go run $GOLANGCI_LINT run ./...)" >&2
		return 1
	}
}

shellcheck_scripts() {
	if ! command -v shellcheck >/dev/null 2>&1; then
		echo "shellcheck: installing Debian's shellcheck" >&2
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null; } ||
			{ echo "shellcheck: not installed and apt-get failed" >&2; return 1; }
	fi
	shellcheck scripts/*.sh .ci/run || { echo "shellcheck: problems in scripts/ (see above)" >&2; return 1; }
}

# cross_build compiles every package for the release platforms.
cross_build() {
	local target
	for target in "${CROSS_TARGETS[@]}"; do
		GOOS="${target%/*}" GOARCH="${target#*/}" CGO_ENABLED=0 go build ./... ||
			{ echo "cross-build: ./... does not build for $target" >&2; return 1; }
	done
}

# vulndb prints the directory of the local vulnerability database, building
# it from the pinned golang.org/x/vulndb snapshot once.
vulndb() {
	local dir="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/dashstream/vulndb-$VULNDB_VERSION" src
	if [[ ! -s "$dir/index/db.json" ]]; then
		src="$(cd / && go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" || return
		[[ -d "$src/data/osv" ]] || { echo "vulncheck: no data/osv in golang.org/x/vulndb@$VULNDB_VERSION" >&2; return 1; }
		rm -rf "$dir.tmp" && mkdir -p "$(dirname "$dir")" || return
		(cd / && go run "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION" -vulns "$src/data/osv" -out "$dir.tmp") || return
		rm -rf "$dir" && mv "$dir.tmp" "$dir" || return
	fi
	echo "$dir"
}

# vulncheck fails when the code calls a vulnerable symbol of a required
# module or (VULNCHECK_STRICT=1, the default) of the standard library of the
# toolchain it runs (tools/vulncheck).
vulncheck() {
	local db
	db="$(vulndb)" || { echo "vulncheck: could not build the vulnerability database" >&2; return 1; }
	go run "$GOVULNCHECK" -db "file://$db" -format json ./... | VULNCHECK_STRICT="${VULNCHECK_STRICT:-1}" go run ./tools/vulncheck
}

# kafka VERB: scripts/kafka.sh with SASL_PLAINTEXT, SASL_SSL and SSL
# listeners on the three ports after the controller port (security tests).
kafka() {
	local port="${KAFKA_PORT:-19092}"
	KAFKA_SASL_PORT="${KAFKA_SASL_PORT:-$((port + 2))}" \
		KAFKA_SASL_SSL_PORT="${KAFKA_SASL_SSL_PORT:-$((port + 3))}" \
		KAFKA_SSL_PORT="${KAFKA_SSL_PORT:-$((port + 4))}" bash scripts/kafka.sh "$@"
}

services_up() {
	local kafka url line
	bash scripts/redis.sh install || return
	kafka install || return
	url="$(bash scripts/redis.sh start)" || return
	kafka="$(kafka start)" || return
	[[ "$url" == REDIS_URL=* && "$kafka" == KAFKA_BROKERS=* ]] ||
		{ echo "unexpected service output: $url $kafka" >&2; return 1; }
	mkdir -p "$(dirname "$SERVICES_ENV")" || return
	{
		while read -r line; do
			echo "export $line"
		done <<<"$kafka"
		echo "export $url"
	} >"$SERVICES_ENV" || return
	cat "$SERVICES_ENV"
}

services_down() {
	local status=0
	kafka stop || status=$?
	bash scripts/redis.sh stop || status=$?
	rm -f "$SERVICES_ENV"
	return "$status"
}

go_test() {
	[[ -f "$SERVICES_ENV" ]] || { echo "no $SERVICES_ENV: run services-up first" >&2; return 1; }
	# shellcheck source=/dev/null
	source "$SERVICES_ENV" || return
	local log=.state/go-test.log status=0
	# shellcheck disable=SC2086 # flag and package lists
	DASHSTREAM_INTEGRATION=1 go test ${GO_TEST_FLAGS:--race -count=1 -timeout 40m} ${GO_TEST_PKGS:-./...} 2>&1 |
		tee "$log" || status=$?
	TEST_COUNTS="packages: $(grep -c '^ok ' "$log") passed, $(grep -c '^FAIL[[:space:]]' "$log") failed"
	return "$status"
}

# js_client checks clients/js, the JavaScript client: npm ci from its lock
# file (skipped when node_modules was made from this very lock file; npm's
# cache makes a repeat work offline), src/gen up to date with proto/, tsc and
# the browser bundle, then node --test: the decoder on testdata/dashstream,
# the protocol on a scripted server, and the client against a gateway built
# here on the services of services-up, in Node and in Chromium (installed by
# scripts/browser.sh install when missing).
js_client() {
	[[ -f "$SERVICES_ENV" ]] || { echo "no $SERVICES_ENV: run services-up first" >&2; return 1; }
	command -v npm >/dev/null 2>&1 || { echo "js-client: npm is not installed (Node >= 20 needed)" >&2; return 1; }
	local dir=clients/js stamp=clients/js/node_modules/.test-sh-lock work status=0
	if [[ -f "$stamp" ]] && cmp -s "$stamp" "$dir/package-lock.json"; then
		echo "js-client: clients/js/node_modules up to date" >&2
	else
		(cd "$dir" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error >&2) || return
		cp "$dir/package-lock.json" "$stamp" || return
	fi
	[[ -x "${CHROMIUM:-/usr/bin/chromium}" ]] || bash scripts/browser.sh install || return
	(cd "$dir" && npm run -s check-generated && npm run -s build) || return
	work="$(mktemp -d "${TMPDIR:-/tmp}/dashstream-js.XXXXXX")" || return
	go build -o "$work/dashstream" ./cmd/dashstream || { rm -rf "$work"; return 1; }
	(
		# shellcheck source=/dev/null
		source "$SERVICES_ENV" && cd "$dir" &&
			DASHSTREAM_BIN="$work/dashstream" timeout 300 node --test --test-concurrency=1 --test-timeout=180000 \
				test/decode.test.mjs test/protocol.test.mjs test/gateway.test.mjs
	) || status=$?
	rm -rf "$work"
	return "$status"
}

fuzz() {
	local target name pkg div time status=0
	for target in "${FUZZ_TARGETS[@]}"; do
		# An optional third field divides FUZZTIME for a target whose input
		# space is small (a duration in whole seconds; others are kept).
		read -r name pkg div <<<"$target"
		time="${FUZZTIME:-30s}"
		if [[ -n "$div" && "$time" =~ ^([0-9]+)s$ ]]; then
			time="$(((BASH_REMATCH[1] + div - 1) / div))s"
		fi
		echo "--- fuzz $name in $pkg for $time" >&2
		go test -run='^$' -fuzz="^${name}\$" -fuzztime="$time" "$pkg" || status=$?
	done
	return "$status"
}

# chaos MODE: the fault-injection suite of internal/chaos, "fast" (the part
# `make test` runs, at most 5 min) or "full" (at most 15 min). It starts its
# own broker, Redis and toxiproxy on free loopback ports (none of the shared
# services), so it needs only their installs.
chaos() {
	local mode="$1" timeout=8m
	[[ "$mode" == full ]] && timeout=20m
	bash scripts/redis.sh install || return
	bash scripts/kafka.sh install || return
	bash scripts/toxiproxy.sh install || return
	mkdir -p .state || return
	# The whole log goes to .state/chaos-<mode>.log; the terminal gets the
	# verdicts, the failures and the "chaos:" figures (not the gateway logs
	# dumped after a failure).
	# shellcheck disable=SC2086 # a flag list
	DASHSTREAM_CHAOS="$mode" DASHSTREAM_INTEGRATION=1 go test -race -count=1 -timeout "$timeout" -v \
		-run '^TestChaos$' ${CHAOS_FLAGS:-} ./internal/chaos 2>&1 | tee ".state/chaos-$mode.log" |
		{ grep -E '^(=== RUN|--- |\s+--- |ok |FAIL|PASS)|^\s+\w+\.go:[0-9]+: |panic:' || true; }
	return "${PIPESTATUS[0]}"
}

# browser_test drives the built-in UI in Debian's Chromium (playwright-core)
# against a demo gateway on free loopback ports; it installs what it needs.
browser_test() {
	bash scripts/browser.sh install || return
	bash scripts/browser.sh test
}

# deploy_check runs scripts/deploy-check.sh: goreleaser, the Helm chart
# decoded into the Kubernetes types, the alert rules under promtool, the
# systemd unit, the dashboard's metrics on a running gateway, the image.
deploy_check() { bash scripts/deploy-check.sh; }

# dump_logs shows the services' logs after a failed test run.
dump_logs() {
	local f
	for f in .state/kafka/kafka.log .state/redis/redis.log; do
		[[ -s "$f" ]] || continue
		echo "----- last 40 lines of $f -----" >&2
		tail -n 40 "$f" >&2
	done
}

print_summary() {
	echo "==> summary" >&2
	printf '    %s\n' "${SUMMARY[@]}" >&2
	[[ -z "${TEST_COUNTS:-}" ]] || echo "$TEST_COUNTS"
}

all() {
	local status=0
	# Services go down whatever happens; a signal exits through the EXIT trap.
	trap 'phase services-down services_down || true; print_summary' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	phase toolchain toolchain
	phase check-tree check_tree
	phase fmt-check fmt_check
	phase vet vet
	phase lint lint
	phase shellcheck shellcheck_scripts
	phase cross-build cross_build
	phase vulncheck vulncheck
	phase services-up services_up
	phase go-test go_test || status=$?
	((status != 0)) || phase js-client js_client || status=$?
	if ((status != 0)); then
		dump_logs
		echo "==> fuzz skipped: tests failed" >&2
		return "$status"
	fi
	phase services-down services_down || true
	trap print_summary EXIT
	phase chaos-fast chaos fast
	phase browser browser_test
	phase deploy-check deploy_check
	phase fuzz fuzz
}

case "${1:-all}" in
all) all ;;
toolchain) phase toolchain toolchain ;;
check-tree) phase check-tree check_tree ;;
fmt-check) phase fmt-check fmt_check ;;
vet) phase vet vet ;;
lint) phase lint lint ;;
staticcheck) phase staticcheck staticcheck ;;
shellcheck) phase shellcheck shellcheck_scripts ;;
cross-build) phase cross-build cross_build ;;
vulncheck) phase vulncheck vulncheck ;;
services-up) phase services-up services_up ;;
services-down) phase services-down services_down ;;
go-test) phase go-test go_test ;;
js-client) phase js-client js_client ;;
chaos-fast) phase chaos-fast chaos fast ;;
chaos) phase chaos chaos full ;;
fuzz) phase fuzz fuzz ;;
browser) phase browser browser_test ;;
deploy-check) phase deploy-check deploy_check ;;
*)
	echo "usage: $0 [all|toolchain|check-tree|fmt-check|vet|lint|staticcheck|shellcheck|cross-build|vulncheck|services-up|services-down|go-test|js-client|chaos-fast|chaos|browser|deploy-check|fuzz]" >&2
	exit 2
	;;
esac
