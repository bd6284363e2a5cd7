#!/usr/bin/env bash
# bench-subscriptions.sh: the five subscription benchmarks with `dashstream bench`
# (each against its own embedded gateway, a child process), then one summary table.
#
#   scripts/bench-subscriptions.sh           the full sizes (run them on a quiet machine)
#   scripts/bench-subscriptions.sh --quick   small sizes, to check that every mode runs
#
# Benchmarks (full sizes; 512 B records), then the floors of the filtered and
# unfiltered loads (`bench --floor`: their bare writes, no gateway) with the
# gateway's CPU per delivery over the floor's:
#   filtered   10,000 v2 clients each following one of 1,000 threads, 2,000 rec/s,
#              with the thread index (indexed) and without it (scan,
#              WEBSOCKET_FILTER_INDEX=off)
#   types      2,000 v2 clients all filtered to {"types":["checkpoint"]}, 2,000 rec/s
#              over 100 runs with a Checkpoint every 20 records (1 in 20 records), with
#              the type index (indexed) and without it (scan)
#   v1-vs-v2   1,000 unfiltered clients x 2,000 rec/s, v1 then v2 (--compare-v1):
#              gateway CPU per delivery and its ratio v2/v1
#   json       1,000 v2 JSON clients x 1,000 rec/s: JSON encodes/s next to rec/s
#   join       200 clients joining at once (from latest, join checkpoint, each
#              filtered to one run) while 100 runs are active, with $JOIN_LIVE_CLIENTS
#              unfiltered v2 clients at $JOIN_RATE rec/s: time to the first full
#              state, and their live p99 before and during the burst
#
# Environment (all optional):
#   DURATION          measured window of each run (20s; --quick: 3s)
#   WARMUP            load before it (2s; --quick: 1s)
#   JOIN_LIVE_CLIENTS the other clients of the join run (200; --quick: 10)
#   JOIN_RATE         records/s of the join run (1000; --quick: 200)
#   OUT_DIR           where each run's JSON result and log are kept (a temporary directory)
# Exit status: 0, or 1 when a run failed or lost or duplicated records.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

QUICK=0
case "${1:-}" in
--quick) QUICK=1 ;;
"") ;;
*)
	echo "usage: $0 [--quick]" >&2
	exit 2
	;;
esac
command -v jq >/dev/null || {
	echo "bench-subscriptions: jq is required" >&2
	exit 1
}

if ((QUICK)); then
	DURATION="${DURATION:-3s}" WARMUP="${WARMUP:-1s}"
	F_CLIENTS=200 F_THREADS=50 F_RATE=200
	T_CLIENTS=100 T_RUNS=10 T_RATE=200
	C_CLIENTS=20 C_RATE=200
	J_CLIENTS=20 J_RATE=200
	JOIN_CLIENTS=20 JOIN_RUNS=10
	JOIN_LIVE_CLIENTS="${JOIN_LIVE_CLIENTS:-10}" JOIN_RATE="${JOIN_RATE:-200}"
else
	DURATION="${DURATION:-20s}" WARMUP="${WARMUP:-2s}"
	F_CLIENTS=10000 F_THREADS=1000 F_RATE=2000
	T_CLIENTS=2000 T_RUNS=100 T_RATE=2000
	C_CLIENTS=1000 C_RATE=2000
	J_CLIENTS=1000 J_RATE=1000
	JOIN_CLIENTS=200 JOIN_RUNS=100
	JOIN_LIVE_CLIENTS="${JOIN_LIVE_CLIENTS:-200}" JOIN_RATE="${JOIN_RATE:-1000}"
fi
OUT_DIR="${OUT_DIR:-$(mktemp -d)}"
mkdir -p "$OUT_DIR"
BIN="$OUT_DIR/dashstream"
echo "bench-subscriptions: results in $OUT_DIR" >&2
go build -o "$BIN" ./cmd/dashstream || exit 1

FAILED=()
# run NAME ARGS...: one bench run, its JSON result in $OUT_DIR/NAME.json.
run() {
	local name=$1
	shift
	echo "bench-subscriptions: $name: dashstream bench $*" >&2
	if ! "$BIN" bench --json --quiet --size 512 --duration "$DURATION" --warmup "$WARMUP" "$@" \
		>"$OUT_DIR/$name.json" 2>"$OUT_DIR/$name.log"; then
		FAILED+=("$name")
		echo "bench-subscriptions: $name failed (log: $OUT_DIR/$name.log)" >&2
		tail -5 "$OUT_DIR/$name.log" >&2
	fi
}

run filtered-indexed --v2 --clients "$F_CLIENTS" --threads "$F_THREADS" --filter-per-client --rate "$F_RATE" --filter-index on
run filtered-scan --v2 --clients "$F_CLIENTS" --threads "$F_THREADS" --filter-per-client --rate "$F_RATE" --filter-index off
run types-indexed --v2 --clients "$T_CLIENTS" --threads "$T_RUNS" --filter-types checkpoint --full-state-every 20 --rate "$T_RATE" --filter-index on
run types-scan --v2 --clients "$T_CLIENTS" --threads "$T_RUNS" --filter-types checkpoint --full-state-every 20 --rate "$T_RATE" --filter-index off
run v1-vs-v2 --compare-v1 --clients "$C_CLIENTS" --rate "$C_RATE"
# The floors: the bare writes of the same loads (no gateway), the least any
# gateway could spend on them on this machine.
run floor-filtered --floor --v2 --clients "$F_CLIENTS" --threads "$F_THREADS" --filter-per-client --rate "$F_RATE"
run floor-v1-vs-v2 --floor --compare-v1 --clients "$C_CLIENTS" --rate "$C_RATE"
run json --v2 --format json --clients "$J_CLIENTS" --rate "$J_RATE"
# A run's full states must still be in the memory tier when the burst comes
# (only those are joined): at JOIN_RATE/JOIN_RUNS records per run per second
# and the default 1,000 records per partition, one every 20 records of a run.
run join --v2 --clients "$JOIN_LIVE_CLIENTS" --threads "$JOIN_RUNS" --join-clients "$JOIN_CLIENTS" --rate "$JOIN_RATE" --full-state-every 20

