#!/usr/bin/env bash
# redis-ha.sh: a real Redis Cluster or Sentinel setup on loopback for
# integration tests, from Debian's redis-server.
#
#   scripts/redis-ha.sh cluster start    three masters (--cluster-enabled yes,
#                                        redis-cli --cluster create), wait for
#                                        cluster_state:ok, print REDIS_CLUSTER_ADDRS=...
#   scripts/redis-ha.sh sentinel start   a master, its replica and one sentinel
#                                        (quorum 1), wait until the sentinel sees
#                                        the replica, print REDIS_SENTINEL_ADDRS=...
#                                        and REDIS_SENTINEL_MASTER=...
#   scripts/redis-ha.sh MODE status      exit 0 and print the lines above when
#                                        every node answers, 3 when none runs
#   scripts/redis-ha.sh MODE stop        SHUTDOWN NOSAVE every node, SIGKILL after
#                                        REDIS_STOP_TIMEOUT
#   scripts/redis-ha.sh cluster kill     SIGKILL every node
#   scripts/redis-ha.sh sentinel kill    SIGKILL the current master only (failover
#                                        tests); prints KILLED_MASTER=host:port
#   scripts/redis-ha.sh install|installed  as scripts/redis.sh
#
# Environment (all optional):
#   REDIS_HA_STATE_DIR       pid, log and working dirs (<repo>/.state/redis-ha-MODE)
#   REDIS_CLUSTER_PORTS      three ports of the masters ("27400 27401 27402")
#   REDIS_CLUSTER_BUS_PORTS  their cluster bus ports (default: port + 10000 each)
#   REDIS_SENTINEL_PORTS     master, replica and sentinel ports ("27410 27411 27412")
#   REDIS_SENTINEL_MASTER    master name (dashstream)
#   REDIS_SENTINEL_DOWN_MS   down-after-milliseconds (1000)
#   REDIS_START_TIMEOUT      seconds to wait for readiness (30)
#   REDIS_STOP_TIMEOUT       seconds before SIGKILL (20)
#   REDIS_WATCH_PID          kill every node when this pid exits (internal/testenv)
set -euo pipefail

SERVICE=redis-ha
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODE="${1:-}"
VERB="${2:-}"
START_TIMEOUT="${REDIS_START_TIMEOUT:-30}"
STOP_TIMEOUT="${REDIS_STOP_TIMEOUT:-20}"
MASTER_NAME="${REDIS_SENTINEL_MASTER:-dashstream}"
DOWN_MS="${REDIS_SENTINEL_DOWN_MS:-1000}"
STATE_DIR="${REDIS_HA_STATE_DIR:-$REPO_ROOT/.state/redis-ha-$MODE}"

case "$MODE" in
cluster)
	read -r -a PORTS <<<"${REDIS_CLUSTER_PORTS:-27400 27401 27402}"
	read -r -a BUS_PORTS <<<"${REDIS_CLUSTER_BUS_PORTS:-}"
	;;
sentinel) read -r -a PORTS <<<"${REDIS_SENTINEL_PORTS:-27410 27411 27412}" ;;
esac

cli() { timeout 5 redis-cli -h 127.0.0.1 -p "$1" "${@:2}" 2>/dev/null; }

is_installed() { command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; }

node_dir() { echo "$STATE_DIR/node-$1"; }

running_pid() {
	local pid
	pid="$(read_pid "$(node_dir "$1")/redis.pid")"
	pid_matches "$pid" "redis-server" && echo "$pid"
	true
}

# wait_until SECONDS WHAT CMD...: poll CMD every 100 ms.
wait_until() {
	local secs="$1" what="$2" deadline
	shift 2
	deadline=$(($(now_ms) + secs * 1000))
	until "$@"; do
		(($(now_ms) < deadline)) || return 1
		sleep 0.1
	done
	log "$what"
}

pong() { [[ "$(cli "$1" ping)" == PONG ]]; }

# start_node PORT CONF_LINES...: a daemonized redis-server on 127.0.0.1:PORT
# from a config file (Sentinel needs one it can rewrite), plus a watchdog.
start_node() {
	local port="$1" dir pid
	shift
	dir="$(node_dir "$port")"
	wait_port_free "$port" 10 || die "port $port is already in use by another process: $(port_owner "$port")"
	rm -rf "$dir"
	mkdir -p "$dir"
	{
		printf '%s\n' "bind 127.0.0.1" "port $port" "daemonize yes" "pidfile $dir/redis.pid" \
			"logfile $dir/redis.log" "dir $dir" "save \"\"" "appendonly no" "loglevel warning"
		printf '%s\n' "$@"
	} >"$dir/redis.conf"
	local args=("$dir/redis.conf")
	[[ "$MODE" == sentinel && "$port" == "${PORTS[2]}" ]] && args+=(--sentinel)
	redis-server "${args[@]}" </dev/null >&2 || { tail_log "$dir/redis.log"; die "redis-server on $port failed to start"; }
	wait_until "$START_TIMEOUT" "node 127.0.0.1:$port answers" pong "$port" ||
		{ tail_log "$dir/redis.log"; die "no PONG on 127.0.0.1:$port after ${START_TIMEOUT}s"; }
	pid="$(running_pid "$port")"
	[[ -n "$pid" ]] || { tail_log "$dir/redis.log"; die "127.0.0.1:$port answers PONG but has no pid file"; }
	start_watchdog "${REDIS_WATCH_PID:-}" "$pid" "$dir/watchdog.pid"
}

stop_node() {
	local port="$1" pid dir
	dir="$(node_dir "$port")"
	pid="$(running_pid "$port")"
	stop_watchdog "$dir/watchdog.pid"
	[[ -n "$pid" ]] || return 0
	cli "$port" shutdown nosave >/dev/null || true
	if ! wait_gone "$pid" "$STOP_TIMEOUT"; then
		log "pid $pid still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
		kill_hard "$pid"
	fi
	wait_port_free "$port" 30 || log "warning: port $port still open after stop"
	rm -f "$dir/redis.pid"
}

