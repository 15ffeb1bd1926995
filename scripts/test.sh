#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test with a time limit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# --build-tests also builds mesad, mesa-client and mesa: DaemonTests runs them as processes.
swift build --build-tests
# A hung test must not block CI forever; the suite normally takes well under a minute.
# Groups run in processes of their own: RPCTests, DaemonTests' SocketServerTests (each
# alone: their handlers and in-process daemon run on Swift's
# cooperative pool, which on a 2-core machine is two threads that the store's fsyncing
# tests and process-spawning suites of the same process can hold for seconds at a time),
# the end-to-end suite (real daemons and mounts, serialized), and the kill -9 test.
timeout --kill-after=30 1500 swift test --skip-build --skip "MountCrashTests|KillLoopTests|E2ETests|RPCTests|SocketServerTests"
timeout --kill-after=30 600 swift test --skip-build --filter RPCTests
timeout --kill-after=30 600 swift test --skip-build --filter SocketServerTests
timeout --kill-after=30 900 swift test --skip-build --filter E2ETests
# kill -9 of mesad under a writer: run alone, so dozens of parallel mounts and daemons
# from the rest of the suite do not share the machine with it.
timeout --kill-after=30 900 swift test --skip-build --filter "MountCrashTests|KillLoopTests"

# An independently written JSON-RPC client from PyPI (python-lsp-jsonrpc) against
# `mesad --stdio`. Its packages go into a venv under .build, so a system Python that
# refuses global installs (PEP 668) works as well as any other.
venv=.build/test-venv
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r requirements-test.txt
status=0
MESAD_BIN="$(swift build --show-bin-path)/mesad" timeout --kill-after=30 600 "$venv/bin/python" -m pytest -q tests/python || status=$?
if ((status == 5)); then
    echo "tests/python: pytest collected no tests; that is a failure here" >&2
    exit 1
fi
((status == 0)) || exit "$status"

# libFuzzer over frames, JSON and names for a bounded time (FUZZ_SECONDS, default 60);
# the corpus in fuzz/corpus is also replayed by DaemonTests on every run.
timeout --kill-after=30 1200 bash scripts/fuzz.sh

# Installing without a toolchain: the release bundle and .deb, install.sh's bad input, and
# the sandbox flow inside a bare Debian 12 chroot (debootstrap, cached under .build).
bash tests/install/run.sh
