#!/usr/bin/env bash
# Installs and starts a moto server: the local stand-in for what DynamoDB Local lacks (backups,
# point-in-time recovery, restores, exports to S3), pinned with every dependency in
# tools/moto/requirements.txt and installed into its own virtualenv, tools/moto/.venv.
#
#   scripts/moto.sh install        create the virtualenv and install the pinned packages
#   scripts/moto.sh start [PORT]   start it in the background on a free loopback port;
#                                  prints `endpoint=http://127.0.0.1:PORT` and `pid=PID`
#
# Sourced by scripts/with-dynamodb-local.sh, which starts it beside DynamoDB Local for the tests.
set -euo pipefail

MOTO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/dynamodb-local.sh
source "$MOTO_ROOT/scripts/dynamodb-local.sh"   # ddb_free_port, wait_listening
MOTO_TOOLS="$MOTO_ROOT/tools/moto"
MOTO_VENV="$MOTO_TOOLS/.venv"

moto_install() {
    # Installed already, and exactly the pinned set: nothing to do (and nothing to download).
    if [ -x "$MOTO_VENV/bin/moto_server" ] &&
        "$MOTO_VENV/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null | diff -q - "$MOTO_TOOLS/requirements.txt" >/dev/null; then
        return 0
    fi
    if ! command -v python3 >/dev/null 2>&1; then
        echo "error: python3 (3.9 or newer, with venv) is needed for the moto server the tests use" >&2
        echo "  Debian/Ubuntu: apt-get install -y python3 python3-venv   macOS: brew install python" >&2
        return 1
    fi
    echo "installing moto (PyPI moto[server], pinned) into tools/moto/.venv ..." >&2
    python3 -m venv "$MOTO_VENV" >&2
    "$MOTO_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$MOTO_TOOLS/requirements.txt" >&2
    [ -x "$MOTO_VENV/bin/moto_server" ] || { echo "error: moto installed but moto_server was not found" >&2; return 1; }
}

# Starts moto in the background on loopback; sets MOTO_PID and MOTO_ENDPOINT.
moto_start() {
    local port="${1:-}" log
    [ -x "$MOTO_VENV/bin/moto_server" ] || { echo "error: moto is not installed; run scripts/moto.sh install" >&2; return 1; }
    [ -n "$port" ] || port=$(ddb_free_port)
    log="${TMPDIR:-/tmp}/moto-$port.log"
    "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
    MOTO_PID=$!
    MOTO_ENDPOINT="http://127.0.0.1:$port"
    wait_listening moto "$MOTO_PID" "$port" "$log"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    case "${1:-}" in
        install) moto_install ;;
        start) moto_install && moto_start "${2:-}" && echo "endpoint=$MOTO_ENDPOINT" && echo "pid=$MOTO_PID" ;;
        *) echo "usage: $0 install | start [PORT]" >&2; exit 2 ;;
    esac
fi
