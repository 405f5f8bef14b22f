#!/usr/bin/env python3
"""Measure MLM training throughput of BERT-mini in PyTorch on the CPU.

This is the counterpart of the Rust bench `stages/benches/mlm_train.rs`, and both use the
same setup. The model has 4 layers, hidden 256, 4 heads, intermediate 1024 and a vocabulary of
8000. A step trains on 32 sequences of 128 tokens without padding, with 20 masked positions
per sequence and hidden dropout 0.1, then clips the gradient norm at 1.0 and runs AdamW (lr
1e-4, eps 1e-6, weight decay 0.01 except on biases and layer norms). There is no dropout on
attention probabilities, because flywheel does not implement it. Like flywheel, the script
runs the MLM head only on the masked positions, not on all 128 per sequence. Not run in CI:

    python3 scripts/bench_torch_mlm.py --threads 2 --warmup 3 --steps 10
"""

import argparse
import time

import torch
import transformers
from transformers import BertConfig, BertForMaskedLM

VOCAB = 8000
BATCH = 32
SEQ = 128
PREDICTIONS_PER_SEQUENCE = 20
FIRST_WORD_ID = 5
MASK_ID = 4


def make_batch(generator):
    """Return input ids with masked positions, their flat row indices and the original ids."""
    ids = torch.randint(FIRST_WORD_ID, VOCAB, (BATCH, SEQ), generator=generator)
    chosen = torch.stack([torch.randperm(SEQ - 2, generator=generator)[:PREDICTIONS_PER_SEQUENCE] + 1 for _ in range(BATCH)])
    rows = (chosen + torch.arange(BATCH).unsqueeze(1) * SEQ).reshape(-1)
    flat = ids.reshape(-1)
    targets = flat[rows].clone()
    flat[rows] = MASK_ID
    return flat.reshape(BATCH, SEQ), rows, targets


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        hidden_dropout_prob=0.1,
        # flywheel's attention kernel has no dropout on the attention probabilities.
        attention_probs_dropout_prob=0.0,
    )
    model = BertForMaskedLM(config)
    model.train()
    decayed = [p for n, p in model.named_parameters() if not (n.endswith(".bias") or "LayerNorm" in n)]
    undecayed = [p for n, p in model.named_parameters() if n.endswith(".bias") or "LayerNorm" in n]
    optimizer = torch.optim.AdamW(
        [{"params": decayed, "weight_decay": 0.01}, {"params": undecayed, "weight_decay": 0.0}],
        lr=1e-4,
        eps=1e-6,
    )
    generator = torch.Generator().manual_seed(0)
    type_ids = torch.zeros(BATCH, SEQ, dtype=torch.long)
    mask = torch.ones(BATCH, SEQ, dtype=torch.long)

    def step():
        ids, rows, targets = make_batch(generator)
        optimizer.zero_grad(set_to_none=True)
        hidden = model.bert(input_ids=ids, token_type_ids=type_ids, attention_mask=mask).last_hidden_state
        logits = model.cls(hidden.reshape(BATCH * SEQ, -1)[rows])
        loss = torch.nn.functional.cross_entropy(logits, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss.item()

    print(
        f"PyTorch {torch.__version__} (transformers {transformers.__version__}, attention "
        f"{model.config._attn_implementation}): {torch.get_num_threads()} threads, batch {BATCH} x {SEQ} "
        f"tokens, {args.warmup} warm-up + {args.steps} timed steps"
    )
    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    elapsed = time.perf_counter() - start
    print(f"last loss {loss:.4f}, {elapsed / args.steps:.3f} s/step")
    print(f"pytorch tokens/s: {args.steps * BATCH * SEQ / elapsed:.0f}")


if __name__ == "__main__":
    main()
