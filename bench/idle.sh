#!/usr/bin/env bash
# Idle clients: opens N (default 10,000) Unix-socket connections to one mesad and holds
# them, then prints mesad's threads, descriptors and RSS, checks that a sample of the
# held clients is still answered, and that one more client past a configured
# `[daemon] max-connections` gets the refusal frame. Release build, temporary HOME,
# mesad stopped by its pid at the end.
# Usage: bash bench/idle.sh [N]        BASELINE=DIR: also an older build's mesad first.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
count=${1:-10000}
release mesad

work=$(mktemp -d /tmp/mesa-idle-bench.XXXXXX)
pid=""
trap 'stop_daemon; rm -rf "$work"' EXIT

# run DIR LABEL LIMIT: a fresh mesad from DIR with max-connections LIMIT, N clients.
run() {
    local dir=$1 label=$2 limit=$3 home="$work/$2"
    mkdir -p "$home/home/.config/mesa"
    printf '[daemon]\nmax-connections = %s\n' "$limit" > "$home/home/.config/mesa/config.toml"
    export HOME="$home/home" MESA_RUNTIME_DIR="$home/run" XDG_CONFIG_HOME="$home/home/.config"
    export XDG_DATA_HOME="$home/home/.local/share"
    unset XDG_RUNTIME_DIR MESA_ORGS MESA_ORG MESA_API_KEY MESA_API_URL MESA_NO_CONFIG_FILE
    "$dir/mesad" -d >/dev/null
    pid=$(cat "$MESA_RUNTIME_DIR/mesad.pid")
    echo "== $label: mesad pid $pid, max-connections $limit, $count idle clients"
    python3 - "$MESA_RUNTIME_DIR/mesad.sock" "$pid" "$count" <<'PY' || true
import json, os, resource, socket, sys, time

path, pid, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

def stats():
    status = open(f"/proc/{pid}/status").read().split("\n")
    field = lambda name: next(l.split()[1] for l in status if l.startswith(name + ":"))
    return int(field("Threads")), len(os.listdir(f"/proc/{pid}/fd")), int(field("VmRSS")) // 1024

def call(sock, ident):
    body = json.dumps({"jsonrpc": "2.0", "id": ident, "method": "listOrgs"}).encode()
    sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    header, rest = data.split(b"\r\n\r\n", 1)
    length = int(header.split(b":")[1])
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        rest += chunk
    return json.loads(rest[:length])

threads, fds, rss = stats()
print(f"before:        threads {threads:5}  fds {fds:6}  RSS {rss:5} MiB")
held, started = [], time.monotonic()
def connect():
    """Retries while the listen backlog is full (EAGAIN), for up to 10 s."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)  # a Unix socket's connect then fails with EAGAIN instead of waiting
    deadline = time.monotonic() + 10
    while True:
        try:
            s.connect(path)
            s.settimeout(30)
            return s
        except BlockingIOError:
            if time.monotonic() > deadline:
                s.close()
                raise
            time.sleep(0.001)

try:
    for i in range(count):
        held.append(connect())
except OSError as error:
    print(f"connect #{len(held) + 1} failed: {error}")
time.sleep(1)
threads, fds, rss = stats()
print(f"{len(held):5} held:    threads {threads:5}  fds {fds:6}  RSS {rss:5} MiB   ({time.monotonic() - started:.1f} s to connect)")
sample = held[:: max(1, len(held) // 100)]
answered = 0
for n, s in enumerate(sample):
    try:
        answer = call(s, n)
        answered += answer is not None and "result" in answer
    except OSError:
        pass
print(f"a sample of {len(sample)} held clients: {answered} answered")
try:
    extra = connect()
    answer = call(extra, "extra")
    print(f"one more client: {json.dumps(answer)[:160] if answer else 'closed without an answer'}")
except OSError as error:
    print(f"one more client: {error}")
PY
    stop_daemon
}

if [[ -n "${BASELINE:-}" ]]; then
    run "$BASELINE" baseline "$count"
fi
run "$bin" "$(git rev-parse --short HEAD 2>/dev/null || echo this-tree)" "$count"
