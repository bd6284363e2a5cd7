#!/usr/bin/env bash
# test.sh: the project's checks, as `make test` and CI (.ci/run) run them.
#
#   scripts/test.sh all            fmt-check, vet, staticcheck, services-up,
#                                  go test -race with integration tests, the
#                                  fast chaos scenarios, the browser test of
#                                  the UI, fuzz; services-down always, even
#                                  on failure
#   scripts/test.sh chaos          every chaos scenario (make chaos)
#   scripts/test.sh PHASE          one of: fmt-check vet staticcheck services-up
#                                  services-down go-test chaos-fast fuzz
#
# Environment (all optional):
#   GO_TEST_FLAGS   flags of the go test phase (-race -count=1 -timeout 40m)
#   GO_TEST_PKGS    packages of the go test phase (./...)
#   FUZZTIME        duration of each fuzz target (30s)
#   CHAOS_FLAGS     extra go test flags of the chaos phases (e.g. -run 'TestChaos/broker')
#   KAFKA_PORT, REDIS_PORT, ...  see scripts/kafka.sh and scripts/redis.sh
#
# services-up writes .state/services.env; `source` it to run integration
# tests of one package by hand:
#   make services-up && source .state/services.env && go test -race ./internal/kafka/
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SERVICES_ENV=.state/services.env
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZ_TARGETS=(
	"FuzzDecode ./internal/dashstream"
	"FuzzParseControl ./internal/wsproto"
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

fmt_check() {
	local files
	files="$(gofmt -l .)" || return
	[[ -z "$files" ]] && return 0
	echo "gofmt needed on:" >&2
	echo "$files" >&2
	return 1
}

vet() { go vet ./...; }

staticcheck() { go run "$STATICCHECK" ./...; }

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

fuzz() {
	local target name pkg status=0
	for target in "${FUZZ_TARGETS[@]}"; do
		read -r name pkg <<<"$target"
		echo "--- fuzz $name in $pkg for ${FUZZTIME:-30s}" >&2
		go test -run='^$' -fuzz="^${name}\$" -fuzztime="${FUZZTIME:-30s}" "$pkg" || status=$?
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
	phase fmt-check fmt_check
	phase vet vet
	phase staticcheck staticcheck
	phase services-up services_up
	phase go-test go_test || status=$?
	if ((status != 0)); then
		dump_logs
		echo "==> fuzz skipped: tests failed" >&2
		return "$status"
	fi
	phase services-down services_down || true
	trap print_summary EXIT
	phase chaos-fast chaos fast
	phase browser browser_test
	phase fuzz fuzz
}

case "${1:-all}" in
all) all ;;
fmt-check) phase fmt-check fmt_check ;;
vet) phase vet vet ;;
staticcheck) phase staticcheck staticcheck ;;
services-up) phase services-up services_up ;;
services-down) phase services-down services_down ;;
go-test) phase go-test go_test ;;
chaos-fast) phase chaos-fast chaos fast ;;
chaos) phase chaos chaos full ;;
fuzz) phase fuzz fuzz ;;
browser) phase browser browser_test ;;
*)
	echo "usage: $0 [all|fmt-check|vet|staticcheck|services-up|services-down|go-test|chaos-fast|chaos|browser|fuzz]" >&2
	exit 2
	;;
esac
