#!/usr/bin/env bash
# mesa-server benchmark: throughput and latency (p50/p99, wrk) of `GET content` of a small
# file and of change creation, beside the same small file served statically by nginx and
# by `python3 -m http.server` in the same run; then the time to first read through a
# mesad mount over HTTP on loopback, on a repository of FILES files (goal <= 100 ms).
# Release build, loopback only; every process is stopped by its pid at the end.
# Usage: bash bench/server.sh [FILES=100000] [DURATION=10s] [CONNECTIONS=16]
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-100000}
duration=${2:-10s}
connections=${3:-16}
command -v wrk >/dev/null && command -v nginx >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light >/dev/null; }
for product in mesa-server mesad mesa-client; do
    swift build -c release --static-swift-stdlib --product "$product" >/tmp/mesa-bench-build.log 2>&1 || { cat /tmp/mesa-bench-build.log; exit 1; }
done
bin=$(swift build -c release --static-swift-stdlib --show-bin-path)

work=$(mktemp -d /var/tmp/mesa-server-bench.XXXXXX)
pids=()
mnt=$work/home/.local/share/mesa/mnt
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    [[ -f $work/run/mesad.pid ]] && kill -TERM "$(cat "$work/run/mesad.pid")" 2>/dev/null || true
    sleep 1
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    fusermount3 -u -z "$mnt" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done; echo "no answer from $1" >&2; exit 1; }

# mesa-server with a fresh store, an org and its admin key.
key=$("$bin/mesa-server" init --org bench --data "$work/data" 2>/dev/null)
sport=$(port)
"$bin/mesa-server" serve --listen "127.0.0.1:$sport" --data "$work/data" >"$work/server.log" 2>&1 &
pids+=($!)
api=http://127.0.0.1:$sport/v1
wait_http "$api/whoami"

# Populate: repo `bench` with small.txt and FILES files in 1,000 directories, written as
# chained changes of 10,000 files each; main is moved onto the last one. Repo `posts`
# takes the change-creation load, so it does not touch `bench` before the mount test.
python3 - "$api" "$key" "$files" <<'PY'
import base64, json, sys, urllib.request
api, key, files = sys.argv[1], sys.argv[2], int(sys.argv[3])
def call(method, path, body):
    req = urllib.request.Request(api + path, json.dumps(body).encode(), method=method,
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)
call("POST", "/bench/repos", {"name": "bench"})
call("POST", "/bench/repos", {"name": "posts"})  # the change-creation load goes here
base = "z" * 32
ops = [{"path": "small.txt", "content": base64.b64encode(b"hello, mesa\n" * 8).decode()}]
for i in range(files):
    ops.append({"path": f"tree/d{i % 1000:03d}/f{i:06d}.txt", "content": base64.b64encode(b"file %d\n" % i).decode()})
    if len(ops) == 10000 or i == files - 1:
        base = call("POST", "/bench/bench/changes", {"base_change_id": base, "message": "populate", "files": ops})["id"]
        ops = []
call("PATCH", "/bench/bench/bookmarks/main", {"change_id": base})
PY

# Static baselines: the same bytes as files on disk.
mkdir -p "$work/static"
chmod o+x "$work"  # nginx's workers (www-data) must reach the static directory
python3 -c "import sys; sys.stdout.buffer.write(b'hello, mesa\n' * 8)" >"$work/static/small.txt"
nport=$(port)
cat >"$work/nginx.conf" <<EOF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    server { listen 127.0.0.1:$nport; root $work/static; }
}
EOF
nginx -c "$work/nginx.conf" -g 'daemon off;' &
pids+=($!)
pport=$(port)
(cd "$work/static" && exec python3 -m http.server "$pport" --bind 127.0.0.1 >/dev/null 2>&1) &
pids+=($!)
wait_http "http://127.0.0.1:$nport/small.txt"
wait_http "http://127.0.0.1:$pport/small.txt"

# wrk, with its latency distribution: "req/s p50 p99" (latencies in ms).
cat >"$work/wrk-summary.py" <<'PY'
import re, sys
text = sys.stdin.read()
unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
lat = {p: float(v) * unit[u] for p, v, u in re.findall(r"\s(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)", text)}
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(f"{rps:.0f} {lat['50']:.3f} {lat['99']:.3f} {errors.group(1) if errors else 0}")
PY
measure() { wrk -t2 -c"$connections" -d"$duration" --latency "$@" 2>&1 | python3 "$work/wrk-summary.py"; }
row() { printf '%-44s %10s %9s %9s %8s\n' "$@"; }
auth=(-H "Authorization: Bearer $key")
echo "mesa-server benchmark ($(nproc) cores, wrk -t2 -c$connections -d$duration, $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
row "request" "req/s" "p50 ms" "p99 ms" "non-2xx"
row "static small.txt: nginx" $(measure "http://127.0.0.1:$nport/small.txt")
row "static small.txt: python3 -m http.server" $(measure "http://127.0.0.1:$pport/small.txt")
row "GET content small.txt (JSON, base64)" $(measure "${auth[@]}" "$api/bench/bench/content?path=small.txt")
row "GET content small.txt (octet-stream)" $(measure "${auth[@]}" -H "Accept: application/octet-stream" "$api/bench/bench/content?path=small.txt")
cat >"$work/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"base_change_id":"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz","message":"bench","files":[{"path":"small.txt","content":"aGVsbG8K"}]}'
EOF
row "POST changes (1 small file each)" $(measure "${auth[@]}" -s "$work/post.lua" "$api/bench/posts/changes")

# Time to first read through a mount over HTTP: a fresh mesad with an empty cache starts,
# mounts the tree and reads one file of the FILES-file repo; 5 runs, median. Beside it,
# one curl of the same file's raw bytes (a client that already knows where it is).
export HOME=$work/home MESA_RUNTIME_DIR=$work/run MESA_NO_CONFIG_FILE=1 MESA_API_URL=$api MESA_ORGS=bench:$key
unset XDG_RUNTIME_DIR XDG_CONFIG_HOME XDG_DATA_HOME MESA_ORG MESA_API_KEY
ms_since() { python3 -c "print(f'{($(date +%s%N) - $1) / 1e6:.1f}')"; }
firsts=()
for run in 1 2 3 4 5; do
    rm -rf "$HOME"; mkdir -p "$HOME"
    t0=$(date +%s%N)
    "$bin/mesad" -d --mount >/dev/null
    cat "$mnt/bench/bench/tree/d042/f000042.txt" >/dev/null
    firsts+=("$(ms_since "$t0")")
    "$bin/mesa-client" shutdown >/dev/null
    while [[ -f $work/run/mesad.pid ]] && kill -0 "$(cat "$work/run/mesad.pid")" 2>/dev/null; do sleep 0.05; done
done
t0=$(date +%s%N)
curl -s "${auth[@]}" -H "Accept: application/octet-stream" "$api/bench/bench/content?path=tree/d042/f000042.txt" >/dev/null
curl_ms=$(ms_since "$t0")
python3 -c "
import statistics
runs = [float(x) for x in '${firsts[*]}'.split()]
print(f'time to first read over HTTP, $files files: start+mount+read median {statistics.median(runs):.0f} ms (runs: {\", \".join(f\"{r:.0f}\" for r in runs)}; goal <= 100 ms); one curl of the file: $curl_ms ms')"
