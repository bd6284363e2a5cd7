#!/usr/bin/env bash
# browser.sh: end-to-end test of the built-in web UI (web/static) in a real
# headless Chromium, driven by playwright-core from web/e2e.
#
#   scripts/browser.sh install   Debian's chromium (apt, only when /usr/bin/chromium
#                                is missing) and `npm ci` in web/e2e (skipped when
#                                node_modules already matches package-lock.json)
#   scripts/browser.sh test      build the gateway, start `dashstream demo` on free
#                                loopback ports, wait for /readyz, run
#                                `node --test` on web/e2e/ui.test.mjs, run.test.mjs and
#                                sse.test.mjs, one file at a time,
#                                stop the gateway
#
# Environment (all optional):
#   CHROMIUM          browser binary (default /usr/bin/chromium)
#   SCREENSHOT_DIR    where the test writes its screenshot (default: a new
#                     /tmp/dashstream-ui.XXXXXX, printed; kept after the run)
#   READY_TIMEOUT     seconds to wait for /readyz (default 30)
#
# Nothing is downloaded except through apt (Debian) and npm (the registry):
# no `playwright install`, the browser is the distribution's.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/toolchain.sh
source "$REPO_ROOT/scripts/toolchain.sh"
E2E_DIR="$REPO_ROOT/web/e2e"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
READY_TIMEOUT="${READY_TIMEOUT:-30}"

log() { printf 'browser: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

cmd_install() {
	command -v node >/dev/null 2>&1 || die "node is not installed (Node >= 20 needed)"
	command -v npm >/dev/null 2>&1 || die "npm is not installed"
	if [[ ! -x "$CHROMIUM" ]]; then
		[[ "$CHROMIUM" == /usr/bin/chromium ]] || die "$CHROMIUM is missing (unset CHROMIUM to install Debian's)"
		log "installing chromium (apt)"
		local sudo=()
		((EUID == 0)) || sudo=(sudo)
		"${sudo[@]}" apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
			chromium fonts-liberation >/dev/null
		[[ -x "$CHROMIUM" ]] || die "apt-get installed chromium but $CHROMIUM is missing"
	fi
	log "$("$CHROMIUM" --version 2>/dev/null || echo "chromium: version unknown")"

	# npm ci wipes and reinstalls node_modules every time: skip it when the
	# installed tree was made from this very lock file.
	local stamp="$E2E_DIR/node_modules/.browser-sh-lock"
	if [[ -f "$stamp" ]] && cmp -s "$stamp" "$E2E_DIR/package-lock.json" &&
		[[ -f "$E2E_DIR/node_modules/playwright-core/package.json" ]]; then
		log "web/e2e/node_modules up to date"
	else
		log "npm ci in web/e2e"
		(cd "$E2E_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
		cp "$E2E_DIR/package-lock.json" "$stamp"
	fi
}

# free_port prints a TCP port nothing listens on at 127.0.0.1 right now.
free_port() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
		return
	fi
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 40000))
		# shellcheck disable=SC2016 # expanded by the inner bash
		if ! timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$p" 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	die "no free port found"
}

GW_PID=""
WORK=""
cleanup() {
	local status=$?
	if [[ -n "$GW_PID" ]] && kill -0 "$GW_PID" 2>/dev/null; then
		kill -TERM "$GW_PID" 2>/dev/null || true
		local i
		for ((i = 0; i < 100; i++)); do
			kill -0 "$GW_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$GW_PID" 2>/dev/null; then
			log "gateway did not stop within 10 s: killing it"
			kill -KILL "$GW_PID" 2>/dev/null || true
		fi
		wait "$GW_PID" 2>/dev/null || true
	fi
	if ((status != 0)) && [[ -n "$WORK" && -s "$WORK/gateway.log" ]]; then
		log "gateway log (last 40 lines):"
		tail -n 40 "$WORK/gateway.log" >&2 || true
	fi
	[[ -z "$WORK" ]] || rm -rf "$WORK"
	exit "$status"
}

cmd_test() {
	[[ -x "$CHROMIUM" ]] || die "$CHROMIUM is missing: run scripts/browser.sh install"
	[[ -f "$E2E_DIR/node_modules/playwright-core/package.json" ]] ||
		die "web/e2e/node_modules is missing: run scripts/browser.sh install"
	command -v curl >/dev/null 2>&1 || die "curl is not installed"

	WORK="$(mktemp -d "${TMPDIR:-/tmp}/dashstream-browser.XXXXXX")"
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	log "building the gateway"
	(cd "$REPO_ROOT" && go build -o "$WORK/dashstream" ./cmd/dashstream)

	local ws_port kafka_port
	ws_port="$(free_port)"
	kafka_port="$(free_port)"
	while [[ "$kafka_port" == "$ws_port" ]]; do kafka_port="$(free_port)"; done
	local url="http://127.0.0.1:$ws_port/"

	log "starting dashstream demo on $url (embedded Kafka 127.0.0.1:$kafka_port)"
	(
		cd "$WORK"
		exec env WEBSOCKET_HOST=127.0.0.1 WEBSOCKET_PORT="$ws_port" \
			EMBEDDED_KAFKA_ADDR="127.0.0.1:$kafka_port" \
			EXPECTED_SCHEMAS_PATH="$WORK/expected_schemas.json" \
			KAFKA_BROKERS= REDIS_URL= WEBSOCKET_UI_DIR= ADMIN_TOKEN= \
			WEBSOCKET_AUTH_TOKEN= WEBSOCKET_JWT_SECRET= WEBSOCKET_JWT_PUBLIC_KEY_FILE= \
			WEBSOCKET_ALLOWED_ORIGINS= \
			"$WORK/dashstream" demo
	) >"$WORK/gateway.log" 2>&1 &
	GW_PID=$!

	local deadline=$((SECONDS + READY_TIMEOUT)) code=""
	while :; do
		kill -0 "$GW_PID" 2>/dev/null || die "the gateway exited before it was ready"
		code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "${url}readyz" || true)"
		[[ "$code" == 200 ]] && break
		((SECONDS < deadline)) || die "/readyz not 200 within ${READY_TIMEOUT}s (last: ${code:-no answer})"
		sleep 0.2
	done
	log "gateway ready"

	local shots="${SCREENSHOT_DIR:-}"
	[[ -n "$shots" ]] || shots="$(mktemp -d "${TMPDIR:-/tmp}/dashstream-ui.XXXXXX")"
	mkdir -p "$shots"

	local status=0
	(cd "$E2E_DIR" && DASHSTREAM_URL="$url" DASHSTREAM_BIN="$WORK/dashstream" CHROMIUM="$CHROMIUM" SCREENSHOT_DIR="$shots" \
		timeout 300 node --test --test-concurrency=1 --test-timeout=90000 ui.test.mjs run.test.mjs sse.test.mjs) || status=$?
	log "screenshots in $shots"
	return "$status"
}

case "${1:-}" in
install) cmd_install ;;
test) cmd_test ;;
*)
	echo "usage: $0 {install|test}" >&2
	exit 2
	;;
esac
