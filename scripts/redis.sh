#!/usr/bin/env bash
# redis.sh: a real Redis server on loopback for integration tests.
#
#   scripts/redis.sh install    apt-get install redis-server when it is missing
#   scripts/redis.sh start      start it (daemonized), wait for PONG, print REDIS_URL=...
#   scripts/redis.sh status     exit 0 and print REDIS_URL when running, 3 when not
#   scripts/redis.sh stop       SHUTDOWN NOSAVE, SIGKILL after REDIS_STOP_TIMEOUT
#   scripts/redis.sh kill       SIGKILL now (crash tests)
#   scripts/redis.sh installed  exit 0 when redis-server and redis-cli exist
#
# Environment (all optional):
#   REDIS_PORT           port on 127.0.0.1 (16379)
#   REDIS_STATE_DIR      pid, log and working dir (<repo>/.state/redis)
#   REDIS_PERSIST        1: append-only file with fsync always, so data survives
#                        kill+start; otherwise no persistence at all
#   REDIS_START_TIMEOUT  seconds to wait for PONG (30)
#   REDIS_STOP_TIMEOUT   seconds before SIGKILL (20)
#   REDIS_WATCH_PID      kill the server when this pid exits (used by internal/testenv)
set -euo pipefail

SERVICE=redis
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${REDIS_PORT:-16379}"
STATE_DIR="${REDIS_STATE_DIR:-$REPO_ROOT/.state/redis}"
START_TIMEOUT="${REDIS_START_TIMEOUT:-30}"
STOP_TIMEOUT="${REDIS_STOP_TIMEOUT:-20}"

PID_FILE="$STATE_DIR/redis.pid"
WATCHDOG_FILE="$STATE_DIR/watchdog.pid"
LOG_FILE="$STATE_DIR/redis.log"
DATA_DIR="$STATE_DIR/data"

url_line() { echo "REDIS_URL=redis://127.0.0.1:$PORT/0"; }

cli() { timeout 5 redis-cli -h 127.0.0.1 -p "$PORT" "$@" 2>/dev/null; }

is_installed() { command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; }

cmd_install() {
	if is_installed; then
		log "redis-server already installed ($(redis-server --version | awk '{print $3}'))"
		return 0
	fi
	ensure_apt_packages redis-server redis-server redis-tools
}

running_pid() {
	local pid
	pid="$(read_pid "$PID_FILE")"
	pid_matches "$pid" "redis-server" && echo "$pid"
	true
}

wait_ready() {
	local pid="$1" start deadline
	start=$(now_ms)
	deadline=$((start + START_TIMEOUT * 1000))
	while (($(now_ms) < deadline)); do
		if [[ "$(cli ping)" == PONG ]]; then
			[[ -n "$pid" ]] || pid="$(running_pid)"
			log "ready on 127.0.0.1:$PORT in $(($(now_ms) - start)) ms (pid $pid)"
			return 0
		fi
		sleep 0.1
	done
	tail_log "$LOG_FILE"
	die "no PONG on 127.0.0.1:$PORT after ${START_TIMEOUT}s"
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
	is_installed || die "redis-server missing: run $0 install"
	wait_port_free "$PORT" 10 || die "port $PORT is already in use by another process: $(port_owner "$PORT")"
	mkdir -p "$STATE_DIR" "$DATA_DIR"
	local persist=(--appendonly no)
	[[ "${REDIS_PERSIST:-}" == 1 ]] && persist=(--appendonly yes --appendfsync always)
	rm -f "$PID_FILE"
	: >"$LOG_FILE"
	redis-server --bind 127.0.0.1 --port "$PORT" --save "" "${persist[@]}" \
		--daemonize yes --pidfile "$PID_FILE" --logfile "$LOG_FILE" --dir "$DATA_DIR" \
		--protected-mode yes --loglevel warning </dev/null >&2 ||
		{ tail_log "$LOG_FILE"; die "redis-server failed to start"; }
	wait_ready ""
	pid="$(running_pid)"
	[[ -n "$pid" ]] || { tail_log "$LOG_FILE"; die "answers PONG but no pid in $PID_FILE"; }
	start_watchdog "${REDIS_WATCH_PID:-}" "$pid" "$WATCHDOG_FILE"
	url_line
}

cmd_stop() {
	stop_service redis_stop
}

# redis_stop PID: SHUTDOWN NOSAVE, SIGKILL when it outlives STOP_TIMEOUT,
# then the port.
redis_stop() {
	local pid="$1"
	cli shutdown nosave >/dev/null || true
	if ! wait_gone "$pid" "$STOP_TIMEOUT"; then
		log "pid $pid still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
		kill_hard "$pid"
	fi
	wait_port_free "$PORT" 30 || log "warning: port $PORT still open after stop"
}

# redis_wait_killed: after a kill, wait for the port to close (a warning, not
# a failure, when it stays open).
redis_wait_killed() {
	wait_port_free "$PORT" 30 || log "warning: port $PORT still open after kill"
}

cmd_kill() {
	kill_service redis_wait_killed
}

cmd_status() {
	local pid
	pid="$(running_pid)"
	if [[ -n "$pid" && "$(cli ping)" == PONG ]]; then
		log "running (pid $pid) on 127.0.0.1:$PORT"
		url_line
		return 0
	fi
	[[ -n "$pid" ]] && { log "pid $pid alive but no PONG"; return 4; }
	log "stopped"
	return 3
}

service_main "$@"
