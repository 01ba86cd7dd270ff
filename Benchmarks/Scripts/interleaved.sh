#!/usr/bin/env bash
# Interleaved A/B rounds of one workload, for a machine whose speed drifts between runs:
# each round runs every runtime once, back to back, and prints each one's figure and its ratio
# to the last runtime named (the baseline), so a comparison never spans a drift.
#
#   Benchmarks/Scripts/interleaved.sh W9 2 "spindle swift-nio" [rounds] [metric]
#
# Runs `spindle-bench --child --quick` (build it first: swift build -c release in Benchmarks/;
# SPINDLE_BENCH names another build). tokio and go work too once Scripts/build-peers.sh has run.
# Environment variables are passed through, e.g. GLIBC_TUNABLES for every runtime.
set -euo pipefail
workload=${1:?workload, e.g. W9}
threads=${2:?thread count}
runtimes=${3:?runtimes, the baseline last}
rounds=${4:-5}
metric=${5:-msgs_per_s}
bench="${SPINDLE_BENCH:-$(dirname "$0")/../.build/release/spindle-bench}"
baseline=${runtimes##* }
for round in $(seq 1 "$rounds"); do
    declare -A value=()
    line="round $round:"
    for runtime in $runtimes; do
        result=$("$bench" --child --quick --workloads "$workload" --runtimes "$runtime" --threads "$threads" 2>/dev/null | grep '^RESULT' || true)
        value[$runtime]=$(sed -n "s/.*$metric=\([0-9.]*\).*/\1/p" <<<"$result")
        line="$line $runtime=${value[$runtime]:-failed}"
    done
    for runtime in $runtimes; do
        if [[ -n "${value[$runtime]:-}" && -n "${value[$baseline]:-}" ]]; then
            line="$line $runtime/$baseline=$(awk -v a="${value[$runtime]}" -v b="${value[$baseline]}" 'BEGIN { printf "%.2f", a / b }')"
        fi
    done
    echo "$line"
    unset value
done
