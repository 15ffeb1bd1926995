#!/usr/bin/env bash
# An agent's day (issue 10, part 4): the same sequence of work in a native directory and in
# a mesad mount on the same disk, one after the other, with per-phase times, mount/native
# ratios, the total ratio, mesad's peak RSS and the targets printed beside the figures.
#
# Phases: untar a real source tree (/usr/include + a part of the binutils 2.40 sources, ≥ 8,000
# files, ≥ 100 MB), git init/add/commit, configure + make of libiberty (real C code, gcc),
# grep -r over everything with cold caches, git status, 100 small edits, git commit -a,
# rm -rf of the build directory and of the whole tree. Then the microbenchmarks: create and
# unlink 10,000 files, warm sequential read of 1 GiB.
#
# Needs root (drop_caches, /dev/fuse), gcc, make, git, python3. The first run builds the
# tarball once under .build/agent-day/ (needs `apt-get download binutils-source`); later
# runs reuse it. Stops everything it started by pid; lazy unmount on every path.
#
# Usage: bash bench/agent-day.sh [--rounds N] [--checkpoint] [--no-build]
#   --rounds N    run the day (native, then mount) and the microbenchmarks N times (default
#                 1) and print medians: on a shared machine one native figure can be off
#                 by 10x (another job's disk traffic).
#   --checkpoint  also time `mesa-client checkpoint` of the freshly untarred tree (its
#                 upload), printed separately and not part of the total. Without it the
#                 upload happens in the background during the next phases, as it would for
#                 an agent that never checkpoints.
#   --no-build    use the release binaries already built (SwiftPM's build lock is shared by
#                 every checkout built at the same path, so `swift build` may wait long).
#   --floor       also run the day in a fuse-overlayfs mount on the same disk (Debian's
#                 fuse-overlayfs: a mature C passthrough on low-level libfuse3, no upload, no
#                 journal) and print its ratios beside the mount's: what any FUSE filesystem
#                 costs on this machine. FLOOR_OPTS adds its -o options (default
#                 writeback=0, as mesad; FLOOR_OPTS=writeback=1 shows the writeback cache).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
checkpoint=0 build=1 rounds=1 floor=0
while (( $# )); do
    arg=$1; shift
    case $arg in
        --rounds) rounds=${1:-}; shift || true
            [[ $rounds =~ ^[1-9][0-9]?$ ]] || { echo "agent-day.sh: --rounds takes a number from 1 to 99" >&2; exit 2; } ;;
        --checkpoint) checkpoint=1 ;;
        --no-build) build=0 ;;
        --floor) floor=1 ;;
        -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; exit 0 ;;
        *) echo "agent-day.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
    esac
done
[[ $(id -u) == 0 ]] || { echo "agent-day.sh: needs root (drop_caches, FUSE mount)" >&2; exit 2; }
tools=(gcc make git python3 tar); (( floor )) && tools+=(fuse-overlayfs)
for tool in "${tools[@]}"; do
    command -v $tool >/dev/null || { echo "agent-day.sh: needs $tool" >&2; exit 2; }
done

if (( build )); then
    swift build -c release --static-swift-stdlib --product mesad >/dev/null
    swift build -c release --static-swift-stdlib --product mesa-client >/dev/null
fi
bin=$PWD/.build/release
[[ -x $bin/mesad && -x $bin/mesa-client ]] || { echo "agent-day.sh: no release build in $bin" >&2; exit 2; }

