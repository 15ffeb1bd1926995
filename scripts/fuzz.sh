#!/usr/bin/env bash
# Fuzzes what a hostile peer controls (LSP frames, JSON-RPC messages, JSON into params,
# names and paths) with libFuzzer for FUZZ_SECONDS (default 60). A crash, a sanitizer
# report or a broken invariant exits non-zero; the input is left in .build/fuzz/findings
# (copy it into fuzz/corpus: every test run replays that folder).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
# libFuzzer without its main(): mesa-fuzz's own main calls LLVMFuzzerRunDriver, because
# SwiftPM gives every executable its own entry point.
toolchain=$(dirname "$(dirname "$(readlink -f "$(command -v swiftc)")")")
runtime=$(ls "$toolchain"/lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-"$(uname -m)".a | head -1)
swift build -c release --product mesa-fuzz --build-path .build/fuzz \
    -Xswiftc -DFUZZING -Xswiftc -sanitize=address \
    -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp \
    -Xlinker "$runtime" -Xlinker -lstdc++ 2>&1 | grep -E "error|warning: unre|Compiling mesa_fuzz|Build complete" || true
binary=.build/fuzz/release/mesa-fuzz
[[ -x $binary ]] || { echo "fuzz: the libFuzzer build failed" >&2; exit 1; }
corpus=.build/fuzz/corpus
mkdir -p "$corpus" .build/fuzz/findings
# New inputs go to the first folder (kept between runs under .build); the seeds stay read-only.
"$binary" "$corpus" fuzz/corpus -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix=.build/fuzz/findings/ -print_final_stats=1 2>&1 | grep -E "^#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss|ERROR|SUMMARY|==[0-9]+==|Fatal error|Test unit written" || true
status=${PIPESTATUS[0]}
findings=$(ls .build/fuzz/findings | wc -l)
echo "fuzz: ${seconds}s, corpus $(ls "$corpus" fuzz/corpus | wc -l) inputs, findings ${findings}"
exit "$status"
