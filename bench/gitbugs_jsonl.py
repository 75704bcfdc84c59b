"""A GitBugs project's CSV files as an evaluation file for `feedback-hub related eval`.

    .venv/bin/python bench/gitbugs_jsonl.py BUGS.csv DUPLICATES.csv OUT.jsonl

GitBugs (Patil 2025, arXiv 2504.09651, https://github.com/av9ash/gitbugs; CC BY 4.0)
gives, per project, the bug reports (`<project>_bugs.csv`: Summary, Issue id, Created,
Description, ...) and the duplicate pairs (`<project>_bugs-combined.csv`: Issue id,
Duplicate id, the second sometimes a comma-separated list). This writes one JSON object a
line in the format of shared/data/duplicates/README.md, sorted by created_at: a group is
a connected set of reports marked as duplicates of each other, counting only reports
present in the bugs file, named after its smallest id. Run on the Hadoop files, it gives
shared/data/duplicates/hadoop.jsonl: every report equal in every field (id, time, title,
body, group), which is how the conversion was checked; docs/related.md has the results on SeaMonkey,
a set the join model was never fitted on.

Hand-written: a union-find over a few hundred pairs and csv.DictReader; no library does
this conversion.
"""

from __future__ import annotations

import argparse
import csv
import json
from datetime import datetime
from pathlib import Path


def read_groups(bugs: list[dict[str, str]], duplicates: Path) -> dict[str, str]:
    """Report id -> its group's name, for reports with at least one duplicate present."""
    ids = {row["Issue id"].strip() for row in bugs}
    parent = {i: i for i in ids}

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    with duplicates.open(encoding="utf-8", newline="") as lines:
        for pair in csv.DictReader(lines):
            first = pair["Issue id"].strip()
            for other in (pair.get("Duplicate id") or "").replace('"', "").split(","):
                other = other.strip()
                if first in ids and other in ids:
                    parent[root(first)] = root(other)
    members: dict[str, list[str]] = {}
    for i in ids:
        members.setdefault(root(i), []).append(i)
    return {
        i: f"g{min(group, key=int)}" for group in members.values() if len(group) > 1 for i in group
    }


def created_at(value: str) -> str:
    """GitBugs writes ISO times (Bugzilla) or Jira's "30/Sep/21 17:20"; UTC either way."""
    value = value.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = datetime.strptime(value, "%d/%b/%y %H:%M")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bugs", type=Path)
    parser.add_argument("duplicates", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    with args.bugs.open(encoding="utf-8", newline="") as lines:
        bugs = list(csv.DictReader(lines))
    groups = read_groups(bugs, args.duplicates)
    reports = [
        {
            "id": row["Issue id"].strip(),
            "created_at": created_at(row["Created"]),
            "title": row["Summary"],
            # Jira's CRLF line ends, as the shared file has them: LF.
            "body": (row["Description"] or "").replace("\r\n", "\n"),
            "group": groups.get(row["Issue id"].strip()),
        }
        for row in bugs
    ]
    reports.sort(key=lambda r: str(r["created_at"]))
    with args.out.open("w", encoding="utf-8") as out:
        for report in reports:
            out.write(json.dumps(report) + "\n")
    grouped = [r for r in reports if r["group"]]
    print(
        f"{len(reports)} reports; {len(grouped)} in {len({r['group'] for r in grouped})} groups; "
        f"{len(grouped) - len({r['group'] for r in grouped})} queries"
    )


if __name__ == "__main__":
    main()
