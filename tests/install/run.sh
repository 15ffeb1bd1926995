#!/usr/bin/env bash
# The install tests, as scripts/test.sh runs them: package the release bundle and .deb,
# then install.sh on this machine (bad input included), then the sandbox flow inside a bare
# Debian 12 chroot from the bundle and from the .deb.
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout --kill-after=30 1800 bash scripts/package.sh
timeout --kill-after=30 300 bash tests/install/installer.sh
timeout --kill-after=30 900 bash tests/install/chroot.sh bundle
timeout --kill-after=30 900 bash tests/install/chroot.sh deb
