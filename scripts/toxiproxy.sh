#!/usr/bin/env bash
# toxiproxy.sh: Shopify's toxiproxy (a TCP fault injector with an HTTP API) on
# loopback, for the chaos suite (internal/chaos). The server is built from the
# Go module pinned in go.mod (its `tool` directive), so no binary is
# downloaded and the version moves only with go.mod.
#
#   scripts/toxiproxy.sh install    go build the pinned server into the cache (idempotent)
#   scripts/toxiproxy.sh start      start it, wait for its API, print TOXIPROXY_URL=...
#   scripts/toxiproxy.sh status     exit 0 and print TOXIPROXY_URL when running, 3 when not
#   scripts/toxiproxy.sh stop       SIGTERM, SIGKILL after TOXIPROXY_STOP_TIMEOUT
#   scripts/toxiproxy.sh kill       SIGKILL now
#   scripts/toxiproxy.sh installed  exit 0 when the built server matches go.mod's version
#
# Environment (all optional):
#   TOXIPROXY_PORT           API port on 127.0.0.1 (18474); proxies listen
#                            wherever their creator says (the suite uses 127.0.0.1)
#   TOXIPROXY_STATE_DIR      pid and log (<repo>/.state/toxiproxy)
#   TOXIPROXY_BIN_DIR        build cache (${XDG_CACHE_HOME:-~/.cache}/dashstream/toxiproxy-<version>)
#   TOXIPROXY_START_TIMEOUT  seconds to wait for the API (30)
#   TOXIPROXY_STOP_TIMEOUT   seconds before SIGKILL (10)
#   TOXIPROXY_WATCH_PID      kill the server when this pid exits (used by internal/chaos)
set -euo pipefail

SERVICE=toxiproxy
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/toolchain.sh
source "$(dirname "${BASH_SOURCE[0]}")/toolchain.sh"

MODULE=github.com/Shopify/toxiproxy/v2
PORT="${TOXIPROXY_PORT:-18474}"
STATE_DIR="${TOXIPROXY_STATE_DIR:-$REPO_ROOT/.state/toxiproxy}"
START_TIMEOUT="${TOXIPROXY_START_TIMEOUT:-30}"
STOP_TIMEOUT="${TOXIPROXY_STOP_TIMEOUT:-10}"

PID_FILE="$STATE_DIR/toxiproxy.pid"
WATCHDOG_FILE="$STATE_DIR/watchdog.pid"
LOG_FILE="$STATE_DIR/toxiproxy.log"

# module_version: the toxiproxy version go.mod pins (read without the go
# command: `installed` must stay cheap).
module_version() {
	awk -v m="$MODULE" '$1 == m {print $2; exit} $1 == "require" && $2 == m {print $3; exit}' "$REPO_ROOT/go.mod"
}

VERSION="$(module_version)"
[[ -n "$VERSION" ]] || die "$MODULE is not required in go.mod"
BIN_DIR="${TOXIPROXY_BIN_DIR:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/dashstream/toxiproxy-$VERSION}"
BIN="$BIN_DIR/toxiproxy-server"

url_line() { echo "TOXIPROXY_URL=http://127.0.0.1:$PORT"; }

is_installed() { [[ -x "$BIN" ]]; }

cmd_install() {
	if is_installed; then
		log "toxiproxy-server $VERSION already built in $BIN_DIR"
		return 0
	fi
	command -v go >/dev/null 2>&1 || die "the go command is missing"
	local start
	start=$(now_ms)
	mkdir -p "$BIN_DIR"
	(cd "$REPO_ROOT" && go build -o "$BIN.tmp" "$MODULE/cmd/server") >&2 ||
		{ rm -f "$BIN.tmp"; die "go build $MODULE/cmd/server failed"; }
	mv "$BIN.tmp" "$BIN"
	log "built toxiproxy-server $VERSION in $(($(now_ms) - start)) ms"
}

running_pid() {
	local pid
	pid="$(read_pid "$PID_FILE")"
	pid_matches "$pid" "toxiproxy-server" && echo "$pid"
	true
}

api_ok() { timeout 2 curl -fsS "http://127.0.0.1:$PORT/version" >/dev/null 2>&1; }

wait_ready() {
	local pid="$1" start deadline
	start=$(now_ms)
	deadline=$((start + START_TIMEOUT * 1000))
	while (($(now_ms) < deadline)); do
		kill -0 "$pid" 2>/dev/null || { tail_log "$LOG_FILE"; rm -f "$PID_FILE"; die "exited during startup"; }
		if api_ok; then
			log "ready on 127.0.0.1:$PORT in $(($(now_ms) - start)) ms (pid $pid)"
			return 0
		fi
		sleep 0.1
	done
	tail_log "$LOG_FILE"
	die "API not answering on 127.0.0.1:$PORT after ${START_TIMEOUT}s"
}

cmd_start() {
	local pid
	pid="$(running_pid)"
	if [[ -n "$pid" ]]; then
		log "already running (pid $pid)"
		wait_ready "$pid"
		url_line
		return 0
	fi
	is_installed || die "toxiproxy-server missing: run $0 install"
	ensure_apt_packages curl curl
	wait_port_free "$PORT" 10 || die "port $PORT is already in use by another process: $(port_owner "$PORT")"
	mkdir -p "$STATE_DIR"
	: >"$LOG_FILE"
	(exec setsid "$BIN" -host 127.0.0.1 -port "$PORT" </dev/null >>"$LOG_FILE" 2>&1) &
	pid=$!
	echo "$pid" >"$PID_FILE"
	start_watchdog "${TOXIPROXY_WATCH_PID:-}" "$pid" "$WATCHDOG_FILE"
	wait_ready "$pid"
	url_line
}

cmd_stop() {
	stop_service toxiproxy_stop
}

# toxiproxy_stop PID: SIGTERM, SIGKILL after STOP_TIMEOUT, then the port.
toxiproxy_stop() {
	terminate "$1" "$STOP_TIMEOUT"
	wait_port_free "$PORT" 30 || log "warning: port $PORT still open after stop"
}

cmd_kill() {
	# shellcheck disable=SC2119 # no step after the kill
	kill_service
}

cmd_status() {
	local pid
	pid="$(running_pid)"
	if [[ -n "$pid" ]] && api_ok; then
		log "running (pid $pid) on 127.0.0.1:$PORT"
		url_line
		return 0
	fi
	[[ -n "$pid" ]] && { log "pid $pid alive but its API does not answer"; return 4; }
	log "stopped"
	return 3
}

service_main "$@"
