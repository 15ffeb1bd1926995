# shellcheck shell=bash
# Helpers the bench scripts share; sourced from the repository root
# (`cd "$(dirname "$0")/.."; source bench/lib.sh`). The caller sets $work.
# shellcheck disable=SC2154  # $work is the caller's

# release PRODUCT...: build the products as the bundle ships them (release, Swift runtime
# linked statically) and set $bin to their directory.
release() {
    local product
    for product in "$@"; do
        swift build -c release --static-swift-stdlib --product "$product" >/tmp/mesa-bench-build.log 2>&1 ||
            { cat /tmp/mesa-bench-build.log; exit 1; }
    done
    bin=$(swift build -c release --static-swift-stdlib --show-bin-path)
}

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }

# mount_home: a fresh HOME under $work for a mesad with the daemon tree mounted at $mnt;
# `trap mount_cleanup EXIT` stops it by its pid, unmounts lazily and removes $work.
mount_home() {
    export HOME=$work/home MESA_RUNTIME_DIR=$work/run MESA_NO_CONFIG_FILE=1
    mkdir -p "$HOME"
    mnt=$HOME/.local/share/mesa/mnt
    pid=""
}
mount_cleanup() {
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && sleep 1
    fusermount3 -u -z "$mnt" 2>/dev/null || true
    rm -rf "$work"
}
start() { "$bin/mesad" -d --mount >/dev/null; pid=$(cat "$MESA_RUNTIME_DIR/mesad.pid"); }
stop() { "$bin/mesa-client" shutdown >/dev/null; while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done; pid=""; }

# stop_daemon: TERM the mesad in $pid, KILL it after 10 s.
stop_daemon() {
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    pid=""
}

# meta DIR create|stat|unlink: seconds to do that to 10,000 files in DIR/meta.
meta() { python3 - "$1" "$2" <<'PY'
import os, sys, time
root, op = sys.argv[1], sys.argv[2]
os.makedirs(root + "/meta", exist_ok=True)
names = [f"{root}/meta/f{i:05d}" for i in range(10000)]
t = time.perf_counter()
if op == "create":
    for n in names:
        os.close(os.open(n, os.O_CREAT | os.O_WRONLY, 0o644))
elif op == "stat":
    for n in names: os.stat(n)
else:
    for n in names: os.unlink(n)
print(f"{time.perf_counter() - t:.4f}")
PY
}
