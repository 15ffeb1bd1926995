#!/usr/bin/env bash
# RPC benchmark: latency and throughput of a trivial JSON-RPC request to mesad over its
# Unix socket and over stdio, beside a raw Unix-socket echo measured in the same run.
# Release build; mesad runs on a temporary HOME and is stopped by its pid at the end.
# Arguments go to rpc-bench (e.g. --requests 5000 --clients 16 --per-client 2000).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --static-swift-stdlib --product mesad >/dev/null
swift build -c release --static-swift-stdlib --product rpc-bench >/dev/null
bin=$(swift build -c release --static-swift-stdlib --show-bin-path)

work=$(mktemp -d /tmp/mesa-rpc-bench.XXXXXX)
pid=""
cleanup() {
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/home" "$work/stdio-home"
export HOME="$work/home" MESA_RUNTIME_DIR="$work/run" MESA_NO_CONFIG_FILE=1
export XDG_CONFIG_HOME="$work/home/.config" XDG_DATA_HOME="$work/home/.local/share"
unset XDG_RUNTIME_DIR MESA_ORGS MESA_ORG MESA_API_KEY MESA_API_URL

# -d returns once the daemon answers on its socket; its pid is in the pid file.
"$bin/mesad" -d >/dev/null
pid=$(cat "$MESA_RUNTIME_DIR/mesad.pid")
echo "mesad pid $pid ($(git rev-parse --short HEAD 2>/dev/null || echo '?'), release build)"

"$bin/rpc-bench" --socket "$MESA_RUNTIME_DIR/mesad.sock" --mesad "$bin/mesad" --stdio-home "$work/stdio-home" "$@"
