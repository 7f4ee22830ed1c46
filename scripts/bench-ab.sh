#!/usr/bin/env bash
# Interleaved runs of a few benchmark variants, for comparing two builds or two settings where the
# full benchmark (scripts/bench.sh) would take too long. On demand; not part of CI.
#
#   scripts/bench-ab.sh ITEMS ROUNDS [--latency MS] 'LABEL|BINARY|VARIANT|ARGS' ...
#
# Each round seeds a fresh ITEMS-item table per variant and runs `BINARY worker VARIANT TABLE ITEMS
# ARGS` on it, every other round in reverse order (ABBA), so that neighbours in time are compared;
# this machine drifts by a fifth within the hour. BINARY is a release build of the bench (copy
# target/release/bench aside to keep a build); VARIANT one of the bench's (dynamigrate-batch,
# vguard-update, hand-batch@64, ...). --latency puts the pure-delay proxy in front of DynamoDB Local.
# BENCH_SPLIT_CORES=1 gives DynamoDB Local one core and the worker the other, as on AWS, where the
# client's CPU is not the server's; without it they share both, as on a laptop. One line per run:
# label, items/s, client CPU ms per 1,000 items, peak RSS, and DynamoDB Local's CPU ms per 1,000
# items during the run. Example:
#
#   cp target/release/bench /tmp/bench-before   # ... change, rebuild ...
#   scripts/bench-ab.sh 60000 4 'before|/tmp/bench-before|dynamigrate-batch|' \
#       'after|target/release/bench|dynamigrate-batch|' 'hand|target/release/bench|hand-batch@64|'
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ $# -lt 3 || ! "$1" =~ ^[0-9]+$ || ! "$2" =~ ^[0-9]+$ ]]; then
    echo "usage: scripts/bench-ab.sh ITEMS ROUNDS [--latency MS] 'LABEL|BINARY|VARIANT|ARGS' ..." >&2
    exit 2
fi
if [[ -z "${BENCH_AB_INSIDE:-}" ]]; then
    source scripts/dynamodb-local.sh
    ddb_install
    cargo build --quiet --release -p dynamigrate-tests --bin bench
    export DDB_HEAP="${DDB_HEAP:-3g}" BENCH_AB_INSIDE=1
    DYNAMIGRATE_NO_MOTO=1 exec scripts/with-dynamodb-local.sh "$0" "$@"
fi

items=$1 rounds=$2
shift 2
endpoint=$DYNAMIGRATE_TEST_ENDPOINT
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# DynamoDB Local's own CPU is read around each run: on two cores the client's CPU is Local's loss.
local_pid=${DYNAMIGRATE_TEST_DDB_PID:?run under scripts/with-dynamodb-local.sh, which sets it}
if [[ -n "${BENCH_SPLIT_CORES:-}" ]]; then
    taskset -acp 1 "$local_pid" > /dev/null
    pin=(taskset -c 0)
else
    pin=()
fi
if [[ "${1:-}" == --latency ]]; then
    target/release/bench proxy "$2" > "$scratch/proxy" &
    proxy=$!
    trap 'kill $proxy 2>/dev/null; rm -rf "$scratch"' EXIT
    until endpoint=$(head -1 "$scratch/proxy") && [[ -n "$endpoint" ]]; do
        kill -0 "$proxy" 2>/dev/null || { echo "the latency proxy did not start" >&2; exit 1; }
        sleep 0.2
    done
    echo "through the proxy at $endpoint (+$2 ms)"
    shift 2
fi
variants=("$@")

# CPU seconds process $1 has spent, from /proc (clock ticks of 1/100 s).
cpu_of() {
    awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"
}

run() {
    local label binary variant args table before
    IFS='|' read -r label binary variant args <<< "$1"
    table="ab-$RANDOM$RANDOM"
    "$binary" seed "$table" "$items" > /dev/null
    before=$(cpu_of "$local_pid")
    # $args is split on purpose: it holds the worker's flags.
    # shellcheck disable=SC2086
    DYNAMIGRATE_TEST_ENDPOINT=$endpoint AWS_ENDPOINT_URL_DYNAMODB=$endpoint \
        "${pin[@]}" "$binary" worker "$variant" "$table" "$items" $args > "$scratch/run"
    python3 -c 'import json, sys; r = json.load(open(sys.argv[2])); local = (float(sys.argv[4]) - float(sys.argv[3])) * 1e6 / max(r["items"], 1); print("%s %.0f items/s, %.1f ms CPU/1000, %.1f MB; Local %.1f ms CPU/1000" % (sys.argv[1], r["items_per_second"], r["cpu_ms_per_1000"], r["peak_rss_kb"] / 1024, local))' \
        "$label" "$scratch/run" "$before" "$(cpu_of "$local_pid")"
}

# A kind of run is slow the first time after DynamoDB Local starts (its JIT compiles the request
# paths it meets): a first batch run after an update warm-up ran at 0.6-0.85x of its later rounds
# in four sessions. So every variant runs once, unmeasured, before the rounds.
for variant in "${variants[@]}"; do
    run "$variant" > /dev/null
done
for ((round = 1; round <= rounds; round++)); do
    order=("${variants[@]}")
    if ((round % 2 == 0)); then
        order=()
        for ((i = ${#variants[@]} - 1; i >= 0; i--)); do order+=("${variants[$i]}"); done
    fi
    for variant in "${order[@]}"; do
        echo -n "round $round: "
        run "$variant"
    done
done
