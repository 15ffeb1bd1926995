#!/usr/bin/env bash
# mesad start time, exec to socket answering: `mesad -d` returns once the started daemon
# answers on its socket, so its wall time is the figure. Measured for the release build
# with the Swift runtime linked statically (what the bundle ships) beside the same build
# linked dynamically (built on first use and kept as .build/bench/mesad-dynamic: minutes).
# Each run uses a fresh HOME (embedded store, first boot) and is shut down by its socket.
# Usage: bash bench/start.sh [RUNS]   (default 15; prints the median and range in ms)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-15}
# The two builds share .build/release (only the link differs): build the dynamic one
# first and keep a copy, then relink the static one.
dynamic=.build/bench/mesad-dynamic
if [[ ! -x $dynamic ]]; then
    swift build -c release --product mesad >/dev/null
    mkdir -p .build/bench && cp "$(swift build -c release --show-bin-path)/mesad" "$dynamic"
fi
swift build -c release --static-swift-stdlib --product mesad >/dev/null
static=$(swift build -c release --static-swift-stdlib --show-bin-path)/mesad
client=$(swift build -c release --static-swift-stdlib --show-bin-path)/mesa-client
[[ -x $client ]] || swift build -c release --static-swift-stdlib --product mesa-client >/dev/null

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

measure() { # BINARY -> one line: median min max (ms)
    local binary=$1 i times=()
    for ((i = 0; i < runs; i++)); do
        local home=$T/home-$RANDOM-$i
        mkdir -p "$home"
        local start end
        start=$(date +%s%N)
        env -u XDG_RUNTIME_DIR HOME="$home" MESA_NO_CONFIG_FILE=1 "$binary" -d >/dev/null 2>&1
        end=$(date +%s%N)
        env -u XDG_RUNTIME_DIR HOME="$home" timeout 10 "$client" shutdown >/dev/null 2>&1 || true
        # The pid file names the daemon; wait for it to go before the next run.
        local pid
        pid=$(cat "$home/.local/share/mesa/run/mesad.pid" 2>/dev/null || true)
        while [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; do sleep 0.02; done
        times+=($(((end - start) / 1000)))
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { printf "%.1f %.1f %.1f\n", a[int((NR + 1) / 2)] / 1000, a[1] / 1000, a[NR] / 1000 }'
}

read -r s_med s_min s_max < <(measure "$static")
read -r d_med d_min d_max < <(measure "$dynamic")
printf '%-44s %10s %16s\n' "mesad -d, exec to socket answering ($runs runs)" median range
printf '%-44s %7s ms %7s–%s ms\n' "static Swift runtime (bundle)" "$s_med" "$s_min" "$s_max"
printf '%-44s %7s ms %7s–%s ms\n' "dynamic Swift runtime (toolchain needed)" "$d_med" "$d_min" "$d_max"
