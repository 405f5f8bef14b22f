#!/usr/bin/env python3
"""Fine-tunes a Hugging Face BERT checkpoint as a cross-encoder with PyTorch on the same query
split as a flywheel run, and prints the test metrics with flywheel's definitions. It is the
outside check for flywheel's `finetune` stage: if PyTorch, from the same checkpoint, data and
budget, does no better, a weak teacher is the data's and the budget's doing, not a bug.

Usage:
    python3 scripts/torch_crossencoder.py --init DIR --docs docs.tsv \\
        --train TRAIN/pairs.jsonl --test TEST/pairs.jsonl [--steps 200] [--lr 5e-5]

TRAIN and TEST are the `data` folders of a `split-queries` node's `train` and `test` outputs
(`flywheel show split` prints them). Needs torch and transformers; reads files only.
"""

import argparse
import json
import math
import random
import time
from collections import defaultdict

import torch
from transformers import AutoTokenizer, BertForSequenceClassification


def read_pairs(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_docs(path):
    docs = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            docid, text = line.rstrip("\n").split("\t", 1)
            docs[docid] = text
    return docs


def ndcg_at(grades_in_order, all_grades, k=10):
    gain = lambda g: 2.0**g - 1.0
    dcg = sum(gain(g) / math.log2(i + 2) for i, g in enumerate(grades_in_order[:k]))
    ideal = sum(gain(g) / math.log2(i + 2) for i, g in enumerate(sorted(all_grades, reverse=True)[:k]))
    return dcg / ideal if ideal > 0 else None


def evaluate(pairs, scores):
    by_query = defaultdict(list)
    for pair, score in zip(pairs, scores):
        by_query[pair["qid"]].append((score, pair["grade"]))
    concordant = discordant = 0
    ndcgs = []
    for rows in by_query.values():
        for i, (si, gi) in enumerate(rows):
            for sj, gj in rows[i + 1 :]:
                if gi != gj and si != sj:
                    if (si > sj) == (gi > gj):
                        concordant += 1
                    else:
                        discordant += 1
        ranked = [g for _, g in sorted(rows, key=lambda r: -r[0])]
        value = ndcg_at(ranked, [g for _, g in rows])
        if value is not None:
            ndcgs.append(value)
    return {"pnr": concordant / max(discordant, 1), "ndcg@10": sum(ndcgs) / len(ndcgs), "queries": len(by_query)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init", required=True)
    parser.add_argument("--docs", required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-len", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    docs = read_docs(args.docs)
    train, test = read_pairs(args.train), read_pairs(args.test)
    tokenizer = AutoTokenizer.from_pretrained(args.init)
    model = BertForSequenceClassification.from_pretrained(args.init, num_labels=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warmup = max(1, args.steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (args.steps - s) / (args.steps - warmup)))
    )

    def encode(batch):
        return tokenizer([p["query"] for p in batch], [docs[p["docid"]] for p in batch],
                         truncation="only_second", max_length=args.max_len, padding=True, return_tensors="pt")

    started = time.monotonic()
    model.train()
    for step in range(args.steps):
        batch = rng.sample(train, args.batch_size)
        logits = model(**encode(batch)).logits.squeeze(-1)
        loss = torch.nn.functional.mse_loss(logits, torch.tensor([float(p["grade"]) for p in batch]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if (step + 1) % 20 == 0:
            print(f"step {step + 1}/{args.steps} loss {loss.item():.4f} ({time.monotonic() - started:.0f} s)", flush=True)

    model.eval()
    scores = []
    with torch.no_grad():
        for i in range(0, len(test), 64):
            scores.extend(model(**encode(test[i : i + 64])).logits.squeeze(-1).tolist())
    print(json.dumps(evaluate(test, scores)))


if __name__ == "__main__":
    main()
