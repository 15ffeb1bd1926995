#!/usr/bin/env bash
# The sandbox guide on a bare Debian 12: a minimal root filesystem from debootstrap (no
# Swift anywhere in it; cached under .build/debootstrap), /dev/fuse and /proc bound in,
# mesa installed with `install.sh --yes --from <bundle>` (mode bundle) or
# `apt-get install ./mesa_….deb` (mode deb), then inside the chroot
#   MESA_ORGS=acme:$KEY MESA_API_URL=… mesa mount -d -y; cd …/acme/agent-workspace; write
# against a mesa-server running outside it on loopback, and the server has the files.
# Prints the time from the install's start to the mounted repo. Needs root and /dev/fuse.
# Usage: bash tests/install/chroot.sh bundle|deb [BUNDLE_OR_DEB]
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/install/lib.sh
repo_root=$(pwd)

mode=${1:-bundle}
case $mode in
    bundle) artifact=${2:-$(newest_bundle)} ;;
    deb) artifact=${2:-$(newest_deb)} ;;
    *) echo "usage: $0 bundle|deb [FILE]" >&2; exit 2 ;;
esac
[[ -f $artifact ]] || { echo "no $mode in dist/: run bash scripts/package.sh first" >&2; exit 1; }
bundle=$(newest_bundle)   # the host side runs mesa-server from it
[[ -c /dev/fuse ]] || { echo "chroot.sh: needs /dev/fuse" >&2; exit 1; }

cache=.build/debootstrap
rootfs_tar=$cache/bookworm-minbase.tar
mkdir -p "$cache/apt-archives/partial"
if [[ ! -f $rootfs_tar ]]; then
    echo "== debootstrap bookworm (once; cached in $rootfs_tar)"
    tmp=$(mktemp -d "$cache/bootstrap.XXXXXX")
    debootstrap --variant=minbase bookworm "$tmp/root" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 ||
        { tail -20 "$cache/debootstrap.log" >&2; rm -rf --one-file-system "$tmp"; exit 1; }
    tar -C "$tmp/root" -cf "$rootfs_tar.part" . && mv "$rootfs_tar.part" "$rootfs_tar"
    rm -rf --one-file-system "$tmp"
fi

T=$(mktemp -d "$repo_root/$cache/run.XXXXXX")
root=$T/root
server_pid=

