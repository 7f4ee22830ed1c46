#!/usr/bin/env bash
# README command 1: builds dynamigrate, starts a private DynamoDB Local, seeds a demo table with the
# seed scenario's "before" items, and runs the demo's migrations folder (one TypeScript file, one
# TOML file) with the bare binary: status, versions, dry run, run, versions, status, one item before
# and after, then `down` of the TOML migration.
#
#   scripts/demo.sh [ITEMS]      (default 20000)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEMO_ITEMS="${1:-20000}"

source scripts/dynamodb-local.sh
ddb_install
echo "== building (release build; the first one compiles the AWS SDK: about 4 minutes) ==" >&2
cargo build --quiet --release -p dynamigrate-cli -p dynamigrate-demo --bins

DYNAMIGRATE_NO_MOTO=1 exec scripts/with-dynamodb-local.sh bash -c '
set -euo pipefail
bin=target/release
# Bold headings only for a person at a terminal who has not asked for no colour (NO_COLOR).
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
    step() { printf "\n\033[1m== %s ==\033[0m\n" "$*"; }
else
    step() { printf "\n== %s ==\n" "$*"; }
fi
migrate() { (set -x; "$bin/dynamigrate" --config examples/demo/dynamigrate.toml --endpoint-url "$DYNAMIGRATE_TEST_ENDPOINT" "$@"); }

step "seed: demo-items with $DEMO_ITEMS items in the seed scenario'"'"'s before format"
"$bin/demo-seed" create --table demo-items --items "$DEMO_ITEMS"
step "one item before"
"$bin/demo-seed" show --table demo-items --pk "ITEM#15"
step "status"
migrate status
step "versions: the items by schema version (a read-only scan; the census is recorded for status)"
migrate versions
step "dry run: the migration runs with dry_run = true and writes nothing"
migrate run --dry-run
step "run"
migrate run
step "versions again: every item at v2 now (--at-least 2 would exit 4 otherwise)"
migrate versions --at-least 2
step "status again, with the last census"
migrate status
step "the same item after"
"$bin/demo-seed" show --table demo-items --pk "ITEM#15"
step "down: roll back the newest migration (the TOML one; its down is derived)"
migrate down
"$bin/demo-seed" show --table demo-items --pk "ITEM#15"
step "run again: the rolled-back migration is applied again"
migrate run
'
