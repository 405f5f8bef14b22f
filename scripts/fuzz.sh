#!/usr/bin/env bash
# Runs each cargo-fuzz target in fuzz/ for a fixed time and prints, per target, the seconds,
# executions and crash files. Not part of CI: it needs a nightly toolchain and cargo-fuzz
# (`rustup toolchain install nightly`, `cargo install cargo-fuzz`).
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  run time of each target, default 60
#   TARGET              targets to run, default every target (`cargo +nightly fuzz list`)
#
# Inputs that grow coverage go to fuzz/corpus/TARGET (ignored by git), seeded from
# fuzz/seeds/TARGET. A crash (panic, overflow, out of memory, an input slower than
# FUZZ_INPUT_TIMEOUT seconds) is saved under fuzz/artifacts/TARGET/, the other targets still
# run, and the script exits with status 1. Keep each crash as a regression test beside the
# code it broke, then delete the artifact.
set -euo pipefail

seconds=${1:-60}
shift || true
input_timeout=${FUZZ_INPUT_TIMEOUT:-10}
rss_limit_mb=${FUZZ_RSS_LIMIT_MB:-2048}

cd "$(dirname "$0")/../fuzz"
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

# Build every target first, so that each target's time is spent fuzzing.
for target in "${targets[@]}"; do
    cargo +nightly fuzz build "$target"
done

summary=()
failed=0
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    before=$(find "artifacts/$target" -type f ! -name last-run.log | wc -l)
    dict=()
    if [ -f "dict/$target.dict" ]; then
        dict=("-dict=dict/$target.dict")
    fi
    log="artifacts/$target/last-run.log"
    set +e
    cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout="$input_timeout" -rss_limit_mb="$rss_limit_mb" \
        -print_final_stats=1 "${dict[@]}" 2>&1 | tee "$log" | grep -E "^(#[0-9]+[[:space:]]+(INITED|DONE)|==[0-9]+== ERROR|SUMMARY|Done )"
    status=${PIPESTATUS[0]}
    set -e
    runs=$(grep -oE "^stat::number_of_executed_units: *[0-9]+" "$log" | grep -oE "[0-9]+$" || echo "?")
    crashes=$(( $(find "artifacts/$target" -type f ! -name last-run.log | wc -l) - before ))
    if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then
        failed=1
    fi
    summary+=("$(printf '%-18s %6ss %12s runs %3s new crash files (exit %s)' "$target" "$seconds" "$runs" "$crashes" "$status")")
done

echo
echo "fuzz summary (crash files are in fuzz/artifacts/TARGET/):"
printf '%s\n' "${summary[@]}"
exit "$failed"
