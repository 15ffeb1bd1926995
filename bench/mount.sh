#!/usr/bin/env bash
# Mount benchmarks: the same work on a mesad mount and on the native filesystem of the
# same disk, in the same run, printed side by side with the ratio (mount / native time;
# for throughput, mount / native MB/s). Needs root and /dev/fuse. Loopback only; stops
# everything it started by pid. Usage: bash bench/mount.sh [FILES=100000]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
files=${1:-100000}
release mesad mesa-client
work=$(mktemp -d /var/tmp/mesa-bench.XXXXXX)
mount_home
mkdir -p "$work/native"
trap mount_cleanup EXIT
row() { python3 -c "
label, m, n, unit = '$1', float('$2'), float('$3'), '$4'
ratio = (m / n) if n else float('nan')
print(f'{label:<48} {m:>10.3f} {unit:<5} {n:>10.3f} {unit:<5} {ratio:>7.2f}x')"; }
timeit() { local t0; t0=$(now); "$@" >/dev/null 2>&1; secs "$t0" "$(now)"; }

start
"$bin/mesa-client" create-repo bench >/dev/null
repo=$mnt/local/bench
until [[ -d $repo ]]; do sleep 0.05; done
native=$work/native

echo "mount benchmark ($(nproc) cores, $(uname -r)), files=$files"
printf '%-48s %16s %16s %8s\n' operation mount native ratio

# Sequential write and read of 1 GiB (throughput ratio: higher is better for the mount).
wm=$(timeit dd if=/dev/zero of="$repo/big" bs=1M count=1024 conv=fsync)
wn=$(timeit dd if=/dev/zero of="$native/big" bs=1M count=1024 conv=fsync)
row "sequential write 1 GiB + fsync (MB/s)" "$(python3 -c "print(1024/$wm)")" "$(python3 -c "print(1024/$wn)")" MB/s
cat "$repo/big" >/dev/null; cat "$native/big" >/dev/null
rm_=$(timeit cat "$repo/big"); rn=$(timeit cat "$native/big")
row "sequential read 1 GiB, warm (MB/s)" "$(python3 -c "print(1024/$rm_)")" "$(python3 -c "print(1024/$rn)")" MB/s
rm -f "$repo/big" "$native/big"

# Metadata: create, stat and unlink 10,000 files.
for op in create stat unlink; do
    m=$(meta "$repo" $op); n=$(meta "$native" $op)
    row "$op 10,000 files (s)" "$m" "$n" s
done

# A repo of $files files in 100 directories, written through the mount and uploaded.
populate() { python3 - "$1" "$files" <<'PY'
import os, sys
root, count = sys.argv[1], int(sys.argv[2])
for d in range(100):
    os.makedirs(f"{root}/tree/d{d:03d}", exist_ok=True)
for i in range(count):
    with open(f"{root}/tree/d{i % 100:03d}/f{i:06d}.txt", "w") as f:
        f.write(f"file {i}\n")
PY
}
pm=$(timeit populate "$repo"); pn=$(timeit populate "$native")
row "write a $files-file tree (s)" "$pm" "$pn" s
t0=$(now); "$bin/mesa-client" checkpoint --mount local/bench -m tree >/dev/null; upload=$(secs "$t0" "$(now)")
echo "  (checkpoint uploading the $files-file tree: ${upload} s)"

stop; start
until [[ -d $repo ]]; do sleep 0.05; done
for attempt in cold warm; do
    m=$(timeit ls -lR "$repo/tree"); n=$(timeit ls -lR "$native/tree")
    row "ls -lR over $files files, $attempt (s)" "$m" "$n" s
done
m=$(timeit find "$repo/tree" -name '*.txt'); n=$(timeit find "$native/tree" -name '*.txt')
row "find over $files files, warm (s)" "$m" "$n" s
walk() { python3 -c "
import os, sys
n = 0
for d, _, fs in os.walk(sys.argv[1]):
    for f in fs: os.lstat(os.path.join(d, f)); n += 1
" "$1"; }
m=$(timeit walk "$repo/tree"); n=$(timeit walk "$native/tree")
row "git-status-like lstat walk, warm (s)" "$m" "$n" s
rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
echo "  mesad peak RSS after listing $files files: $((rss / 1024)) MiB (goal <= 150 MiB)"

# Time to first read: a fresh daemon mounts and reads one file, vs git clone + read.
stop
rm -rf "$HOME/.local/share/mesa/cache"
t0=$(now); start; cat "$repo/tree/d042/f000042.txt" >/dev/null; first=$(secs "$t0" "$(now)")
gitdir=$(ls -d "$HOME"/.local/share/mesa/store/repos/*.git)
t0=$(now); git clone -q "$gitdir" "$work/clone"; cat "$work/clone/tree/d042/f000042.txt" >/dev/null; clone=$(secs "$t0" "$(now)")
row "time to first read: start+mount+read vs git clone (s)" "$first" "$clone" s
stop
