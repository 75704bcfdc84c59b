"""The time-ordered protocol (shared/data/duplicates/README.md), run through the workers' code.

Walk the reports in created_at order. Each report is decided exactly as the grouping job
decides it (`RelatedIndex.group_for`, then `assign` and `add`, workers/grouping.py):

- a report whose group already has an earlier member is a query; it is a hit at k when
  an earlier member of its group is among the k best candidates of that decision
  (recall@k: what the suggestions show);
- the join it made is correct when the group it joined holds an earlier member of its
  group, wrong when it joined another group; a report with no earlier member that joined
  anything is a false join.

`held_out` counts only the last share of the reports (by time) while the index still
holds every earlier one: the join model is fitted on the first half of a file and
reported on the second (bench/related_calibrate.py, docs/related.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rules.related.index import IndexedDoc, RelatedIndex
from rules.related.scoring import GroupDecision

KS = (1, 3, 5, 10)


@dataclass(frozen=True)
class LabeledReport:
    """One line of an evaluation file: a report and its duplicate group (None if alone)."""

    doc: IndexedDoc
    group: str | None


def read_jsonl(path: Path) -> Iterator[LabeledReport]:
    """Reports of a jsonl file: id, created_at, title, body, group, optional signals."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row: dict[str, Any] = json.loads(line)
                doc = IndexedDoc(
                    id=str(row["id"]),
                    created_at=datetime.fromisoformat(row["created_at"].replace("Z", "+00:00")),
                    title=row.get("title") or "",
                    body=row.get("body") or "",
                    crash_signature=row.get("crash_signature"),
                    platform=row.get("platform"),
                    app_version=row.get("app_version"),
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: {exc}") from exc
            yield LabeledReport(doc, row.get("group"))


# Called with each report, the earlier members of its group, and the decision it got.
Observer = Callable[[LabeledReport, set[str], GroupDecision], None]


def evaluate(
    index: RelatedIndex,
    reports: Iterable[LabeledReport],
    *,
    held_out: float = 1.0,
    observe: Observer | None = None,
) -> dict[str, float | int]:
    """Run the protocol through `index` (which should start empty): recall@k and joins."""
    ordered = sorted(reports, key=lambda r: r.doc.created_at)
    counted_from = len(ordered) - round(len(ordered) * held_out)
    earlier: dict[str, set[str]] = {}
    # The group each report was put in by the walk's own decisions.
    placed: dict[str, str] = {}
    hits = dict.fromkeys(KS, 0)
    queries = alone = correct = wrong = false = 0
    for position, report in enumerate(ordered):
        members = earlier.get(report.group, set()) if report.group else set()
        decision = index.group_for(report.doc, k=max(KS))
        if observe is not None:
            observe(report, members, decision)
        index.assign(report.doc, decision)
        index.add(report.doc)
        placed[report.doc.id] = decision.group_id
        if decision.match is not None and decision.match.doc_id not in placed:
            placed[decision.match.doc_id] = decision.group_id
        if report.group:
            earlier.setdefault(report.group, set()).add(report.doc.id)
        if position < counted_from:
            continue
        if members:
            queries += 1
            found = [m.doc_id for m in decision.matches]
            for k in KS:
                if members.intersection(found[:k]):
                    hits[k] += 1
            if decision.joined:
                # Correct when the group joined holds an earlier member of its own group.
                if any(placed.get(m) == decision.group_id for m in members):
                    correct += 1
                else:
                    wrong += 1
        else:
            alone += 1
            if decision.joined:
                false += 1
    result: dict[str, float | int] = {"queries": queries}
    for k in KS:
        result[f"recall@{k}"] = round(hits[k] / queries, 3) if queries else 0.0
    result.update(
        auto_join_correct=correct,
        auto_join_wrong=wrong,
        auto_join_false=false,
        join_recall=round(correct / queries, 3) if queries else 0.0,
        false_join_rate=round(false / alone, 4) if alone else 0.0,
    )
    if held_out < 1.0:
        result["held_out"] = held_out
    return result
