#!/usr/bin/env bash
# The benchmark (on demand; not part of CI's pass/fail). Builds release, starts a private DynamoDB
# Local, and prints items/s, client CPU ms per 1000 items and peak RSS of dynamigrate's backfill beside
# its baselines, and the ratios; then the adaptive limiter against a capacity of W WCU/s through the
# fault/capacity proxy at a 20 ms round trip. Results and how to read them: docs/benchmarks.md.
#
#   scripts/bench.sh [ITEMS] [--latency MS[,MS...]] [--only VARIANT] [--repeat N] [--capacity W]
#                    [--concurrency C] [--segments S] [--page N] [--rate-mode adaptive|fixed]
#   scripts/bench.sh versions [ITEMS] [--segments S] [--repeat N]   (`versions` against a raw count scan)
#
# ITEMS defaults to 200000; --latency adds round trips through a pure-delay proxy (default 0);
# --only hand compares dynamigrate at its defaults with the hand-written loops at the best window of
# a sweep (--only hand-update or hand-batch: one write mode); --only update|batch|capacity|files
# runs a subset; each variant runs --repeat times (default 3), interleaved, and the summary takes
# medians. dynamigrate runs at its defaults but for the knobs given.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/dynamodb-local.sh
ddb_install
cargo build --quiet --release -p dynamigrate-tests --bin bench
# DynamoDB Local keeps every table in memory: give it room for a million items.
export DDB_HEAP="${DDB_HEAP:-3g}"
DYNAMIGRATE_NO_MOTO=1 exec scripts/with-dynamodb-local.sh target/release/bench "$@"
