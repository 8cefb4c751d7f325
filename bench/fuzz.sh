#!/usr/bin/env bash
# Runs every fuzz target under fuzz/ for a fixed number of executions, one
# target at a time on one core, and prints per target the executions, the
# seconds and the crashes (docs/benchmarks.md, "Fuzzing").
#
#   bench/fuzz.sh [EXECUTIONS]          # default 10000000 per target
#   TARGETS="manifest report" bench/fuzz.sh 100000
#   SANITIZER=none bench/fuzz.sh        # cargo fuzz's -s (default: address)
#   MAX_SECONDS=1500 bench/fuzz.sh      # also stop each target after 1500 s
#
# Needs the nightly toolchain; installs cargo-fuzz when it is missing.
# Inputs that found new coverage go to fuzz/corpus/TARGET (gitignored), so
# a second run starts where the first stopped; the committed seeds are in
# fuzz/seeds/TARGET, the dictionaries in fuzz/dict. A crash leaves its input
# in fuzz/artifacts/TARGET (gitignored: a kept input becomes a regression
# test) and makes the script exit 1 after the other targets ran.
set -euo pipefail

RUNS=${1:-10000000}
TARGETS=${TARGETS:-downlink uplink manifest report range query version}
SANITIZER=${SANITIZER:-address}
MAX_SECONDS=${MAX_SECONDS:-0}

for number in "$RUNS" "$MAX_SECONDS"; do
    case $number in
    '' | *[!0-9]*)
        echo "usage: [MAX_SECONDS=S] bench/fuzz.sh [EXECUTIONS]  (numbers, got '$number')" >&2
        exit 2
        ;;
    esac
done

cd "$(dirname "$0")/../fuzz"

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "bench/fuzz.sh: the nightly toolchain is needed (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "bench/fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# Debug assertions on (-a): overflow checks and debug_assert! count as
# crashes too.
FLAGS=(-a -s "$SANITIZER")
cargo +nightly fuzz build "${FLAGS[@]}"

dictionary() {
    case $1 in
    manifest | report) echo dict/json.dict ;;
    range | query | version) echo "dict/$1.dict" ;;
    esac
}

mkdir -p ../bench/out/fuzz
results=()
failed=0
for target in $TARGETS; do
    mkdir -p "corpus/$target" "artifacts/$target"
    log=../bench/out/fuzz/$target.log
    args=(-runs="$RUNS" -max_total_time="$MAX_SECONDS" -timeout=30 -print_final_stats=1)
    dict=$(dictionary "$target")
    [ -n "$dict" ] && args+=(-dict="$dict")
    before=$(find "artifacts/$target" -type f | wc -l)
    start=$(date +%s.%N)
    status=0
    cargo +nightly fuzz run "${FLAGS[@]}" "$target" "corpus/$target" "seeds/$target" \
        -- "${args[@]}" >"$log" 2>&1 || status=$?
    end=$(date +%s.%N)
    after=$(find "artifacts/$target" -type f | wc -l)
    crashes=$((after - before))
    if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        # Failed without leaving an input (a build error, a signal): say so.
        crashes=1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    seconds=$(awk "BEGIN { print $end - $start }")
    results+=("$(printf '%-9s %12s %9.1f %7s' "$target" "${execs:-?}" "$seconds" "$crashes")")
    if [ "$crashes" -ne 0 ]; then
        failed=1
        echo "bench/fuzz.sh: $target crashed (exit $status); log $log, inputs in fuzz/artifacts/$target" >&2
        tail -n 30 "$log" >&2
    fi
done

printf '%-9s %12s %9s %7s\n' target executions seconds crashes
printf '%s\n' "${results[@]}"
exit "$failed"
