#!/usr/bin/env bash
# Time to first read of a large repo with each prefetch mode: a fresh mesad starts,
# mounts the daemon tree and reads one file (cold blob cache), as bench/mount.sh's
# "time to first read" row, repeated RUNS times per mode; prints the median and the
# time the background prefetch then took to finish. Needs root and /dev/fuse.
# Usage: [MODES="off layout content"] [SETTLE=90] bash bench/first-read.sh [FILES=100000] [RUNS=5]
# SETTLE: seconds to wait after writing the repo before the runs. Writing it through a
# mount frees tens of thousands of journal inodes; ext4 without a journal (this VM's
# disk) then skips inodes freed in the last 60-300 s on every allocation, which adds
# 20-30 ms to the mount's first mkdirs. A fresh sandbox has no such backlog; SETTLE=0
# shows the figure with it.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
files=${1:-100000}
runs=${2:-5}
release mesad mesa-client
work=$(mktemp -d /var/tmp/mesa-first-read.XXXXXX)
mount_home
trap mount_cleanup EXIT

start
"$bin/mesa-client" create-repo bench >/dev/null
repo=$mnt/local/bench
until [[ -d $repo ]]; do sleep 0.05; done
# $files files in 100 directories of 10 subdirectories each (1,101 directories).
python3 - "$repo" "$files" <<'PY'
import os, sys
root, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    d = f"{root}/tree/d{i % 100:03d}/s{(i // 100) % 10}"
    if i < 1000: os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{i:06d}.txt", "w") as f:
        f.write(f"file {i}\n")
PY
"$bin/mesa-client" checkpoint --mount local/bench -m tree >/dev/null
stop
sync; sleep "${SETTLE:-90}"

echo "time to first read, $files files, median of $runs ($(nproc) cores, $(uname -r))"
for mode in ${MODES:-off layout content}; do
    times=()
    for _ in $(seq "$runs"); do
        rm -rf "$HOME/.local/share/mesa/cache" "$HOME/.local/share/mesa/journal"
        t0=$(now)
        MESA_CACHE_PREFETCH=$mode start
        cat "$repo/tree/d042/s0/f000042.txt" >/dev/null
        times+=("$(secs "$t0" "$(now)")")
        # Then wait for the prefetch to finish (status says "done").
        t1=$(now)
        while [[ $mode != off ]] && ! "$bin/mesa-client" status --mount local/bench 2>/dev/null | tr -d " \n" | grep -q "\"state\":\"done\""; do
            sleep 0.05
            [[ $(secs "$t1" "$(now)" | cut -d. -f1) -ge 120 ]] && break
        done
        done_after=$(secs "$t0" "$(now)")
        rss=$(awk '/VmHWM/ {print int($2 / 1024)}' /proc/$pid/status)
        stop
    done
    median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
    printf '%-8s first read %6.3f s (runs: %s); prefetch finished %s s after start; mesad peak RSS %s MiB\n' \
        "$mode" "$median" "${times[*]}" "$done_after" "$rss"
done
