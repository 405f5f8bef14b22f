#!/usr/bin/env python3
"""Runs workflows/relevance.yaml once per seed (`--set defaults.seed=S`: other test queries,
other simulated clicks, other initial weights) and prints the mean and standard deviation of
each model's test metrics over the folds, then checks the method's targets.

Usage (from the repository root, after `cargo build --release -p flywheel -p flywheel-bm25-stage`):

    scripts/relevance-folds.py --seeds 0 1 2 --store /tmp/fw-folds \\
        --set vars.data=../../shared/data/trec-dl19

Every `--set` is passed to `flywheel run`. Folds already in the store are cached, so a second
call only prints the table. Standard library only.
"""

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import time

MODELS = [
    ("eval_bm25", "BM25 (plugin)"),
    ("eval_teacher", "teacher: post-pretrained + fine-tuned, regression + pairwise"),
    ("eval_teacher_no_post", "teacher without post-pretraining"),
    ("eval_teacher_regression", "teacher, regression loss only"),
    ("eval_teacher_pairwise", "teacher, pairwise loss only"),
    ("eval_student_finetuned", "student fine-tuned on labels only"),
    ("eval_student_distilled", "student distilled (warmed through stages 1-3)"),
    ("eval_student_random_distilled", "student distilled from random initialisation"),
]
METRICS = [("auc", "AUC"), ("pnr", "PNR"), ("ndcg_exp@10", "NDCG@10")]
SPEED = [("teacher_test", "teacher"), ("student_distilled_test", "distilled student")]


def output_file(flywheel, store, node, name):
    """Reads the JSON file `name` of the first output of `node`'s latest record in `store`."""
    shown = subprocess.run([flywheel, "show", node, "--store", store], check=True, capture_output=True, text=True).stdout
    for line in shown.splitlines():
        words = line.split()
        if words[:1] == ["output"] and " in " in line:
            return json.loads((pathlib.Path(line.rsplit(" in ", 1)[1]) / name).read_text())
    sys.exit(f"`flywheel show {node}` printed no output path:\n{shown}")


def run_fold(args, seed):
    """Runs (or finds cached) one fold, prints its summary and wall time, and returns its metrics by node."""
    command = [args.flywheel, "run", args.workflow, "--store", args.store, "--set", f"defaults.seed={seed}"]
    for setting in args.set:
        command += ["--set", setting]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"fold {seed} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    summary = result.stdout.strip().splitlines()[-1]
    print(f"fold {seed}: {summary} (wall {seconds:.0f} s)", file=sys.stderr)
    metrics = {node: output_file(args.flywheel, args.store, node, "metrics.json") for node, _ in MODELS + SPEED}
    return metrics


def mean_sd(values):
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.mean(values), sd


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--store", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE")
    parser.add_argument("--workflow", default="workflows/relevance.yaml")
    parser.add_argument("--flywheel", default="./target/release/flywheel")
    args = parser.parse_args()

    folds = [run_fold(args, seed) for seed in args.seeds]
    mean = {}
    print(f"Mean ± standard deviation over {len(folds)} folds (seeds {' '.join(map(str, args.seeds))}).\n")
    print("| model | " + " | ".join(label for _, label in METRICS) + " |")
    print("|---|" + "---:|" * len(METRICS))
    for node, label in MODELS:
        cells = []
        for key, _ in METRICS:
            m, sd = mean_sd([fold[node][key] for fold in folds])
            mean[(node, key)] = m
            cells.append(f"{m:.4f} ± {sd:.4f}")
        print(f"| {label} | " + " | ".join(cells) + " |")

    print("\nPer fold, NDCG@10:\n")
    print("| model | " + " | ".join(f"seed {s}" for s in args.seeds) + " |")
    print("|---|" + "---:|" * len(folds))
    for node, label in MODELS:
        print(f"| {label} | " + " | ".join(f"{fold[node]['ndcg_exp@10']:.4f}" for fold in folds) + " |")

    speed = {}
    for node, label in SPEED:
        m, sd = mean_sd([fold[node]["pairs_per_second"] for fold in folds])
        speed[node] = m
        print(f"\nScoring speed, {label}: {m:.0f} ± {sd:.0f} pairs/s")

    ndcg = lambda node: mean[(node, "ndcg_exp@10")]
    pnr = lambda node: mean[(node, "pnr")]
    targets = [
        ("teacher beats BM25 on NDCG@10", ndcg("eval_teacher") > ndcg("eval_bm25")),
        ("post-pretraining beats no post-pretraining on NDCG@10", ndcg("eval_teacher") > ndcg("eval_teacher_no_post")),
        ("regression + pairwise at least as good as either alone on PNR",
         pnr("eval_teacher") >= max(pnr("eval_teacher_regression"), pnr("eval_teacher_pairwise"))),
        (f"distilled student keeps >= 95 % of the teacher's NDCG@10 ({100 * ndcg('eval_student_distilled') / ndcg('eval_teacher'):.0f} %)",
         ndcg("eval_student_distilled") >= 0.95 * ndcg("eval_teacher")),
        (f"distilled student scores >= 3x faster ({speed['student_distilled_test'] / speed['teacher_test']:.1f}x)",
         speed["student_distilled_test"] >= 3 * speed["teacher_test"]),
        ("distilled student beats the student trained on labels only on NDCG@10",
         ndcg("eval_student_distilled") > ndcg("eval_student_finetuned")),
    ]
    print("\nTargets, on the means:\n")
    for text, met in targets:
        print(f"- {'met' if met else 'MISSED'}: {text}")


if __name__ == "__main__":
    main()