# --- The tree, built once and cached (uncompressed, so untar measures the filesystem). ---
cache=$PWD/.build/agent-day
tarball=$cache/tree.tar
edits=$cache/edits.txt
if [[ ! -s $tarball || ! -s $edits ]]; then
    echo "building $tarball (once)..."
    rm -rf "$cache/stage" && mkdir -p "$cache/stage/tree"
    deb=$(compgen -G "$cache/binutils-source_*.deb" | sed -n 1p || true)
    if [[ -z $deb ]]; then
        (cd "$cache" && apt-get download binutils-source >/dev/null 2>&1) ||
            { echo "agent-day.sh: 'apt-get download binutils-source' failed (run apt-get update?)" >&2; exit 1; }
        deb=$(compgen -G "$cache/binutils-source_*.deb" | sed -n 1p)
    fi
    dpkg-deb -x "$deb" "$cache/stage/deb"
    src=$(compgen -G "$cache/stage/deb/usr/src/binutils/binutils-*.tar.xz" | sed -n 1p)
    top=$(basename "$src" .tar.xz)   # binutils-2.40
    # libiberty builds alone (configure + make, ~90 C files); it needs ../include and the
    # config/ helpers beside it.
    tar -C "$cache/stage/tree" -xJf "$src" "$top/libiberty" "$top/include" "$top/zlib" \
        "$top/config" "$top/config.guess" "$top/config.sub" "$top/install-sh" "$top/ltmain.sh" \
        "$top/missing" "$top/mkinstalldirs" "$top/move-if-change" "$top/COPYING"
    mv "$cache/stage/tree/$top" "$cache/stage/tree/src"
    cp -a /usr/include "$cache/stage/tree/usr-include"
    # The 100 files the edit phase touches: every n-th header, the same list on both sides.
    (cd "$cache/stage" && find tree/usr-include -type f -name '*.h' | sort |
        awk 'NR % 50 == 0 && n++ < 100') > "$edits.tmp"
    [[ $(wc -l < "$edits.tmp") == 100 ]] || { echo "agent-day.sh: fewer than 100 headers to edit" >&2; exit 1; }
    tar -C "$cache/stage" -cf "$tarball.tmp" tree
    mv "$edits.tmp" "$edits"; mv "$tarball.tmp" "$tarball"
    rm -rf "$cache/stage"
fi
nfiles=$(tar -tvf "$tarball" | grep -c '^-')
mbytes=$(( $(stat -c %s "$tarball") / 1000000 ))

# --- Daemon and work folders (same disk: /var/tmp). ---
work=$(mktemp -d /var/tmp/mesa-agent-day.XXXXXX)
export HOME=$work/home MESA_RUNTIME_DIR=$work/run MESA_NO_CONFIG_FILE=1
export GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=agent GIT_AUTHOR_EMAIL=agent@example.invalid \
       GIT_COMMITTER_NAME=agent GIT_COMMITTER_EMAIL=agent@example.invalid
