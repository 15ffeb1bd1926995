#!/usr/bin/env bash
# Store vs git on the same machine, same run. Builds in release mode first.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --static-swift-stdlib --product store-bench >/dev/null
exec .build/release/store-bench "$@"
