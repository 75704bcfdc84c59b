"""Fit the join decision's same-issue model (rules/related/joins.py) on the first part of a file.

    .venv/bin/python bench/related_calibrate.py [FILE.jsonl] [--fit-share 0.5]
        [--target 0.02] [--titles-only]

Walks the labeled file in time order through RelatedIndex.group_for, as the workers do,
with text joins off, and keeps the join features of each report's three best candidates
(joins.pair_features). A pair is positive when both reports are in the same labeled group.
On the first `--fit-share` of the reports (by time) only, it fits a logistic regression
(Newton's method, a small L2 penalty) and picks the lowest threshold whose false-join
rate stays at or under `--target` there (the issue's 0.02). It prints the weights to
paste into joins.py, and the join measures on both parts: the second part is the honest
figure. `--titles-only` drops the bodies (short,
feedback-like reports) to check the method on short texts. The full walk with the model
applied is `feedback-hub related eval FILE --held-out 0.5`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rules.related.eval import LabeledReport, evaluate, read_jsonl  # noqa: E402
from rules.related.index import RelatedIndex  # noqa: E402
from rules.related.joins import FEATURES, MIN_INDEXED  # noqa: E402
from rules.related.scoring import GroupDecision  # noqa: E402
from workers.procs import free_port, start_redis, stop  # noqa: E402

DEFAULT_FILE = ROOT.parent / "shared" / "data" / "duplicates" / "hadoop.jsonl"


def collect(reports: list[LabeledReport], redis: Redis) -> list[dict[str, object]]:
    """Each report: whether it is a query, and its candidates' features and labels."""
    group_of = {r.doc.id: r.group for r in reports}
    rows: list[dict[str, object]] = []
    n = [0]

    def observe(report: LabeledReport, members: set[str], decision: GroupDecision) -> None:
        pairs = []
        for doc_id, features in decision.features.items():
            same = report.group is not None and group_of.get(doc_id) == report.group
            pairs.append((features.vector(), same))
        rows.append({"query": bool(members), "pairs": pairs, "indexed": n[0]})
        n[0] += 1

    # A threshold above any probability: nothing joins on words, so groups stay singletons.
    index = RelatedIndex(redis, prefix="calibrate", window_days=None, join_threshold=2.0)
    evaluate(index, reports, observe=observe)
    return rows


def fit(x: np.ndarray, y: np.ndarray, l2: float = 0.01) -> np.ndarray:
    """Logistic regression by Newton's method; returns [intercept, *weights]."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(xb.shape[1])
    penalty = np.eye(xb.shape[1]) * l2
    penalty[0, 0] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(xb @ w)))
        grad = xb.T @ (p - y) + penalty @ w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + penalty
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def decisions(rows: list[dict[str, object]], w: np.ndarray) -> list[tuple[bool, float, bool]]:
    """Per report: query?, its best candidate's score (-1 if none), is that one a duplicate."""
    out = []
    for row in rows:
        best, right = -1.0, False
        pairs = row["pairs"]
        assert isinstance(pairs, list)
        if int(row["indexed"]) >= MIN_INDEXED:  # type: ignore[call-overload]
            for vector, same in pairs:
                z = w[0] + float(np.dot(w[1:], vector))
                score = 1.0 / (1.0 + np.exp(-z))
                if score > best:
                    best, right = score, same
        out.append((bool(row["query"]), best, right))
    return out


def measures(per_report: list[tuple[bool, float, bool]], threshold: float) -> dict[str, float]:
    """join_recall and false_join_rate of a part at `threshold` (best candidate's group)."""
    queries = sum(1 for q, _, _ in per_report if q)
    alone = len(per_report) - queries
    correct = sum(1 for q, s, r in per_report if q and s >= threshold and r)
    false = sum(1 for q, s, _ in per_report if not q and s >= threshold)
    return {
        "queries": queries,
        "join_recall": round(correct / queries, 3) if queries else 0.0,
        "false_join_rate": round(false / alone, 4) if alone else 0.0,
        "correct": correct,
        "false": false,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--fit-share", type=float, default=0.5)
    parser.add_argument("--target", type=float, default=0.02)
    parser.add_argument("--titles-only", action="store_true")
    args = parser.parse_args()
    reports = sorted(read_jsonl(args.file), key=lambda r: r.doc.created_at)
    if args.titles_only:
        reports = [replace(r, doc=replace(r.doc, body="")) for r in reports]
    with tempfile.TemporaryDirectory() as directory:
        port = free_port()
        proc = start_redis(port, Path(directory))
        try:
            rows = collect(reports, Redis(port=port))
        finally:
            stop(proc)
    cut = round(len(rows) * args.fit_share)
    train = rows[:cut]
    x = [v for r in train for v, _ in r["pairs"]]  # type: ignore[attr-defined]
    y = [float(s) for r in train for _, s in r["pairs"]]  # type: ignore[attr-defined]
    w = fit(np.array(x, dtype=float), np.array(y, dtype=float))
    fitted = decisions(train, w)
    # The lowest threshold that keeps the fitting part's false-join rate within the target.
    threshold = 1.0
    for candidate in sorted({s for _, s, _ in fitted if s > 0}, reverse=True):
        if measures(fitted, candidate)["false_join_rate"] > args.target:
            break
        threshold = candidate
    print(
        json.dumps(
            {
                "file": str(args.file),
                "titles_only": args.titles_only,
                "pairs_fitted": len(y),
                "positives": int(sum(y)),
                "intercept": round(float(w[0]), 4),
                "weights": {f: round(float(v), 4) for f, v in zip(FEATURES, w[1:], strict=True)},
                "threshold": round(threshold, 4),
                "fit_part": measures(fitted, threshold),
                "held_out_part": measures(decisions(rows[cut:], w), threshold),
            }
        )
    )


if __name__ == "__main__":
    main()
