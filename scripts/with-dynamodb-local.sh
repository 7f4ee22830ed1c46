#!/usr/bin/env bash
# Runs a command beside a fresh, in-memory DynamoDB Local and a moto server (backups, point-in-time
# recovery, restores and exports, which DynamoDB Local lacks), and stops both afterwards.
#
#   scripts/with-dynamodb-local.sh CMD [ARGS...]
#
# The command sees DYNAMIGRATE_TEST_ENDPOINT (DynamoDB Local's URL), DYNAMIGRATE_TEST_DDB_PID (its
# process, whose CPU the benchmarks read), AWS_ENDPOINT_URL_DYNAMODB,
# DYNAMIGRATE_TEST_MOTO_ENDPOINT (moto's URL, serving DynamoDB and S3) and dummy AWS credentials and
# region. Set DYNAMIGRATE_NO_MOTO=1 to start DynamoDB Local alone (the demo and the benchmark do).
# DynamoDB Local listens on every interface and has no option to bind one, so where the platform allows
# we run it, moto and the command inside a private network namespace (`unshare -n`, only loopback):
# nothing is exposed. Nothing inside that namespace reaches the network, so build before calling this. Set DYNAMIGRATE_NO_NETNS=1 to skip the namespace.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/dynamodb-local.sh
source "$here/dynamodb-local.sh"
# shellcheck source=scripts/moto.sh
source "$here/moto.sh"
with_moto() { [ "${DYNAMIGRATE_NO_MOTO:-0}" != "1" ]; }

[ $# -gt 0 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }

if [ "${1:-}" = "--in-netns" ]; then
    shift
    ip link set lo up
elif [ "${DYNAMIGRATE_NO_NETNS:-0}" != "1" ] && unshare -n true 2>/dev/null && command -v ip >/dev/null; then
    ddb_install
    if with_moto; then moto_install; fi
    exec unshare -n "$0" --in-netns "$@"
else
    echo "note: cannot make a private network namespace here; DynamoDB Local will listen on all interfaces" >&2
fi

ddb_install
ddb_start
MOTO_PID=""
trap 'kill $DDB_PID $MOTO_PID 2>/dev/null || true; wait $DDB_PID $MOTO_PID 2>/dev/null || true' EXIT
if with_moto; then
    moto_install
    moto_start
    export DYNAMIGRATE_TEST_MOTO_ENDPOINT="$MOTO_ENDPOINT"
    echo "moto ready at $MOTO_ENDPOINT (pid $MOTO_PID)" >&2
fi
export DYNAMIGRATE_TEST_ENDPOINT="$DDB_ENDPOINT"
export DYNAMIGRATE_TEST_DDB_PID="$DDB_PID"
export AWS_ENDPOINT_URL_DYNAMODB="$DDB_ENDPOINT"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-dynamigratelocal}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-dynamigratelocal}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
echo "DynamoDB Local ready at $DDB_ENDPOINT (pid $DDB_PID)" >&2
"$@"
