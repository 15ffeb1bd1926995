#!/usr/bin/env bash
# Start times. mesad, exec to socket answering: `mesad -d` returns once the started daemon
# answers on its socket, so its wall time is the figure. Measured for what the bundle
# ships (the multi-call binary with the Swift runtime linked statically, run through a
# link named mesad) beside the static mesad built alone (the bundle before the multi-call
# binary) and the same build linked dynamically (built on first use and kept as
# .build/bench/mesad-dynamic: minutes). Each run uses a fresh HOME (embedded store, first
# boot) and is shut down by its socket. Then `mesa --version` (a client that loads no
# daemon code), multi-call vs mesa built alone, both static.
# Usage: bash bench/start.sh [RUNS]   (default 15; prints the median and range in ms)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-15}
# The builds share .build/release (only the link differs): build the dynamic one first
# and keep a copy, then relink the static ones.
dynamic=.build/bench/mesad-dynamic
if [[ ! -x $dynamic ]]; then
    swift build -c release --product mesad >/dev/null
    mkdir -p .build/bench && cp "$(swift build -c release --show-bin-path)/mesad" "$dynamic"
fi
static_flags=(-c release --static-swift-stdlib)
for product in mesa-multicall mesad mesa mesa-client; do swift build "${static_flags[@]}" --product "$product" >/dev/null; done
bin=$(swift build "${static_flags[@]}" --show-bin-path)

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# The bundle's layout: the commands are links to the multi-call binary.
mkdir "$T/bundle"
for command in mesad mesa mesa-client; do ln -s "$bin/mesa-multicall" "$T/bundle/$command"; done
client=$bin/mesa-client

summary() { sort -n | awk '{ a[NR] = $1 } END { printf "%.1f %.1f %.1f\n", a[int((NR + 1) / 2)] / 1000, a[1] / 1000, a[NR] / 1000 }'; }

measure_daemon() { # BINARY -> one line: median min max (ms)
    local binary=$1 i times=()
    for ((i = 0; i < runs; i++)); do
        local home=$T/home-$RANDOM-$i
        mkdir -p "$home"
        local start end
        start=$(date +%s%N)
        env -u XDG_RUNTIME_DIR HOME="$home" MESA_NO_CONFIG_FILE=1 "$binary" -d >/dev/null 2>&1 ||
            { echo "start.sh: $binary -d failed" >&2; exit 1; }
        end=$(date +%s%N)
        env -u XDG_RUNTIME_DIR HOME="$home" timeout 10 "$client" shutdown >/dev/null 2>&1 || true
        # The pid file names the daemon; wait for it to go before the next run.
        local pid
        pid=$(cat "$home/.local/share/mesa/run/mesad.pid" 2>/dev/null || true)
        while [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; do sleep 0.02; done
        times+=($(((end - start) / 1000)))
    done
    printf '%s\n' "${times[@]}" | summary
}

measure_command() { # BINARY ARGS... -> one line: median min max (ms)
    local i times=() start end
    for ((i = 0; i < runs; i++)); do
        start=$(date +%s%N)
        "$@" >/dev/null 2>&1 || { echo "start.sh: $* failed" >&2; exit 1; }
        end=$(date +%s%N)
        times+=($(((end - start) / 1000)))
    done
    printf '%s\n' "${times[@]}" | summary
}

row() { # LABEL "MEDIAN MIN MAX"
    local median min max
    [[ -n $2 ]] || exit 1   # the measurement failed and said why
    read -r median min max <<<"$2"
    printf '%-52s %7s ms %7s–%s ms\n' "$1" "$median" "$min" "$max"
}
printf '%-52s %10s %16s\n' "mesad -d, exec to socket answering ($runs runs)" median range
row "multi-call binary as mesad, static (bundle)" "$(measure_daemon "$T/bundle/mesad")"
row "mesad alone, static (bundle before multi-call)" "$(measure_daemon "$bin/mesad")"
row "mesad alone, dynamic (toolchain needed)" "$(measure_daemon "$dynamic")"
printf '%-52s %10s %16s\n' "mesa --version ($runs runs)" median range
row "multi-call binary as mesa, static (bundle)" "$(measure_command "$T/bundle/mesa" --version)"
row "mesa alone, static" "$(measure_command "$bin/mesa" --version)"
