#!/usr/bin/env bash
# Runs the random SIGKILL trials of runner/tests/crash_random.rs: a small
# workflow of fixture stages is killed at a random moment, then the store
# must verify clean and a re-run must give the same output ids as an
# uninterrupted run. Then it runs runner/tests/mlm_resume.rs, which kills a
# real training node (pretrain-mlm) after a resume checkpoint and checks
# that the resumed model is byte-identical.
#
# Usage: scripts/kill-trials.sh [TRIALS]   (default 30)
#
# Environment: FLYWHEEL_KILL_SEED replays the delays of an earlier run (each
# trial line prints the seed); CARGO_TARGET_DIR as for cargo.
#
# Prints one line per trial and a total with the time taken. With a debug
# build already in place, 30 trials and the training test took 93 s and
# 116 s in two runs on 2 cores shared with other builds (load average 15-17).
set -euo pipefail

trials="${1:-30}"
cd "$(dirname "$0")/.."
started=$(date +%s)

cargo test -p flywheel --test crash_random --test mlm_resume --no-run --quiet

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
FLYWHEEL_KILL_TRIALS="$trials" cargo test --quiet -p flywheel --test crash_random -- --nocapture >"$log" 2>&1 || status=$?
grep '^kill trial' "$log" || true
if [ "$status" -ne 0 ]; then
    cat "$log"
    echo "kill trials: FAILED (see the output above)"
    exit "$status"
fi

if cargo test --quiet -p flywheel --test mlm_resume >"$log" 2>&1; then
    echo "training node trial (pretrain-mlm killed after a checkpoint): ok"
else
    cat "$log"
    echo "training node trial (pretrain-mlm killed after a checkpoint): FAILED"
    exit 1
fi
echo "total: $trials fixture trials and 1 training node trial passed in $(( $(date +%s) - started )) s"
