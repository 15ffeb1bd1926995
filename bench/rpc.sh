#!/usr/bin/env bash
# RPC benchmark: latency and throughput of a trivial JSON-RPC request to mesad over its
# Unix socket and over stdio, beside a raw Unix-socket echo measured in the same run.
# Release build; mesad runs on a temporary HOME and is stopped by its pid at the end.
# Arguments go to rpc-bench (e.g. --requests 5000 --clients 16 --per-client 2000).
# BASELINE=DIR (a directory holding an older release build's mesad and rpc-bench) runs
# that pair first, then this tree's, in the same run: a same-run comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
release mesad rpc-bench

work=$(mktemp -d /tmp/mesa-rpc-bench.XXXXXX)
pid=""
trap 'stop_daemon; rm -rf "$work"' EXIT

# One run of rpc-bench against a fresh mesad, both from directory $1.
run() {
    local dir=$1 label=$2 home="$work/$2"
    shift 2
    mkdir -p "$home/home" "$home/stdio-home"
    export HOME="$home/home" MESA_RUNTIME_DIR="$home/run" MESA_NO_CONFIG_FILE=1
    export XDG_CONFIG_HOME="$home/home/.config" XDG_DATA_HOME="$home/home/.local/share"
    unset XDG_RUNTIME_DIR MESA_ORGS MESA_ORG MESA_API_KEY MESA_API_URL
    # -d returns once the daemon answers on its socket; its pid is in the pid file.
    "$dir/mesad" -d >/dev/null
    pid=$(cat "$MESA_RUNTIME_DIR/mesad.pid")
    echo "== $label: mesad pid $pid ($dir, release build)"
    "$dir/rpc-bench" --socket "$MESA_RUNTIME_DIR/mesad.sock" --mesad "$dir/mesad" --stdio-home "$home/stdio-home" "$@"
    stop_daemon
}

if [[ -n "${BASELINE:-}" ]]; then
    run "$BASELINE" baseline "$@"
fi
run "$bin" "$(git rev-parse --short HEAD 2>/dev/null || echo this-tree)" "$@"
