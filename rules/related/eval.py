"""The time-ordered recall-rate@k protocol (shared/data/duplicates/README.md), run on the index.

Walk the reports in created_at order; a report whose group already has an earlier member
is a query against an index holding only earlier reports; it is a hit at k when an earlier
member of its group is among the k best; then it is added.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rules.related.index import IndexedDoc, RelatedIndex

KS = (1, 5, 10)


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


def recall(index: RelatedIndex, reports: Iterable[LabeledReport]) -> dict[str, float | int]:
    """Run the protocol through `index` (which should start empty); recall@1, @5, @10."""
    ordered = sorted(reports, key=lambda r: r.doc.created_at)
    earlier: dict[str, set[str]] = {}
    hits = dict.fromkeys(KS, 0)
    queries = 0
    for report in ordered:
        members = earlier.get(report.group, set()) if report.group else set()
        if members:
            queries += 1
            found = [m.doc_id for m in index.query(report.doc, k=max(KS))]
            for k in KS:
                if members.intersection(found[:k]):
                    hits[k] += 1
        index.add(report.doc)
        if report.group:
            earlier.setdefault(report.group, set()).add(report.doc.id)
    result: dict[str, float | int] = {"queries": queries}
    for k in KS:
        result[f"recall@{k}"] = round(hits[k] / queries, 3) if queries else 0.0
    return result
