#!/usr/bin/env python3
"""Load a flywheel model directory with transformers and compare its outputs with flywheel's.

The directory comes from the Rust example `export_check`, which writes `config.json`,
`model.safetensors` and `flywheel_outputs.json` (inputs and flywheel's CPU outputs). This
script loads the checkpoint as `BertModel`, `BertForMaskedLM` and
`BertForSequenceClassification` (one label), runs the same inputs in eval mode (no dropout)
and prints the maximum absolute difference of each output over the real (unpadded) tokens.
Not run in CI:

    cargo run -p flywheel-stages --example export_check -- /tmp/export-check
    python3 scripts/check_export.py /tmp/export-check

It exits with status 1 when a difference exceeds the tolerance (default 1e-4) or when
transformers reports missing or mismatched weights.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import BertForMaskedLM, BertForSequenceClassification, BertModel  # noqa: E402


def load(model_class, directory):
    """Load `model_class` from `directory` in eval mode and return it with its loading report."""
    model, info = model_class.from_pretrained(directory, output_loading_info=True, attn_implementation="eager")
    model.eval()
    return model, info


def max_difference(ours, theirs, mask):
    """Return the max absolute difference over rows whose attention mask is 1."""
    keep = mask.reshape(-1).bool()
    ours = ours.reshape(mask.numel(), -1)[keep]
    theirs = theirs.reshape(mask.numel(), -1)[keep]
    return (ours.double() - theirs.double()).abs().max().item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("directory", help="directory written by the export_check example")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max allowed absolute difference")
    args = parser.parse_args()

    with open(os.path.join(args.directory, "flywheel_outputs.json")) as file:
        flywheel = json.load(file)
    batch, seq = flywheel["batch"], flywheel["seq"]
    hidden_size, vocab_size = flywheel["hidden_size"], flywheel["vocab_size"]
    inputs = {
        name: torch.tensor(flywheel[name], dtype=torch.long).reshape(batch, seq)
        for name in ("input_ids", "token_type_ids", "attention_mask")
    }
    mask = inputs["attention_mask"]
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, threads {torch.get_num_threads()}")

    failures = []
    results = []
    with torch.no_grad():
        encoder, encoder_info = load(BertModel, args.directory)
        hidden = encoder(**inputs).last_hidden_state
        expected = torch.tensor(flywheel["hidden"]).reshape(batch, seq, hidden_size)
        results.append(("BertModel", "last_hidden_state", max_difference(expected, hidden, mask), encoder_info))

        masked_lm, masked_lm_info = load(BertForMaskedLM, args.directory)
        logits = masked_lm(**inputs).logits
        expected = torch.tensor(flywheel["mlm_logits"]).reshape(batch, seq, vocab_size)
        results.append(("BertForMaskedLM", "logits", max_difference(expected, logits, mask), masked_lm_info))

        classifier, classifier_info = load(BertForSequenceClassification, args.directory)
        if classifier.config.num_labels != 1:
            failures.append(f"BertForSequenceClassification has {classifier.config.num_labels} labels, expected 1")
        logits = classifier(**inputs).logits
        expected = torch.tensor(flywheel["relevance_logits"]).reshape(batch, 1)
        difference = (expected.double() - logits.double()).abs().max().item()
        results.append(("BertForSequenceClassification", "logits", difference, classifier_info))

    for model_name, output_name, difference, info in results:
        unused = len(info.get("unexpected_keys") or [])
        print(f"{model_name:30} {output_name:17} max abs difference {difference:.3e} ({unused} checkpoint tensors unused)")
        # The checkpoint contains both heads, so each class leaves the other head's weights (and
        # BertForMaskedLM the pooler) unused; only missing or mismatched weights are errors.
        problems = {key: info[key] for key in ("missing_keys", "mismatched_keys") if info.get(key)}
        if problems:
            failures.append(f"{model_name}: loading reported {problems}")
        if not difference <= args.tolerance:
            failures.append(f"{model_name} {output_name}: difference {difference:.3e} exceeds {args.tolerance:.0e}")

    if failures:
        for failure in failures:
            print(f"FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
    print(f"all outputs match within {args.tolerance:.0e}")


if __name__ == "__main__":
    main()
