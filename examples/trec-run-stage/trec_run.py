#!/usr/bin/env python3
"""A flywheel subprocess stage, `trec-run`: writes a `scores` artifact as a TREC run file.

Input `scores` (kind `scores`): scores.jsonl, one {"qid", "docid", "score"} object per line.
Output `run` (kind `trec-run`): run.txt, one `qid Q0 docid rank score tag` line per score,
queries in sorted order, and within a query ranks 1, 2, ... by descending score, ties broken
by ascending docid. Scores are written in Python's shortest round-trip form, so the file
ranks exactly as the scores do. Param `tag` (string) fills the last column.

The runner writes one JSON object to stdin: {"protocol": 1, "describe": true} for the
handshake, or {"protocol": 1, "request": {...}} to run. The stage writes its reply to stdout,
one JSON object per line. It uses only the Python standard library.
"""

import json
import math
import os
import sys

PROTOCOL = 1

DESCRIPTOR = {
    "name": "trec-run",
    "version": "1",
    "summary": "write a scores artifact as a TREC run file (qid Q0 docid rank score tag)",
    "inputs": [{"name": "scores", "kind": "scores", "doc": "scores.jsonl: {qid, docid, score} per line"}],
    "outputs": [{"name": "run", "kind": "trec-run", "doc": "run.txt in TREC run format"}],
    "params": [
        {
            "name": "tag",
            "type": "string",
            "default": "flywheel",
            "doc": "run tag written in the last column; no white space",
        }
    ],
}


class StageError(Exception):
    """A failure reported to the runner as an `error` event."""


def emit(event, **fields):
    """Print one event line on stdout."""
    print(json.dumps({"event": event, **fields}), flush=True)


def check_field(value, name, number):
    """Return `value` if it is a non-empty string without white space, else raise."""
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise StageError(
            f"scores.jsonl line {number}: {name} {value!r} must be a non-empty string without white space, "
            "because TREC run files are white-space separated"
        )
    return value


def read_scores(path):
    """Return {qid: [(docid, score), ...]} from scores.jsonl."""
    by_query = {}
    seen = set()
    with open(path, encoding="utf-8") as scores:
        for number, line in enumerate(scores, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                qid, docid, score = row["qid"], row["docid"], float(row["score"])
            except (ValueError, KeyError, TypeError) as error:
                raise StageError(
                    f"scores.jsonl line {number}: {error!r}; expected {{\"qid\", \"docid\", \"score\"}}"
                ) from error
            check_field(qid, "qid", number)
            check_field(docid, "docid", number)
            if not math.isfinite(score):
                raise StageError(f"scores.jsonl line {number}: score {score} is not a finite number")
            if (qid, docid) in seen:
                raise StageError(f"scores.jsonl line {number}: second score for qid {qid!r} and docid {docid!r}")
            seen.add((qid, docid))
            by_query.setdefault(qid, []).append((docid, score))
    return by_query


def run(request):
    """Run the stage and return its outcome."""
    tag = request["params"]["tag"]
    if not tag or any(c.isspace() for c in tag):
        raise StageError(f"invalid param `tag`: {tag!r} must be non-empty and without white space")
    by_query = read_scores(os.path.join(request["inputs"]["scores"]["path"], "scores.jsonl"))
    lines = 0
    with open(os.path.join(request["outputs"]["run"], "run.txt"), "w", encoding="utf-8", newline="\n") as out:
        for qid in sorted(by_query):
            ranked = sorted(by_query[qid], key=lambda item: (-item[1], item[0]))
            for rank, (docid, score) in enumerate(ranked, 1):
                out.write(f"{qid} Q0 {docid} {rank} {score!r} {tag}\n")
                lines += 1
    emit("log", level="info", message=f"wrote {lines} run lines for {len(by_query)} queries")
    return {"metrics": {"queries": len(by_query), "lines": lines}}


def main():
    try:
        message = json.loads(sys.stdin.read())
    except ValueError as error:
        emit("error", message=f"invalid JSON on stdin: {error}")
        return 2
    if message.get("protocol") != PROTOCOL:
        emit(
            "error",
            message=f"trec-run speaks protocol version {PROTOCOL}, but the runner sent {message.get('protocol')}",
        )
        return 2
    if message.get("describe"):
        print(json.dumps({"protocol": PROTOCOL, "stages": [DESCRIPTOR]}), flush=True)
        return 0
    request = message["request"]
    if request["stage"] != DESCRIPTOR["name"]:
        emit("error", message=f"this command has no stage `{request['stage']}`; it has `trec-run`")
        return 2
    try:
        outcome = run(request)
    except (StageError, OSError) as error:
        emit("error", message=str(error))
        return 1
    emit("result", outcome=outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
