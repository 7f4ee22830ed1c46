#!/usr/bin/env bash
# The benchmark (on demand; not part of CI's pass/fail). Builds release, starts a private DynamoDB
# Local, and prints, for the same table size and concurrency: items/s of dynamigrate's backfill in
# update and batch mode and of a minimal raw-SDK loop doing the same requests; the ratios; client
# CPU ms per 1000 items; peak RSS; then the adaptive limiter against a capacity of W WCU/s through
# the fault/capacity proxy. Results and how to read them: docs/benchmarks.md.
#
#   scripts/bench.sh [ITEMS] [--concurrency C] [--segments S] [--capacity W] [--only VARIANT]
#                    [--repeat N] [--page N] [--rate-mode adaptive|fixed]
#   scripts/bench.sh versions [ITEMS] [--segments S] [--repeat N]   (`versions` against a raw count scan)
#
# ITEMS defaults to 200000 (1000000 on request); --only raw-update|dynamigrate-update|raw-batch|
# dynamigrate-batch|update|batch|capacity runs a subset; each variant runs --repeat times (default
# 3), interleaved, and the summary takes medians.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/dynamodb-local.sh
ddb_install
cargo build --quiet --release -p dynamigrate-tests --bin bench
# DynamoDB Local keeps every table in memory: give it room for a million items.
export DDB_HEAP="${DDB_HEAP:-3g}"
DYNAMIGRATE_NO_MOTO=1 exec scripts/with-dynamodb-local.sh target/release/bench "$@"
