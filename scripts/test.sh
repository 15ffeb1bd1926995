#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test with a time limit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build --build-tests
# A hung test must not block CI forever; the suite normally takes well under a minute.
timeout --kill-after=30 1500 swift test --skip-build
