#!/usr/bin/env bash
# kafka.sh: a real single-node Apache Kafka (KRaft, combined broker+controller)
# for integration tests, run from the jars of its Maven artifacts (no Docker,
# no tarball).
#
#   scripts/kafka.sh install   fetch the jars into the cache (once; idempotent)
#   scripts/kafka.sh start     format a data dir, start the broker, wait until
#                              it answers, print KAFKA_BROKERS=127.0.0.1:<port>
#   scripts/kafka.sh status    exit 0 and print KAFKA_BROKERS when running, 3 when not
#   scripts/kafka.sh stop      SIGTERM, SIGKILL after KAFKA_STOP_TIMEOUT, remove temp data
#   scripts/kafka.sh kill      SIGKILL now (crash tests); keeps the data dir
#   scripts/kafka.sh installed exit 0 when the jars are in the cache
#
# Environment (all optional):
#   KAFKA_PORT             PLAINTEXT port (19092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port (19093)
#   KAFKA_STATE_DIR        pid, log, properties (<repo>/.state/kafka)
#   KAFKA_DATA_DIR         log dir kept across stop/start (unset: a fresh temp dir
#                          per start, removed by stop)
#   KAFKA_JARS_DIR         jar cache (${XDG_CACHE_HOME:-~/.cache}/dashstream/kafka-4.1.1)
#   KAFKA_START_TIMEOUT    seconds to wait for readiness (120: ~4 s on an idle 2-core
#                          box, but 40-50 s were seen while other builds ran)
#   KAFKA_STOP_TIMEOUT     seconds between SIGTERM and SIGKILL (20)
#   KAFKA_HEAP_OPTS        JVM heap flags (-Xms256m -Xmx768m)
#   KAFKA_JVM_OPTS         extra JVM flags, e.g. -XX:TieredStopAtLevel=1 (C1 only:
#                          ~30% less CPU to start, slower under heavy load)
#   KAFKA_OVERRIDES        extra broker properties, space separated k=v (last wins)
#   KAFKA_LOG_LEVEL        broker log level (warn); the log is $KAFKA_STATE_DIR/kafka.log
#   KAFKA_WATCH_PID        kill the broker when this pid exits (used by internal/testenv)
#   KAFKA_SASL_PORT        also listen with SASL_PLAINTEXT here (PLAIN user gateway /
#                          gateway-secret; SCRAM-SHA-256/512 users are created by tests)
#   KAFKA_SASL_SSL_PORT    also listen with SASL_SSL here (same users, TLS)
#   KAFKA_SSL_PORT         also listen with SSL here, client certificates required
#                          With a TLS port a test CA, broker and client certificates are
#                          made in $KAFKA_STATE_DIR/tls (ca.pem, client.pem, client-key.pem);
#                          start prints KAFKA_SASL_BROKERS, KAFKA_SASL_SSL_BROKERS,
#                          KAFKA_SSL_BROKERS and KAFKA_TLS_DIR for the ports set.
set -euo pipefail

SERVICE=kafka
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_VERSION=4.1.1
POM="$REPO_ROOT/tools/kafka/pom.xml"
PORT="${KAFKA_PORT:-19092}"
CTRL_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
STATE_DIR="${KAFKA_STATE_DIR:-$REPO_ROOT/.state/kafka}"
JARS_DIR="${KAFKA_JARS_DIR:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/dashstream/kafka-$KAFKA_VERSION}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-20}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
JVM_OPTS="${KAFKA_JVM_OPTS:-}"
LOG_LEVEL="${KAFKA_LOG_LEVEL:-warn}"

PID_FILE="$STATE_DIR/kafka.pid"
WATCHDOG_FILE="$STATE_DIR/watchdog.pid"
LOG_FILE="$STATE_DIR/kafka.log"
PROPS_FILE="$STATE_DIR/server.properties"
TEMP_DATA_FILE="$STATE_DIR/temp-data-dir" # set when stop must remove the data dir
MARKER="$JARS_DIR/.complete"
MAIN_CLASS=kafka.Kafka