mounts_under() { awk -v r="$1" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r; }
cleanup() {
    local status=$?
    set +e
    if ((status == 0)) && [[ -x $root/usr/local/bin/mesa || -x $root/usr/bin/mesa ]]; then
        timeout 15 chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin sh -c \
            'mesa unmount >/dev/null 2>&1; mesa-client shutdown >/dev/null 2>&1' </dev/null
    fi
    # Whatever still runs inside the chroot was started by this test: stop it by pid.
    for proc in /proc/[0-9]*; do
        [[ $(readlink "$proc/root" 2>/dev/null) == "$root" ]] && kill -9 "${proc#/proc/}" 2>/dev/null
    done
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    for m in $(mounts_under "$root"); do umount -l "$m" || fusermount3 -u -z "$m"; done
    if [[ -z $(mounts_under "$root") ]]; then rm -rf --one-file-system "$T"; else echo "left mounts under $root" >&2; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== fresh root filesystem"
mkdir "$root"
tar -C "$root" -xf "$rootfs_tar"
chroot "$root" sh -c '! command -v swift && ! ls /usr/lib/swift /usr/lib/x86_64-linux-gnu/libswiftCore.so 2>/dev/null' >/dev/null ||
    { echo "FAIL: the root filesystem has Swift in it" >&2; exit 1; }
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
touch "$root/dev/fuse" && mount --bind /dev/fuse "$root/dev/fuse"
# Downloaded .debs survive between runs (apt's lists come with the cached root filesystem).
mount --bind "$cache/apt-archives" "$root/var/cache/apt/archives"
mkdir "$root/tmp/dist"
cp "$artifact" "$root/tmp/dist/"
[[ $mode == bundle ]] && cp "$artifact.sha256" install.sh "$root/tmp/dist/"

echo "== mesa-server outside the chroot, a repo and a scoped short-lived key"
mkdir "$T/host"
tar -xzf "$bundle" -C "$T/host" --strip-components=1
server=$T/host/bin/mesa-server
admin=$("$server" init --org acme --data "$T/server-data")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$server" serve --listen "127.0.0.1:$port" --data "$T/server-data" >"$T/server.log" 2>&1 &
server_pid=$!
api=http://127.0.0.1:$port/v1
rest() { curl -fsS --max-time 10 -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' "$@"; }
for _ in $(seq 100); do rest "$api/whoami" >/dev/null 2>&1 && break; sleep 0.1; done
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
repo_id=$(rest -X POST "$api/acme/repos" -d '{"name":"agent-workspace"}' | json '["id"]')
key=$(rest -X POST "$api/acme/api-keys" \
    -d "{\"name\":\"sandbox-session\",\"scopes\":[\"read\",\"write\"],\"expires_in_seconds\":3600,\"repo_ids\":[\"$repo_id\"]}" | json '["key"]')

echo "== inside the chroot: install ($mode), mount, write, checkpoint"
if [[ $mode == bundle ]]; then
    install_cmd="sh -s -- --yes --from /tmp/dist/$(basename "$artifact") </tmp/dist/install.sh"
else
    install_cmd="apt-get install -y -qq --no-install-recommends /tmp/dist/$(basename "$artifact") >/tmp/apt.log 2>&1 || { cat /tmp/apt.log; exit 1; }"
fi
# In the background and waited for, so a signal runs the cleanup at once instead of after
# the step (which could be blocked on a mount that no longer answers).
# shellcheck disable=SC2016  # expanded inside the chroot
timeout 300 chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    TERM=dumb KEY="$key" API="$api" MODE="$mode" sh -c '
    set -eu
    start=$(date +%s%N)
    '"$install_cmd"'
    installed=$(date +%s%N)
    MESA_ORGS="acme:$KEY" MESA_API_URL="$API" mesa mount -d -y
    repo=$HOME/.local/share/mesa/mnt/acme/agent-workspace
    i=0; until [ -d "$repo" ]; do i=$((i + 1)); [ $i -lt 100 ] || { echo "no $repo" >&2; exit 1; }; sleep 0.1; done
    end=$(date +%s%N)
    echo "install ($MODE) + mount: $(( (end - start) / 1000000 )) ms (install $(( (installed - start) / 1000000 )) ms, mount $(( (end - installed) / 1000000 )) ms)"
    for b in mesa mesad mesa-client mesa-server; do command -v "$b" >/dev/null || { echo "no $b on PATH" >&2; exit 1; }; done
    # One executable (mesa); the daemon above ran through the mesad link to it.
    for b in mesad mesa-client mesa-server; do
        [ "$(readlink "$(command -v "$b")")" = mesa ] || { echo "$b is not a link to mesa" >&2; exit 1; }
    done
    [ -f /usr/share/man/man1/mesa.1.gz ] || [ -f /usr/local/share/man/man1/mesa.1.gz ]
    if [ "$MODE" = deb ]; then
        [ -f /lib/systemd/system/mesa-server.service ] && [ -f /usr/lib/systemd/user/mesad.service ]
    fi
    cd "$repo"
    printf "hello from a bare Debian\n" > hello.txt
    mkdir -p src && printf "print(1)\n" > src/app.py
    mesa checkpoint -m "written in the chroot" >/dev/null
    mesa log | head -n 3
' </dev/null &
wait $!

echo "== outside: the server has the files"
get() { rest -H 'Accept: application/octet-stream' "$api/acme/agent-workspace/content?path=$1"; }
[[ $(get hello.txt) == "hello from a bare Debian" ]] || { echo "FAIL: hello.txt on the server: $(get hello.txt)" >&2; exit 1; }
[[ $(get src/app.py) == "print(1)" ]] || { echo "FAIL: src/app.py on the server" >&2; exit 1; }
echo "chroot ($mode): passed"
