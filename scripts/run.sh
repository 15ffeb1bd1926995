#!/usr/bin/env bash
# The main job: install what is missing, build, put mesa/mesad/mesa-client on PATH,
# start mesad on the embedded store and mount a repository. Prints where it is.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release --static-swift-stdlib
bin=$(swift build -c release --static-swift-stdlib --show-bin-path)
install -m 0755 "$bin/mesad" "$bin/mesa" "$bin/mesa-client" /usr/local/bin/
[ -x "$bin/mesa-server" ] && install -m 0755 "$bin/mesa-server" /usr/local/bin/

mesa mount -d -y
repo=${MESA_DEMO_REPO:-workspace}
if ! mesa-client get-repo "$repo" >/dev/null 2>&1; then
    mesa-client create-repo "$repo"
fi
org=$(mesa-client whoami --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["org"]["slug"])')
path="${MESA_MOUNT_POINT:-$HOME/.local/share/mesa/mnt}/$org/$repo"
ls "$path" >/dev/null
echo "mounted: $path"
echo "  cd $path   # edit files; 'mesa checkpoint -m msg' saves a change, 'mesa log' lists them"
echo "  mesa unmount; mesa-client shutdown   # stop"
