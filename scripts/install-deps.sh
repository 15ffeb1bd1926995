#!/usr/bin/env bash
# Installs the system packages mesad needs to build, test and mount (Debian 12, as root).
# Skips apt entirely when everything is already there.
set -euo pipefail
# debootstrap, binutils (readelf, strip) and curl: packaging and the install tests.
# nginx-light + fcgiwrap (+ git's http-backend, openssl for the htpasswd hash): the git
# smart-HTTP server the upstream sync tests run on loopback; hyperfine: bench/import.sh.
packages=(libfuse3-dev fuse3 libgit2-dev libcurl4-openssl-dev libsqlite3-dev libssl-dev pkg-config git ca-certificates rsync
          debootstrap binutils curl nginx-light fcgiwrap openssl hyperfine)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# tests/python: python3 with venv and ensurepip (scripts/test.sh installs its PyPI
# packages into a venv). Debian's python3 needs python3-venv for that.
if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "installing: python3 python3-venv" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
fi
command -v swift >/dev/null || { echo "swift 6.x is not on PATH (expected at /opt/swift/usr/bin)" >&2; exit 1; }