SASL_PORT="${KAFKA_SASL_PORT:-}"
SASL_SSL_PORT="${KAFKA_SASL_SSL_PORT:-}"
SSL_PORT="${KAFKA_SSL_PORT:-}"
TLS_DIR="$STATE_DIR/tls"
# The PLAIN user of the SASL listeners (SCRAM users live in the cluster
# metadata: tests create them with the admin API).
SASL_PLAIN_USER=gateway
SASL_PLAIN_PASSWORD=gateway-secret

brokers_line() {
	echo "KAFKA_BROKERS=127.0.0.1:$PORT"
	[[ -z "$SASL_PORT" ]] || echo "KAFKA_SASL_BROKERS=127.0.0.1:$SASL_PORT"
	[[ -z "$SASL_SSL_PORT" ]] || echo "KAFKA_SASL_SSL_BROKERS=127.0.0.1:$SASL_SSL_PORT"
	[[ -z "$SSL_PORT" ]] || echo "KAFKA_SSL_BROKERS=127.0.0.1:$SSL_PORT"
	[[ -z "$SASL_SSL_PORT$SSL_PORT" ]] || echo "KAFKA_TLS_DIR=$TLS_DIR"
}

secure_ports() { echo "$SASL_PORT" "$SASL_SSL_PORT" "$SSL_PORT"; }

pom_digest() { sha256sum "$POM" | cut -d' ' -f1; }

is_installed() { [[ -f "$MARKER" && "$(cat "$MARKER")" == "$(pom_digest)" ]]; }

# copy_jars DIR: resolve the pom's runtime dependencies into DIR. Debian's
# Maven 3.8.7 prints bare colour resets even with -B: strip them.
copy_jars() {
	mvn -B -q -f "$POM" dependency:copy-dependencies \
		-DoutputDirectory="$1" -DincludeScope=runtime </dev/null 2>&1 |
		sed 's/\x1b\[[0-9;]*m//g' >&2
	return "${PIPESTATUS[0]}"
}

