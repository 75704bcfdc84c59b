"""People's corrections kept as labels: pairs confirmed the same issue, or rejected.

Redis, under the index's prefix:

    {p}:labels           hash   "a|b" (ids sorted) -> JSON {a, b, label, by, at, reports}
    {p}:rejected:{id}    set    ids people said are not related to report `id`

A rejected pair is never suggested or joined again (RelatedIndex.group_for reads
`rejected_with`). Both kinds are exported in the evaluation format by
`feedback-hub related export-labels` (`evaluation_rows`), so a deployment can measure
its own grouping with `related eval`. Labels are kept without expiry: they are the
deployment's ground truth, a few hundred bytes each.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from redis import Redis

from rules.related.postings import text

Label = Literal["same", "not_related"]


@dataclass(frozen=True)
class LabeledReport:
    """What a label keeps of a report, enough to write it in the evaluation format."""

    id: str
    created_at: str
    title: str
    body: str = ""

    def to_json(self) -> dict[str, str]:
        """JSON-safe data."""
        return {
            "id": self.id,
            "created_at": self.created_at,
            "title": self.title,
            "body": self.body,
        }


def pair_key(a: str, b: str) -> str:
    """The same key whichever way round the pair was labeled."""
    first, second = sorted((a, b))
    return f"{first}|{second}"


class Labels:
    """Confirmed and rejected pairs of one index."""

    def __init__(
        self, redis: Redis, prefix: str = "hub:related", clock: Callable[[], float] = time.time
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.clock = clock

    @property
    def _labels(self) -> str:
        return f"{self.prefix}:labels"

    def _rejected(self, doc_id: str) -> str:
        return f"{self.prefix}:rejected:{doc_id}"

    def record(self, a: LabeledReport, b: LabeledReport, label: Label, by: str) -> dict[str, Any]:
        """Keep a pair's label (the last one given wins); returns what was stored."""
        entry = {
            "a": a.id,
            "b": b.id,
            "label": label,
            "by": by,
            "at": self.clock(),
            "reports": [a.to_json(), b.to_json()],
        }
        pipe = self.redis.pipeline()
        pipe.hset(self._labels, pair_key(a.id, b.id), json.dumps(entry))
        if label == "not_related":
            pipe.sadd(self._rejected(a.id), b.id)
            pipe.sadd(self._rejected(b.id), a.id)
        else:
            pipe.srem(self._rejected(a.id), b.id)
            pipe.srem(self._rejected(b.id), a.id)
        pipe.execute()
        return entry

    def label_of(self, a: str, b: str) -> Label | None:
        """The label people gave the pair, if any."""
        raw = self.redis.hget(self._labels, pair_key(a, b))
        return json.loads(raw)["label"] if raw else None

    def rejected_with(self, doc_id: str) -> set[str]:
        """Reports people said are not related to `doc_id`."""
        return {text(m) for m in self.redis.smembers(self._rejected(doc_id))}

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every label, oldest first."""
        raw = self.redis.hgetall(self._labels)
        yield from sorted((json.loads(v) for v in raw.values()), key=lambda e: e["at"])


def evaluation_rows(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The labeled reports in the evaluation format (shared/data/duplicates/README.md).

    Confirmed pairs are joined into groups (connected sets, as the data set's groups are);
    a report only ever rejected has group null. Sorted by created_at, as eval expects.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    reports: dict[str, dict[str, str]] = {}
    for entry in entries:
        for report in entry["reports"]:
            reports[report["id"]] = report
        if entry["label"] == "same":
            ra, rb = find(entry["a"]), find(entry["b"])
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    members: dict[str, int] = {}
    for doc_id in reports:
        if doc_id in parent:
            members[find(doc_id)] = members.get(find(doc_id), 0) + 1
    rows = []
    for doc_id, report in reports.items():
        root = find(doc_id) if doc_id in parent else None
        group = f"g{root}" if root is not None and members.get(root, 0) > 1 else None
        rows.append({**report, "group": group})
    return sorted(rows, key=lambda r: (r["created_at"], r["id"]))
