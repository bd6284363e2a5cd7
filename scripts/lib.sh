# shellcheck shell=bash
# Helpers shared by scripts/kafka.sh and scripts/redis.sh. Sourced, not run.
#
# Conventions of the service scripts: stdout carries only machine-readable
# lines (KAFKA_BROKERS=..., REDIS_URL=...), everything for humans goes to
# stderr, so `eval "$(scripts/kafka.sh start)"` and Go's exec both work.

# shellcheck disable=SC2034 # used by the scripts that source this file
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '%s: %s\n' "${SERVICE:-service}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# now_ms prints a monotonic-enough wall clock in milliseconds.
now_ms() { date +%s%3N; }

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# port_owner PORT: who listens on PORT, for error messages.
port_owner() {
	command -v ss >/dev/null 2>&1 || { echo "(ss not installed)"; return; }
	ss -Hltnp "sport = :$1" 2>/dev/null | awk '{print $4, $6}' | head -3
}

# pid_matches PID PATTERN: true when PID is alive and its command line
# contains PATTERN (guards against a recycled pid in a stale pid file).
pid_matches() {
	local pid="$1" pattern="$2" cmdline
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
	[[ "$cmdline" == *"$pattern"* ]]
}

# read_pid FILE prints the pid stored in FILE, or nothing.
read_pid() { [[ -s "$1" ]] && tr -dc '0-9' <"$1"; true; }

# wait_gone PID SECONDS: wait until PID has exited; false on timeout.
# A zombie whose threads have all exited counts as gone (nobody may reap it
# soon). A zombie thread-group leader alone is not enough: the other threads
# of a JVM may still be tearing down and its sockets stay bound until they end.
wait_gone() {
	local pid="$1" deadline=$(($(now_ms) + $2 * 1000))
	while kill -0 "$pid" 2>/dev/null; do
		if [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]] &&
			(($(find "/proc/$pid/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l) <= 1)); then
			return 0
		fi
		(($(now_ms) < deadline)) || return 1
		sleep 0.1
	done
}

# wait_port_free PORT SECONDS: wait until nothing accepts on 127.0.0.1:PORT;
# false on timeout. A server's listening socket can outlive the moment its
# process is reported gone.
wait_port_free() {
	local deadline=$(($(now_ms) + $2 * 1000))
	while port_open 127.0.0.1 "$1"; do
		(($(now_ms) < deadline)) || return 1
		sleep 0.1
	done
}

# terminate PID GRACE_SECONDS: SIGTERM, wait, then SIGKILL.
terminate() {
	local pid="$1" grace="$2"
	kill -TERM "$pid" 2>/dev/null || return 0
	wait_gone "$pid" "$grace" && return 0
	log "pid $pid still alive after ${grace}s, sending SIGKILL"
	kill_hard "$pid"
}

# kill_hard PID: SIGKILL and wait for the process to disappear.
kill_hard() {
	kill -KILL "$1" 2>/dev/null || return 0
	wait_gone "$1" 10 || die "pid $1 survived SIGKILL"
}

# start_watchdog WATCH_PID SERVICE_PID PIDFILE: when WATCH_PID (e.g. a go test
# binary that started a private broker) dies without cleaning up, SIGKILL
# SERVICE_PID so no orphan keeps a port and memory. Exits on its own once
# SERVICE_PID is gone.
start_watchdog() {
	local watch="$1" svc="$2" pidfile="$3"
	[[ -n "$watch" ]] || return 0
	# shellcheck disable=SC2016 # expanded by the inner bash
	setsid bash -c '
		while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
		kill -0 "$2" 2>/dev/null && kill -KILL "$2"
		exit 0' _ "$watch" "$svc" </dev/null >/dev/null 2>&1 &
	echo $! >"$pidfile"
}

# stop_watchdog PIDFILE
stop_watchdog() {
	local pid
	pid="$(read_pid "$1")"
	[[ -n "$pid" ]] && kill "$pid" 2>/dev/null
	rm -f "$1"
}

# tail_log FILE [LINES]: show the end of a service log on stderr.
tail_log() {
	[[ -f "$1" ]] || return 0
	echo "----- last ${2:-60} lines of $1 -----" >&2
	tail -n "${2:-60}" "$1" >&2
	echo "----- end of $1 -----" >&2
}

# ensure_apt_packages CMD PACKAGE...: install PACKAGEs with apt-get when CMD
# is missing (CI machines start fresh; apt needs an update first there).
ensure_apt_packages() {
	local cmd="$1"
	shift
	command -v "$cmd" >/dev/null 2>&1 && return 0
	command -v apt-get >/dev/null 2>&1 || die "$cmd is missing and apt-get is not available; install: $*"
	local sudo=()
	((EUID == 0)) || sudo=(sudo -n)
	log "$cmd missing: apt-get install $*"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 ||
		die "apt-get update failed"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 ||
		die "apt-get install $* failed"
	command -v "$cmd" >/dev/null 2>&1 || die "$cmd still missing after installing $*"
}

# stop_service CMD...: stop the service named by running_pid: stop its
# watchdog (WATCHDOG_FILE), run CMD PID (which stops the process and waits for
# its ports), drop PID_FILE; "not running" when there is no process. The
# cmd_stop of every service script.
stop_service() {
	local pid
	pid="$(running_pid)"
	stop_watchdog "$WATCHDOG_FILE"
	if [[ -n "$pid" ]]; then
		log "stopping pid $pid"
		"$@" "$pid"
	else
		log "not running"
	fi
	rm -f "$PID_FILE"
}

# kill_service [CMD...]: SIGKILL the service named by running_pid, stop its
# watchdog (WATCHDOG_FILE) and drop PID_FILE; CMD, when given, runs after the
# kill (e.g. waiting for the ports to close). The cmd_kill of every service
# script.
kill_service() {
	local pid
	pid="$(running_pid)"
	stop_watchdog "$WATCHDOG_FILE"
	if [[ -n "$pid" ]]; then
		kill_hard "$pid"
		log "killed pid $pid"
		(($# == 0)) || "$@"
	fi
	rm -f "$PID_FILE"
}

# service_main VERB: the command line of a service script (kafka.sh,
# redis.sh), which defines cmd_install, cmd_start, cmd_stop, cmd_kill,
# cmd_status and is_installed.
service_main() {
	case "${1:-}" in
	install | start | stop | kill | status) "cmd_$1" ;;
	installed) is_installed ;;
	*)
		echo "usage: $0 {install|start|stop|status|kill|installed}" >&2
		exit 2
		;;
	esac
}
