#!/usr/bin/env bash
# Upstream import benchmark (issue 13): a pull sync of a generated repository of COMMITS
# commits / 2×COMMITS files served by `git daemon`, beside `git clone --mirror` from the
# same daemon; then a push sync of 100 new changes beside `git push` of 100 commits (both
# to a bare repository by file://). Median of RUNS runs each; release build; loopback
# only; every process is stopped by its pid at the end.
# Usage: bash bench/import.sh [COMMITS=10000] [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
commits=${1:-10000}
runs=${2:-3}
source bench/lib.sh
release mesa-server

work=$(mktemp -d /var/tmp/mesa-import-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export GIT_CONFIG_NOSYSTEM=1 HOME=$work/home GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com \
    GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
mkdir -p "$HOME" "$work/served"

# The upstream: COMMITS commits on main, each adding two files and editing a shared one,
# written with git fast-import, then repacked as a server would have it.
up=$work/served/up.git
git init -q --bare -b main "$up"
python3 - "$commits" <<'PY' | git -C "$up" fast-import --quiet
import sys
commits = int(sys.argv[1])
out = sys.stdout.buffer
for i in range(commits):
    out.write(b"commit refs/heads/main\n")
    out.write(b"committer bench <bench@example.com> %d +0000\n" % (1700000000 + i))
    msg = b"commit %d\n" % i
    out.write(b"data %d\n%s" % (len(msg), msg))
    for name, body in ((b"src/d%03d/a%05d.txt" % (i % 500, i), b"a %d\n" % i),
                       (b"docs/d%03d/b%05d.md" % (i % 500, i), b"# b %d\n" % i),
                       (b"CHANGELOG", b"last change %d\n" % i)):
        out.write(b"M 100644 inline %s\ndata %d\n%s\n" % (name, len(body), body))
PY
git -C "$up" repack -adq
files=$(git -C "$up" ls-tree -r main | wc -l)
echo "upstream: $(git -C "$up" rev-list --count main) commits, $files files, pack $(du -sh "$up/objects/pack" | cut -f1)"

dport=$(port)
git daemon --reuseaddr --export-all --listen=127.0.0.1 --port="$dport" --base-path="$work/served" "$work/served" \
    >"$work/daemon.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do git ls-remote "git://127.0.0.1:$dport/up.git" >/dev/null 2>&1 && break; sleep 0.05; done
url=git://127.0.0.1:$dport/up.git

key=$("$bin/mesa-server" init --org bench --data "$work/data" 2>/dev/null)
sport=$(port)
"$bin/mesa-server" serve --listen "127.0.0.1:$sport" --data "$work/data" >"$work/server.log" 2>&1 &
pids+=($!)
api=http://127.0.0.1:$sport/v1
for _ in $(seq 200); do curl -s -o /dev/null "$api/whoami" && break; sleep 0.05; done

# rest METHOD PATH [BODY]: one call, JSON out.
rest() { curl -sf -X "$1" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' ${3:+-d "$3"} "$api$2"; }
# sync REPO DIRECTION: seconds from POST to completed (polled every 20 ms).
sync_time() {
    local start id status
    start=$(now)
    id=$(rest POST "/bench/$1/upstream/syncs" "{\"direction\":\"$2\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    while :; do
        status=$(rest GET "/bench/$1/upstream/syncs/$id" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["status"], s["error"] or "")')
        case $status in completed*) break ;; failed*) echo "sync failed: $status" >&2; exit 1 ;; esac
        sleep 0.02
    done
    secs "$start" "$(now)"
}
median() { python3 -c 'import sys, statistics; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.3f}")' "$@"; }

pulls=() clones=()
for run in $(seq "$runs"); do
    rest POST /bench/repos "{\"name\":\"m$run\",\"upstream\":{\"url\":\"$url\"}}" >/dev/null
    pulls+=("$(sync_time "m$run" pull)")
    start=$(now)
    git clone -q --mirror "$url" "$work/mirror$run.git"
    clones+=("$(secs "$start" "$(now)")")
done
pull=$(median "${pulls[@]}")
clone=$(median "${clones[@]}")
head=$(git -C "$up" rev-parse main)
got=$(rest GET /bench/m1/bookmarks/main | python3 -c 'import json,sys; print(json.load(sys.stdin)["change_id"])')
changes=$(rest GET "/bench/m1/changes?limit=1" >/dev/null && echo ok)
echo "pull sync of $commits commits / $files files: ${pull}s (runs: ${pulls[*]}); main -> change $got $changes"
echo "git clone --mirror:                        ${clone}s (runs: ${clones[*]})"
echo "ratio pull / clone: $(python3 -c "print(f'{$pull / $clone:.2f}')")x (target <= 1.5x); upstream main $head"

# Push: 100 new changes on main of m1 to a bare copy, beside git push of 100 commits.
git clone -q --bare "$up" "$work/push-mesa.git"
git clone -q --bare "$up" "$work/push-git.git"
rest PATCH /bench/m1 "{\"upstream\":{\"url\":\"file://$work/push-mesa.git\"}}" >/dev/null
python3 - "$api" "$key" <<'PY'
import base64, json, sys, urllib.request
api, key = sys.argv[1], sys.argv[2]
def call(method, path, body=None):
    req = urllib.request.Request(api + path, json.dumps(body).encode() if body is not None else None, method=method,
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)
base = call("GET", "/bench/m1/bookmarks/main")["change_id"]
for i in range(100):
    content = base64.b64encode(b"agent change %d\n" % i).decode()
    base = call("POST", "/bench/m1/changes", {"base_change_id": base, "message": f"agent change {i}",
                                             "files": [{"path": f"agent/f{i:03d}.txt", "content": content}]})["id"]
call("PATCH", "/bench/m1/bookmarks/main", {"change_id": base})
PY
push=$(sync_time m1 push)
git clone -q "$work/push-git.git" "$work/push-work"
for i in $(seq 100); do
    echo "agent change $i" >"$work/push-work/agent-$i.txt"
    git -C "$work/push-work" add -A
    git -C "$work/push-work" commit -qm "agent change $i"
done
start=$(now)
git -C "$work/push-work" push -q origin main
gitpush=$(secs "$start" "$(now)")
pushed=$(git -C "$work/push-mesa.git" rev-list --count main)
echo "push sync of 100 changes: ${push}s; git push of 100 commits: ${gitpush}s; upstream main now has $pushed commits"