# row NAME LABEL JQ-PATH: one line of the table from a result object ($what and
# $extra are jq variables).
# shellcheck disable=SC2016
ROW='def f(x; d): if x == null then "n/a" else ((x * d | round) / d | tostring) end;
[$what, (.clients | tostring), f(.rate_produced; 1), f(.delivered_per_sec; 1), f(.latency_ms.p99; 10),
 "\(.lost)/\(.duplicated)/\(.foreign)", f(.gateway_cpu_cores; 1000), f(.cpu_us_per_delivery; 100), $extra] | @tsv'

row() {
	local name=$1 label=$2 path=$3 extra=$4
	[[ -s "$OUT_DIR/$name.json" ]] || {
		printf '%s\t(no result)\n' "$label"
		return
	}
	jq -r --arg what "$label" --arg extra "$extra" "$path | $ROW" "$OUT_DIR/$name.json"
}

extra() { # NAME JQ: the table's last column from a whole result file
	[[ -s "$OUT_DIR/$1.json" ]] && jq -r "$2" "$OUT_DIR/$1.json"
}

{
	printf 'benchmark\tclients\trec/s\tdeliveries/s\tp99 ms\tlost/dup/foreign\tgw cores\tgw us/delivery\tnotes\n'
	row filtered-indexed "filtered, indexed" . "$F_THREADS threads"
	row filtered-scan "filtered, scan" . "index off"
	row types-indexed "types, indexed" . "checkpoint: 1 in 20 of $T_RUNS runs"
	row types-scan "types, scan" . "index off"
	row v1-vs-v2 "unfiltered v1" .v1 ""
	row v1-vs-v2 "unfiltered v2" .v2 "$(extra v1-vs-v2 '"cpu/delivery v2/v1 \(.cpu_per_delivery_ratio_v2_v1 // "n/a" | tostring | .[0:5]), p99 v2/v1 \(.p99_ratio_v2_v1 // "n/a" | tostring | .[0:5])"')"
	row json "v2 JSON" . "$(extra json '"JSON encodes/s \(.json_encodes_per_sec // "n/a" | if type == "number" then round else . end)"')"
	row join "join burst" . "$(extra join '.join | "\(.clients) joined \(.runs) runs: first full state p50 \(.first_full_state_ms.p50) / p99 \(.first_full_state_ms.p99) ms, \(.failed) failed; live p99 \(.live_p99_before_ms) ms before, \(.live_p99_during_ms) ms during"')"
} | column -t -s $'\t'

# floor NAME LABEL FLOOR-PATH GATEWAY-NAME GATEWAY-PATH: the floor of a load
# next to what the gateway spent on it.
floor() {
	local name=$1 label=$2 fpath=$3 gw=$4 gpath=$5 g="null"
	[[ -s "$OUT_DIR/$name.json" ]] || {
		printf '%s\t(no result)\n' "$label"
		return
	}
	[[ -s "$OUT_DIR/$gw.json" ]] && g=$(jq -c "$gpath" "$OUT_DIR/$gw.json")
	jq -r --arg what "$label" --argjson g "$g" "$fpath"' |
		def f(x; d): if x == null then "n/a" else ((x * d | round) / d | tostring) end;
		[$what, f(.deliveries_per_sec; 1), f(.writer_cpu_cores; 1000), f(.cpu_us_per_delivery; 100),
		 f($g.gateway_cpu_cores; 1000), (if $g.cpu_us_per_delivery == null or .cpu_us_per_delivery == 0 then "n/a"
		  else f($g.cpu_us_per_delivery / .cpu_us_per_delivery; 100) end)] | @tsv' "$OUT_DIR/$name.json"
}

echo
{
	printf 'floor (bare writes)\tdeliveries/s\tfloor cores\tfloor us/delivery\tgw cores\tgw/floor per delivery\n'
	floor floor-filtered "filtered" . filtered-indexed .
	floor floor-v1-vs-v2 "unfiltered v1" .v1 v1-vs-v2 .v1
	floor floor-v1-vs-v2 "unfiltered v2" .v2 v1-vs-v2 .v2
} | column -t -s $'\t'
extra floor-v1-vs-v2 '"floor cpu/delivery v2/v1: \(.cpu_per_delivery_ratio_v2_v1 | tostring | .[0:5])"'

for f in "$OUT_DIR"/*.json; do
	[[ -s "$f" ]] || continue
	if jq -e '[.. | objects | select(has("lost")) | .lost + .duplicated + .foreign] | add > 0' "$f" >/dev/null; then
		FAILED+=("$(basename "$f" .json): lost, duplicated or foreign records")
	fi
	if jq -e '(.join.failed // 0) > 0' "$f" >/dev/null; then
		FAILED+=("$(basename "$f" .json): joining clients without their full state")
	fi
done
if ((${#FAILED[@]})); then
	printf 'FAIL: %s\n' "${FAILED[@]}"
	exit 1
fi
