#!/usr/bin/env bash
# Runs a command beside a fresh, in-memory DynamoDB Local and stops the server afterwards.
#
#   scripts/with-dynamodb-local.sh CMD [ARGS...]
#
# The command sees DYNAMIGRATE_TEST_ENDPOINT (the server's URL), AWS_ENDPOINT_URL_DYNAMODB and dummy
# AWS credentials and region. DynamoDB Local listens on every interface and has no option to bind one,
# so where the platform allows we run it and the command inside a private network namespace
# (`unshare -n`, only loopback): nothing is exposed. Nothing inside that namespace reaches the network,
# so build before calling this. Set DYNAMIGRATE_NO_NETNS=1 to skip the namespace.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/dynamodb-local.sh
source "$here/dynamodb-local.sh"

[ $# -gt 0 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }

if [ "${1:-}" = "--in-netns" ]; then
    shift
    ip link set lo up
elif [ "${DYNAMIGRATE_NO_NETNS:-0}" != "1" ] && unshare -n true 2>/dev/null && command -v ip >/dev/null; then
    ddb_install
    exec unshare -n "$0" --in-netns "$@"
else
    echo "note: cannot make a private network namespace here; DynamoDB Local will listen on all interfaces" >&2
fi

ddb_install
ddb_start
trap 'kill "$DDB_PID" 2>/dev/null || true; wait "$DDB_PID" 2>/dev/null || true' EXIT
export DYNAMIGRATE_TEST_ENDPOINT="$DDB_ENDPOINT"
export AWS_ENDPOINT_URL_DYNAMODB="$DDB_ENDPOINT"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-dynamigratelocal}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-dynamigratelocal}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
echo "DynamoDB Local ready at $DDB_ENDPOINT (pid $DDB_PID)" >&2
"$@"
