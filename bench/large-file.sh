#!/usr/bin/env bash
# Large files end to end, over both backends (the embedded store, and mesa-server over
# HTTP): write one file of MiB mebibytes (default 1 GiB, random bytes) into a mount,
# checkpoint it, read it back with cmp — first warm, then through a restarted mesad with
# an empty blob cache, so the blob is fetched from the backend. Prints mesad's peak RSS
# (VmHWM, goal <= 150 MiB) and the checkpoint time beside `git add` of the same file in
# a plain git repo on the same disk (goal <= 1.2x). The background flusher is held off
# (flush-debounce-ms = 60000) so the checkpoint does the whole upload.
# Needs root and /dev/fuse. Loopback only; stops everything it started by pid.
# Usage: bash bench/large-file.sh [MiB=1024]
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
for product in mesad mesa-server mesa-client; do
    swift build -c release --static-swift-stdlib --product "$product" >/tmp/mesa-bench-build.log 2>&1 || { cat /tmp/mesa-bench-build.log; exit 1; }
done
bin=$(swift build -c release --static-swift-stdlib --show-bin-path)
work=$(mktemp -d /var/tmp/mesa-large-bench.XXXXXX)
export HOME=$work/home MESA_RUNTIME_DIR=$work/run
unset XDG_CONFIG_HOME XDG_CACHE_HOME XDG_DATA_HOME MESA_API_URL MESA_ORGS MESA_ORG MESA_API_KEY MESA_NO_CONFIG_FILE
mkdir -p "$HOME/.config/mesa"
printf '[daemon]\nflush-debounce-ms = 60000\n' >"$HOME/.config/mesa/config.toml"
mnt=$HOME/.local/share/mesa/mnt
pid="" spid=""
cleanup() {
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && sleep 1
    [[ -n "$spid" ]] && kill "$spid" 2>/dev/null
    fusermount3 -u -z "$mnt" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
start() { "$bin/mesad" -d --mount >/dev/null; pid=$(cat "$MESA_RUNTIME_DIR/mesad.pid"); }
stop() { "$bin/mesa-client" shutdown >/dev/null; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done; pid=""; }
hwm() { awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$1/status"; }

echo "large-file benchmark ($(nproc) cores, $(uname -r)), file ${mib} MiB"
dd if=/dev/urandom of="$work/source.bin" bs=1M count="$mib" status=none

# Baseline: `git add` of the same file in a plain repo on the same disk (file cached,
# as the mount's journal copy is). git does not fsync objects by default; libgit2 in
# the store does, so the fsyncing variant is printed too.
git_add() {
    rm -rf "$work/git" && git init -q "$work/git" && cp "$work/source.bin" "$work/git/big.bin" && sync
    local t0; t0=$(now)
    /usr/bin/time -f "%M" -o "$work/git.rss" git -C "$work/git" "$@" add big.bin
    secs "$t0" "$(now)"
}
# The machine is shared: the baseline is measured right before and right after each
# backend's run, and the checkpoint is compared with their mean.
mean() { python3 -c "print(f'{($1 + $2) / 2:.2f}')"; }
gadd0=$(git_add); grss=$(( $(cat "$work/git.rss") / 1024 ))
gsync0=$(git_add -c core.fsync=loose-object -c core.fsyncMethod=fsync)
printf '%-44s %8s s   peak RSS %5s MiB\n' "git add (plain repo)" "$gadd0" "$grss"
printf '%-44s %8s s\n' "git add, core.fsync=loose-object" "$gsync0"

# One backend: $1 label, $2 mount-relative repo path; mesad already running.
run() {
    local label=$1 repo=$mnt/$2 mount_id=$2
    until [[ -d $repo ]]; do sleep 0.05; done
    local t0 w c r1 r2 rss1 rss2 gadd gsync
    t0=$(now); dd if="$work/source.bin" of="$repo/big.bin" bs=1M conv=fsync status=none; w=$(secs "$t0" "$(now)")
    t0=$(now); "$bin/mesa-client" checkpoint --mount "$mount_id" -m "1 GiB" >/dev/null; c=$(secs "$t0" "$(now)")
    t0=$(now); cmp "$work/source.bin" "$repo/big.bin"; r1=$(secs "$t0" "$(now)")
    rss1=$(hwm "$pid")
    # A fresh daemon with an empty blob cache: the read fetches the blob from the backend.
    stop
    rm -rf "$HOME/.cache/mesa"
    start
    until [[ -f $repo/big.bin ]]; do sleep 0.05; done
    t0=$(now); cmp "$work/source.bin" "$repo/big.bin"; r2=$(secs "$t0" "$(now)")
    rss2=$(hwm "$pid")
    stop
    local gadd1 gsync1 before=$gadd0
    gadd1=$(git_add); gsync1=$(git_add -c core.fsync=loose-object -c core.fsyncMethod=fsync)
    gadd=$(mean "$gadd0" "$gadd1"); gsync=$(mean "$gsync0" "$gsync1")
    gadd0=$gadd1; gsync0=$gsync1
    echo "$label"
    printf '  %-42s %8s s   (%s s before, %s s after this run)\n' "git add, mean" "$gadd" "$before" "$gadd1"
    printf '  %-42s %8s s\n' "write ${mib} MiB into the mount + fsync" "$w"
    printf '  %-42s %8s s   %sx git add, %sx git add+fsync (goal <= 1.2x)\n' "checkpoint (upload + commit)" "$c" \
        "$(ratio "$c" "$gadd")" "$(ratio "$c" "$gsync")"
    printf '  %-42s %8s s\n' "read back + cmp (warm, journal file)" "$r1"
    printf '  %-42s %8s s\n' "read back + cmp (cold cache, fetched)" "$r2"
    printf '  %-42s %8s MiB (write+checkpoint+read), %s MiB (fetch+read) (goal <= 150)\n' "mesad peak RSS" "$rss1" "$rss2"
}

# Embedded store.
start
"$bin/mesa-client" create-repo large >/dev/null
run "embedded store" local/large
rm -rf "$HOME/.local/share/mesa" "$HOME/.cache/mesa"

# mesa-server over HTTP.
key=$("$bin/mesa-server" init --org bench --data "$work/server" 2>/dev/null)
sport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin/mesa-server" serve --listen "127.0.0.1:$sport" --data "$work/server" >"$work/server.log" 2>&1 &
spid=$!
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$sport/v1/whoami" && break; sleep 0.05; done
export MESA_API_URL=http://127.0.0.1:$sport/v1 MESA_ORGS="bench:$key"
start
"$bin/mesa-client" create-repo --org bench large >/dev/null
run "mesa-server over HTTP" bench/large
echo "  mesa-server peak RSS: $(hwm "$spid") MiB"
# The server's own time for the streamed upload (its access log), to tell transfer from store work.
grep 'method=POST path=/v1/bench/large/blobs ' "$work/server.log" | grep -o 'duration_ms=[0-9.]*.*status=[0-9]*' | sed 's/^/  POST blobs: /' || true
