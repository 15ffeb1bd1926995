#!/usr/bin/env bash
# JSON benchmark: decode and encode of three typical JSON-RPC frames (small request,
# 1,000-entry listing, 1 MiB base64 body) with the project's parser, Foundation and
# libjansson (dlopen'ed when libjansson.so.4 is installed). Release build.
# Arguments go to json-bench (e.g. --samples 41 --sample-ms 50 --only listing).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --static-swift-stdlib --product json-bench >/dev/null
"$(swift build -c release --static-swift-stdlib --show-bin-path)/json-bench" "$@"
