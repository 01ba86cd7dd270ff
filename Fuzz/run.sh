#!/usr/bin/env bash
# Fuzzes the HTTP parser with libFuzzer for SECONDS (default 60): builds Fuzz/FuzzParser.swift
# with the parser's sources (Sources/SpindleHTTP/Parser, which need only the standard library)
# under -sanitize=fuzzer,address, and runs it on a scratch copy of the seed corpus
# (Fuzz/corpus), so the repository is not modified. Exits non-zero if the fuzzer finds a
# crash, a hang or an invariant violation; the reproducer is left in .build/fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
out=.build/fuzz
mkdir -p "$out/corpus"
swiftc -sanitize=fuzzer,address -parse-as-library -O -package-name spindle \
    -module-name SpindleHTTPFuzz Sources/SpindleHTTP/Parser/*.swift Fuzz/FuzzParser.swift \
    -o "$out/http-parser-fuzz" 2> "$out/build.log" || { cat "$out/build.log"; exit 1; }
cp -n Fuzz/corpus/* "$out/corpus/" 2>/dev/null || true
cd "$out"
./http-parser-fuzz -max_total_time="$seconds" -max_len=4096 -timeout=10 -dict=../../Fuzz/http.dict \
    -print_final_stats=1 corpus 2>&1 | tail -25