mkdir -p "$HOME" "$work/native"
mnt=$HOME/.local/share/mesa/mnt
pid="" floorpid=""
cleanup() {
    cd /
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && sleep 1
    fusermount3 -u -z "$mnt" 2>/dev/null || true
    if [[ -n "$floorpid" ]]; then
        fusermount3 -u -z "$work/floor" 2>/dev/null || true
        kill "$floorpid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$bin/mesad" -d --mount >/dev/null
pid=$(cat "$MESA_RUNTIME_DIR/mesad.pid")
"$bin/mesa-client" create-repo bench >/dev/null
repo=$mnt/local/bench
for _ in $(seq 200); do [[ -d $repo ]] && break; sleep 0.05; done
[[ -d $repo ]] || { echo "agent-day.sh: $repo did not appear" >&2; exit 1; }

if (( floor )); then
    mkdir -p "$work"/floor{,-lower,-upper,-work}
    fuse-overlayfs -f -o "lowerdir=$work/floor-lower,upperdir=$work/floor-upper,workdir=$work/floor-work,${FLOOR_OPTS:-writeback=0}" \
        "$work/floor" >/dev/null 2>&1 &
    floorpid=$!
    for _ in $(seq 100); do mountpoint -q "$work/floor" && break; sleep 0.05; done
    mountpoint -q "$work/floor" || { echo "agent-day.sh: fuse-overlayfs did not mount" >&2; exit 1; }
fi

# mesad's CPU time (user + system, all threads) in seconds: beside the wall time it tells
# whether a slow phase waits on the daemon's CPU or on something else (disk, round trips).
cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$pid/stat"; }
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$pid/status"; }
cold() { sync; echo 3 > /proc/sys/vm/drop_caches; }
# Uploads still running in the background would be charged to whatever comes next: wait
# until the mount reports none pending (at most 10 minutes), then let the disk settle.
pending() { "$bin/mesa-client" status --mount local/bench |
    python3 -c "import json, sys; d = json.load(sys.stdin); d = d.get('mounts', d) if isinstance(d, dict) else d
print(sum(m['pendingUploads'] for m in (d if isinstance(d, list) else [d])))"; }
settle() {
    local t0 n; t0=$(now)
    sleep 1.5   # past the flusher's debounce, so a just-finished phase is queued
    for _ in $(seq 1200); do n=$(pending); [[ $n == 0 ]] && break; sleep 0.5; done
    [[ $n == 0 ]] || echo "  warning: $n uploads still pending after 10 minutes" >&2
    sync; sleep 1
    echo "$(secs "$t0" "$(now)")"
}
jobs=$(nproc)

declare -A T
# phase SIDE NAME CMD... : runs CMD (in the tree's parent folder), output discarded, at most
# 30 minutes; any failure stops the benchmark with the command's output.
phase() {
    local side=$1 name=$2; shift 2
    local t0 c0 out rc=0
    c0=$(cpu); t0=$(now)
    out=$(timeout 1800 bash -c "$*" 2>&1) || rc=$?
    T[$side,$name]+="$(secs "$t0" "$(now)") "
    T[$side,$name,cpu]+="$(secs "$c0" "$(cpu)") "
    if (( rc != 0 )); then
        echo "agent-day.sh: phase '$name' failed on $side (exit $rc):" >&2
        tail -20 <<<"$out" >&2
        exit 1
    fi
}

phases=(untar git-commit build grep-cold git-status edits git-commit-a rm-build rm-tree)
day() {
    local side=$1 root=$2
    cd "$root"
    cat "$tarball" >/dev/null   # the source tarball is warm for both sides
    phase "$side" untar "tar --no-same-owner -xf '$tarball'"
    if [[ $side == mount && $checkpoint == 1 ]]; then
        local t0; t0=$(now)
        "$bin/mesa-client" checkpoint --mount local/bench -m "untarred tree" >/dev/null
        T[mount,checkpoint]+="$(secs "$t0" "$(now)") "
    fi
    cd "$root/tree"
    phase "$side" git-commit "git init -q && git add -A && git commit -q -m import"
    phase "$side" build "mkdir build && cd build && ../src/libiberty/configure -q && make -j$jobs"
    cold
    phase "$side" grep-cold "grep -r -I -c EXIT_SUCCESS . >/dev/null"
    phase "$side" git-status "git status"
    # Half the edits append in place (shell >>), half rewrite the file (sed -i: temp + rename).
    phase "$side" edits "i=0; while read -r f; do i=\$((i+1))
        if ((i % 2)); then echo \"/* agent edit \$i */\" >> \"../\$f\"
        else sed -i \"1i /* agent edit \$i */\" \"../\$f\"; fi; done < '$edits'"
    phase "$side" git-commit-a "git commit -q -a -m edits"
    phase "$side" rm-build "rm -rf build && test ! -e build"
    cd "$root"
    phase "$side" rm-tree "rm -rf tree && test ! -e tree"
}

# Best of three warm reads of a 1 GiB file, in MB/s.
warmread() {
    local f=$1 best=0 t0 t
    cat "$f" >/dev/null
    for _ in 1 2 3; do
        t0=$(now); cat "$f" >/dev/null; t=$(secs "$t0" "$(now)")
        best=$(python3 -c "print(max($best, 1024 / $t))")
    done
    echo "$best"
}

echo "agent-day benchmark ($(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)); tree: $nfiles files, $mbytes MB; build: libiberty (binutils 2.40), make -j$jobs"
echo "native: $work/native   mount: $repo (mesad pid $pid)"

hwm0=""
for round in $(seq "$rounds"); do
    (( rounds > 1 )) && echo "round $round of $rounds..."
    day native "$work/native"
    sync
    [[ -n $hwm0 ]] || hwm0=$(kib VmHWM)
    day mount "$repo"
    T[mount,drain]+="$(settle) "
    if (( floor )); then day floor "$work/floor"; sync; fi
done
hwm_day=$(kib VmHWM)
rss_day=$(kib VmRSS)

for round in $(seq "$rounds"); do
    for op in create unlink; do
        T[native,$op]+="$(meta "$work/native" $op) "
        T[mount,$op]+="$(meta "$repo" $op) "
        (( floor )) && T[floor,$op]+="$(meta "$work/floor" $op) "
    done
done
dd if=/dev/urandom of="$work/native/big" bs=1M count=1024 status=none
cp "$work/native/big" "$repo/big"
settle >/dev/null
for round in $(seq "$rounds"); do
    T[native,read]+="$(warmread "$work/native/big") "
    T[mount,read]+="$(warmread "$repo/big") "
    if (( floor )); then
        cp "$work/native/big" "$work/floor/big"
        T[floor,read]+="$(warmread "$work/floor/big") "
        rm -f "$work/floor/big"
    fi
done
hwm_all=$(kib VmHWM)
rm -f "$repo/big" "$work/native/big"
settle >/dev/null
rss_end=$(kib VmRSS)

python3 - "$(declare -p T)" "${phases[*]}" "$rounds" \
    "$hwm0" "$hwm_day" "$rss_day" "$hwm_all" "$rss_end" <<'PY'
import re, statistics, sys
decl, phases, rounds = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])
hwm0, hwm_day, rss_day, hwm_all, rss_end = (int(x) / 1024 for x in sys.argv[4:9])
# Each entry holds one figure per round; the table shows medians (totals: the median of
# the per-round totals).
R = {k: [float(x) for x in v.split()] for k, v in re.findall(r'\[([^\]]+)\]="([^"]*)"', decl)}
T = {k: statistics.median(v) for k, v in R.items()}
if rounds > 1:
    print(f"\nmedians of {rounds} rounds")