cmd_install() {
	if is_installed; then
		log "jars already in $JARS_DIR"
		return 0
	fi
	ensure_apt_packages java openjdk-17-jre-headless
	ensure_apt_packages mvn maven
	local start tmp attempt
	start=$(now_ms)
	mkdir -p "$(dirname "$JARS_DIR")"
	tmp="$(mktemp -d "$JARS_DIR.tmp.XXXXXX")"
	for attempt in 1 2 3; do
		log "fetching kafka_2.13:$KAFKA_VERSION runtime jars (attempt $attempt)"
		if copy_jars "$tmp"; then
			break
		fi
		((attempt < 3)) || { rm -rf "$tmp"; die "mvn dependency:copy-dependencies failed"; }
		sleep $((attempt * 5))
	done
	[[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" && -f "$tmp/slf4j-simple-1.7.36.jar" ]] ||
		{ rm -rf "$tmp"; die "jars incomplete in $tmp"; }
	pom_digest >"$tmp/.complete"
	rm -rf "$JARS_DIR"
	mv "$tmp" "$JARS_DIR"
	log "installed $(find "$JARS_DIR" -name '*.jar' | wc -l) jars in $JARS_DIR in $(($(now_ms) - start)) ms"
}

running_pid() {
	local pid
	pid="$(read_pid "$PID_FILE")"
	pid_matches "$pid" "$MAIN_CLASS" && echo "$pid"
	true
}

# api_versions_ok: the broker answers an ApiVersions v0 request on PLAINTEXT.
# Request: size=15, api_key=18, api_version=0, correlation_id=1, client_id="probe".
api_versions_ok() {
	local n
	# shellcheck disable=SC2016 # expanded by the inner bash
	n="$(timeout 3 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf "\x00\x00\x00\x0f\x00\x12\x00\x00\x00\x00\x00\x01\x00\x05probe" >&3
		head -c 8 <&3 | wc -c' _ "$PORT" 2>/dev/null)" || return 1
	[[ "$n" == 8 ]]
}

# make_tls: a throwaway CA and, signed by it, a broker certificate for
# 127.0.0.1 and a client certificate. Kafka reads PEM key stores (PKCS#8
# key followed by the certificate).
make_tls() {
	ensure_apt_packages openssl openssl
	rm -rf "$TLS_DIR" && mkdir -p "$TLS_DIR"
	(
		cd "$TLS_DIR"
		openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=dashstream-test-ca \
			-keyout ca-key.pem -out ca.pem
		local name
		for name in broker client; do
			openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" -keyout "$name-key.pem" -out "$name.csr"
			openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 30 \
				-extfile <(printf 'subjectAltName=IP:127.0.0.1\n') -out "$name.pem"
		done
		cat broker-key.pem broker.pem >broker-keystore.pem
		rm -f ./*.csr ca.srl
	) >>"$LOG_FILE" 2>&1 || die "making test certificates failed (see $LOG_FILE)"
}

# secure_props: the listeners and settings of the optional secure ports.
secure_props() {
	local listeners="" map="" l mech
	[[ -z "$SASL_PORT" ]] || { listeners+=",SASL_PLAINTEXT://127.0.0.1:$SASL_PORT"; map+=",SASL_PLAINTEXT:SASL_PLAINTEXT"; }
	[[ -z "$SASL_SSL_PORT" ]] || { listeners+=",SASL_SSL://127.0.0.1:$SASL_SSL_PORT"; map+=",SASL_SSL:SASL_SSL"; }
	[[ -z "$SSL_PORT" ]] || { listeners+=",SSL://127.0.0.1:$SSL_PORT"; map+=",SSL:SSL"; }
	echo "listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CTRL_PORT$listeners"
	echo "advertised.listeners=PLAINTEXT://127.0.0.1:$PORT$listeners"
	echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT$map"
	if [[ -n "$SASL_PORT$SASL_SSL_PORT" ]]; then
		echo "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
		for l in sasl_plaintext sasl_ssl; do
			echo "listener.name.$l.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_PLAIN_USER=\"$SASL_PLAIN_PASSWORD\";"
			for mech in scram-sha-256 scram-sha-512; do
				echo "listener.name.$l.$mech.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
			done
		done
	fi
	if [[ -n "$SASL_SSL_PORT$SSL_PORT" ]]; then
		echo "ssl.keystore.type=PEM"
		echo "ssl.keystore.location=$TLS_DIR/broker-keystore.pem"
		echo "ssl.truststore.type=PEM"
		echo "ssl.truststore.location=$TLS_DIR/ca.pem"
		echo "listener.name.ssl.ssl.client.auth=required"
	fi
}

write_props() {
	local data="$1" kv
	cat >"$PROPS_FILE" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CTRL_PORT
$(secure_props)
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.check.interval.ms=1000
log.initial.task.delay.ms=1000
delete.topic.enable=true
EOF
	for kv in ${KAFKA_OVERRIDES:-}; do
		echo "$kv" >>"$PROPS_FILE"
	done
}

# cluster_id: 22 chars of base64url of 16 random bytes, like StorageTool
# random-uuid, but without paying for a JVM start.
cluster_id() {
	local id
	while :; do
		id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)"
		[[ "$id" != -* ]] && echo "$id" && return
	done
}

format_storage() {
	local data="$1" id
	[[ -f "$data/meta.properties" ]] && return 0 # kept data dir: reuse it
	id="$(cluster_id)"
	log "formatting $data (cluster id $id)"
	java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.net.preferIPv4Stack=true \
		-Dorg.slf4j.simpleLogger.defaultLogLevel="$LOG_LEVEL" -cp "$JARS_DIR/*" \
		kafka.tools.StorageTool format -t "$id" -c "$PROPS_FILE" >>"$LOG_FILE" 2>&1 ||
		{ tail_log "$LOG_FILE"; die "storage format failed"; }
}

# wait_ready PID: until the PLAINTEXT port accepts and answers ApiVersions.
# The port opens only once the broker is unfenced; the controller port opens
# earlier, so it is never probed.
wait_ready() {
	local pid="$1" start deadline
	start=$(now_ms)
	deadline=$((start + START_TIMEOUT * 1000))
	while (($(now_ms) < deadline)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail_log "$LOG_FILE"
			rm -f "$PID_FILE"
			die "broker exited during startup (see $LOG_FILE)"
		fi
		if port_open 127.0.0.1 "$PORT" && api_versions_ok; then
			log "ready on 127.0.0.1:$PORT in $(($(now_ms) - start)) ms (pid $pid)"
			return 0
		fi
		sleep 0.25
	done
	tail_log "$LOG_FILE"
	die "not ready after ${START_TIMEOUT}s (pid $pid)"
}

cmd_start() {
	local pid data
	pid="$(running_pid)"
	if [[ -n "$pid" ]]; then
		log "already running (pid $pid)"
		wait_ready "$pid"
		brokers_line
		return 0
	fi
	is_installed || die "jars missing in $JARS_DIR: run $0 install"
	local p
	# shellcheck disable=SC2046 # the optional ports, unquoted on purpose
	for p in "$PORT" "$CTRL_PORT" $(secure_ports); do
		wait_port_free "$p" 10 || die "port $p is already in use by another process: $(port_owner "$p")"
	done
	mkdir -p "$STATE_DIR"
	# A failed start leaves no broker and no temp data dir behind.
	trap 'cmd_stop_quietly' EXIT
	if [[ -n "${KAFKA_DATA_DIR:-}" ]]; then
		data="$KAFKA_DATA_DIR"
		mkdir -p "$data"
		rm -f "$TEMP_DATA_FILE"
	else
		data="$(mktemp -d "${TMPDIR:-/tmp}/dashstream-kafka-data.XXXXXX")"
		echo "$data" >"$TEMP_DATA_FILE"
	fi
	: >"$LOG_FILE"
	[[ -z "$SASL_SSL_PORT$SSL_PORT" ]] || make_tls
	write_props "$data"
	format_storage "$data"
	# shellcheck disable=SC2086 # HEAP_OPTS and JVM_OPTS are lists of flags
	(cd "$STATE_DIR" && exec setsid java $HEAP_OPTS $JVM_OPTS -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError \
		-Djava.net.preferIPv4Stack=true -Djava.awt.headless=true \
		-Dorg.slf4j.simpleLogger.defaultLogLevel="$LOG_LEVEL" -Dorg.slf4j.simpleLogger.showDateTime=true \
		-cp "$JARS_DIR/*" "$MAIN_CLASS" "$PROPS_FILE" </dev/null >>"$LOG_FILE" 2>&1) &
	pid=$!
	echo "$pid" >"$PID_FILE"
	start_watchdog "${KAFKA_WATCH_PID:-}" "$pid" "$WATCHDOG_FILE"
	log "started pid $pid, data $data, waiting up to ${START_TIMEOUT}s"
	wait_ready "$pid"
	trap - EXIT
	brokers_line
}

remove_temp_data() {
	[[ -f "$TEMP_DATA_FILE" ]] || return 0
	local data
	data="$(cat "$TEMP_DATA_FILE")"
	[[ "$data" == */dashstream-kafka-data.* ]] && rm -rf "$data"
	rm -f "$TEMP_DATA_FILE"
}

cmd_stop() {
	stop_service kafka_stop
	remove_temp_data
}

# kafka_stop PID: SIGTERM, SIGKILL after STOP_TIMEOUT, then the ports.
kafka_stop() {
	terminate "$1" "$STOP_TIMEOUT"
	wait_ports_free
}

# wait_ports_free: after stop or kill, until both ports are released, so that
# an immediate start on them succeeds.
wait_ports_free() {
	wait_port_free "$PORT" 30 || log "warning: port $PORT still open after stop"
	wait_port_free "$CTRL_PORT" 30 || log "warning: port $CTRL_PORT still open after stop"
	local p
	for p in $(secure_ports); do
		wait_port_free "$p" 30 || log "warning: port $p still open after stop"
	done
}

cmd_stop_quietly() { cmd_stop 2>/dev/null || true; }

cmd_kill() {
	kill_service wait_ports_free
}

cmd_status() {
	local pid
	pid="$(running_pid)"
	if [[ -z "$pid" ]]; then
		log "stopped"
		return 3
	fi
	if port_open 127.0.0.1 "$PORT"; then
		log "running (pid $pid) on 127.0.0.1:$PORT"
		brokers_line
		return 0
	fi
	log "starting (pid $pid), port $PORT not open yet"
	return 4
}

service_main "$@"
