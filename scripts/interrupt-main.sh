#!/usr/bin/env bash
# Interrupts the default run of workflows/relevance.yaml during post-pretraining, first with
# Ctrl-C (SIGINT), then with SIGKILL. It checks that the next run resumes `teacher_post` from
# its last checkpoint, and that the final models and metrics equal those of a run that was
# never interrupted. The test runner/tests/main_interrupt.rs does the same with small models.
#
# Usage: scripts/interrupt-main.sh [EXTRA flywheel run ARGS...]
# Needs `cargo build --release -p flywheel -p flywheel-bm25-stage` first. Takes about three
# default runs (a few minutes each on 2 cores). FLYWHEEL_BIN overrides the binary.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  -h|--help)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac

bin=${FLYWHEEL_BIN:-./target/release/flywheel}
workflow=workflows/relevance.yaml
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
reference=$work/reference
store=$work/interrupted

# Prints the highest step among teacher_post's resume checkpoints in store $1 (0 if none).
checkpoint_step() {
  python3 - "$1" <<'PY'
import json, pathlib, sys
store = pathlib.Path(sys.argv[1])
key = None
for log in store.glob("runs/*/log.jsonl"):
    for line in log.read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "start" and event.get("node") == "teacher_post":
            key = event["key"].removeprefix("b3:")
steps = [int(p.name[5:]) for p in (store / "checkpoints" / str(key)).glob("step-*")] if key else []
print(max(steps, default=0))
PY
}

# Waits until teacher_post in store $1 has a checkpoint past step $2 and prints that step.
# Fails when the run with process id $3 exits first.
wait_past() {
  local step
  for _ in $(seq 1 3000); do
    step=$(checkpoint_step "$1")
    if [ "$step" -gt "$2" ]; then echo "$step"; return 0; fi
    if ! kill -0 "$3" 2>/dev/null; then
      echo "the run exited before teacher_post checkpointed past step $2; its log:" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "teacher_post never checkpointed past step $2" >&2
  return 1
}

# Prints `node port id` for the models of the training nodes and the metrics of the
# evaluation nodes of store $1. A training node's `metrics` output contains its speed in pairs/s,
# which differs from run to run, so it is left out.
outputs() {
  for node in teacher_post teacher student_distilled eval_teacher eval_student_distilled; do
    "$bin" show "$node" --store "$1" |
      awk -v n="$node" '$1 == "output" {sub(":", "", $2); if ($2 == "model" || n ~ /^eval_/) print n, $2, $3}'
  done
}

echo "== reference run, never interrupted"
time "$bin" run "$workflow" --store "$reference" "$@" > "$work/reference.log" 2>&1

echo "== run 1: Ctrl-C during post-pretraining"
"$bin" run "$workflow" --store "$store" "$@" > "$work/run1.log" 2>&1 &
pid=$!
first=$(wait_past "$store" 0 "$pid") || { tail -20 "$work/run1.log"; exit 1; }
kill -INT "$pid"
status=0; wait "$pid" || status=$?
echo "checkpoint at step $first; exit status $status (130 expected)"
[ "$status" = 130 ] || { tail -20 "$work/run1.log"; exit 1; }
"$bin" verify --store "$store"

echo "== run 2: SIGKILL during post-pretraining, after it resumed"
"$bin" run "$workflow" --store "$store" "$@" > "$work/run2.log" 2>&1 &
pid=$!
second=$(wait_past "$store" "$first" "$pid") || { tail -20 "$work/run2.log"; exit 1; }
kill -KILL "$pid"
wait "$pid" || true
echo "checkpoint at step $second; killed"
grep -o "resuming at step [0-9]*" "$work/run2.log" | head -1
"$bin" verify --store "$store"

echo "== run 3: to the end"
time "$bin" run "$workflow" --store "$store" "$@" > "$work/run3.log" 2>&1
grep -ho "resuming at step [0-9]*" "$store"/runs/*/log.jsonl | tail -1
grep "^teacher_post " "$work/run3.log"

outputs "$reference" > "$work/reference.ids"
outputs "$store" > "$work/interrupted.ids"
if [ "$(wc -l < "$work/reference.ids")" -ne 5 ]; then
  echo "FAILED: could not read the output ids of the reference run:"
  cat "$work/reference.ids"
  exit 1
fi
if diff "$work/reference.ids" "$work/interrupted.ids"; then
  echo "OK: resumed after Ctrl-C and SIGKILL; models and metrics equal the uninterrupted run's:"
  cat "$work/interrupted.ids"
else
  echo "FAILED: outputs differ from the uninterrupted run (diff above)"
  exit 1
fi