def verdict(ok): return "ok" if ok else "MISSED"
# With --floor, fuse-overlayfs's figures and ratio (floor/native) sit beside the mount's:
# the part of a ratio any FUSE filesystem pays on this machine.
floor = "floor,untar" in T
def fl(key, n, fmt=">10.3f"):
    if not floor: return ""
    f = T[key]
    return f"   {f:{fmt}} {f / n:>7.2f}x"
head_floor = f"   {'floor s':>10} {'ratio':>8}" if floor else ""
print(f"\n{'phase':<14} {'mount s':>10} {'native s':>10} {'ratio':>8}   {'target':<15} {'mesad CPU s':>11}{head_floor}")
for p in phases:
    m, n = T[f"mount,{p}"], T[f"native,{p}"]
    limit = 3.0
    print(f"{p:<14} {m:>10.3f} {n:>10.3f} {m / n:>7.2f}x   {'<= %.1fx ' % limit + verdict(m / n <= limit):<15} {T[f'mount,{p},cpu']:>11.2f}{fl(f'floor,{p}', n)}")
def total(side): return statistics.median(sum(R[f"{side},{p}"][r] for p in phases) for r in range(rounds))
tm, tn = total("mount"), total("native")
cm = statistics.median(sum(R[f"mount,{p},cpu"][r] for p in phases) for r in range(rounds))
tf = f"   {total('floor'):>10.3f} {total('floor') / tn:>7.2f}x" if floor else ""
print(f"{'TOTAL':<14} {tm:>10.3f} {tn:>10.3f} {tm / tn:>7.2f}x   {'<= 1.5x ' + verdict(tm / tn <= 1.5):<15} {cm:>11.2f}{tf}")
print(f"\n{'microbenchmark':<24} {'mount':>10} {'native':>10} {'ratio':>8}   {'target':<15}{head_floor}")
for op in ("create", "unlink"):
    m, n = T[f"mount,{op}"], T[f"native,{op}"]
    print(f"{op + ' 10,000 files (s)':<24} {m:>10.3f} {n:>10.3f} {m / n:>7.2f}x   {'<= 3.0x ' + verdict(m / n <= 3):<15}{fl(f'floor,{op}', n)}")
rm, rn = T["mount,read"], T["native,read"]
print(f"{'warm read 1 GiB (MB/s)':<24} {rm:>10.0f} {rn:>10.0f} {rm / rn:>7.2f}x   {'>= 0.9x ' + verdict(rm / rn >= 0.9):<15}{fl('floor,read', rn, '>10.0f')}")
if "mount,checkpoint" in T:
    print(f"\ncheckpoint of the untarred tree (upload): {T['mount,checkpoint']:.3f} s (not in the total)")
print(f"uploads still pending after the mount's last phase drained in {T['mount,drain']:.1f} s (not in the total)")
print(f"\nmesad RSS (target <= 150 MiB during and after):")
print(f"  peak before the mount's day (idle daemon)    {hwm0:7.1f} MiB")
print(f"  peak during the agent's day (VmHWM)          {hwm_day:7.1f} MiB   {verdict(hwm_day <= 150)}")
print(f"  after the agent's day (VmRSS)                {rss_day:7.1f} MiB   {verdict(rss_day <= 150)}")
print(f"  peak incl. microbenchmarks (1 GiB file)      {hwm_all:7.1f} MiB   {verdict(hwm_all <= 150)}")
print(f"  at the end (VmRSS)                           {rss_end:7.1f} MiB   {verdict(rss_end <= 150)}")
PY
"$bin/mesa-client" shutdown >/dev/null || true
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null || pid=""