kill_node() {
	local port="$1" pid dir
	dir="$(node_dir "$port")"
	pid="$(running_pid "$port")"
	stop_watchdog "$dir/watchdog.pid"
	[[ -n "$pid" ]] || return 0
	kill_hard "$pid"
	wait_port_free "$port" 30 || log "warning: port $port still open after kill"
	rm -f "$dir/redis.pid"
	log "killed 127.0.0.1:$port (pid $pid)"
}

addrs() { local IFS=,; echo "${*/#/127.0.0.1:}"; }

print_env() {
	case "$MODE" in
	cluster) echo "REDIS_CLUSTER_ADDRS=$(addrs "${PORTS[@]}")" ;;
	sentinel)
		echo "REDIS_SENTINEL_ADDRS=127.0.0.1:${PORTS[2]}"
		echo "REDIS_SENTINEL_MASTER=$MASTER_NAME"
		;;
	esac
}

cluster_ok() {
	local p
	for p in "${PORTS[@]}"; do
		[[ "$(cli "$p" cluster info)" == *cluster_state:ok* ]] || return 1
	done
}

start_cluster() {
	local i p
	for i in "${!PORTS[@]}"; do
		p="${PORTS[i]}"
		start_node "$p" "cluster-enabled yes" "cluster-config-file $(node_dir "$p")/nodes.conf" \
			"cluster-node-timeout 2000" "cluster-port ${BUS_PORTS[i]:-$((p + 10000))}"
	done
	# shellcheck disable=SC2046 # one word per node
	timeout 60 redis-cli --cluster create $(addrs "${PORTS[@]}" | tr , ' ') --cluster-replicas 0 \
		--cluster-yes >"$STATE_DIR/create.log" 2>&1 || { tail_log "$STATE_DIR/create.log"; die "redis-cli --cluster create failed"; }
	wait_until "$START_TIMEOUT" "cluster of ${#PORTS[@]} masters ready" cluster_ok ||
		{ tail_log "$STATE_DIR/create.log"; die "cluster_state not ok after ${START_TIMEOUT}s"; }
}

master_port() {
	cli "${PORTS[2]}" sentinel get-master-addr-by-name "$MASTER_NAME" | sed -n 2p
}

sentinel_sees_replica() {
	[[ "$(cli "${PORTS[2]}" sentinel master "$MASTER_NAME" | awk 'prev == "num-slaves" {print; exit} {prev = $0}')" == 1 ]]
}

replica_synced() { [[ "$(cli "${PORTS[1]}" info replication)" == *master_link_status:up* ]]; }

start_sentinel() {
	start_node "${PORTS[0]}"
	start_node "${PORTS[1]}" "replicaof 127.0.0.1 ${PORTS[0]}"
	wait_until "$START_TIMEOUT" "replica in sync" replica_synced || die "replica not in sync after ${START_TIMEOUT}s"
	start_node "${PORTS[2]}" "sentinel monitor $MASTER_NAME 127.0.0.1 ${PORTS[0]} 1" \
		"sentinel down-after-milliseconds $MASTER_NAME $DOWN_MS" \
		"sentinel failover-timeout $MASTER_NAME 10000" "sentinel parallel-syncs $MASTER_NAME 1"
	wait_until "$START_TIMEOUT" "sentinel monitors $MASTER_NAME and its replica" sentinel_sees_replica ||
		die "sentinel does not see the replica after ${START_TIMEOUT}s"
}

cmd_start() {
	is_installed || die "redis-server missing: run $0 install"
	if cmd_status >/dev/null 2>&1; then
		log "already running"
		print_env
		return 0
	fi
	cmd_stop
	mkdir -p "$STATE_DIR"
	"start_$MODE"
	print_env
}

cmd_stop() {
	local p
	for p in "${PORTS[@]}"; do stop_node "$p"; done
	log "stopped"
}

cmd_kill() {
	local p
	if [[ "$MODE" == cluster ]]; then
		for p in "${PORTS[@]}"; do kill_node "$p"; done
		return 0
	fi
	p="$(master_port)"
	[[ -n "$p" ]] || die "the sentinel on ${PORTS[2]} names no master"
	kill_node "$p"
	echo "KILLED_MASTER=127.0.0.1:$p"
}

cmd_status() {
	local p up=0
	for p in "${PORTS[@]}"; do
		[[ -n "$(running_pid "$p")" ]] && pong "$p" && up=$((up + 1))
	done
	((up > 0)) || { log "stopped"; return 3; }
	((up == ${#PORTS[@]})) || { log "$up of ${#PORTS[@]} nodes answer"; return 4; }
	[[ "$MODE" == sentinel ]] || cluster_ok || { log "cluster_state not ok"; return 4; }
	log "running on ports ${PORTS[*]}"
	print_env
}

cmd_install() {
	if is_installed; then
		log "redis-server already installed"
		return 0
	fi
	ensure_apt_packages redis-server redis-server redis-tools
}

case "$MODE" in
install | installed)
	if [[ "$MODE" == install ]]; then cmd_install; else is_installed; fi
	;;
cluster | sentinel)
	case "$VERB" in
	start | stop | kill | status | install) "cmd_$VERB" ;;
	installed) is_installed ;;
	*)
		echo "usage: $0 {cluster|sentinel} {start|stop|status|kill|install|installed}" >&2
		exit 2
		;;
	esac
	;;
*)
	echo "usage: $0 {cluster|sentinel} {start|stop|status|kill} | $0 {install|installed}" >&2
	exit 2
	;;
esac
