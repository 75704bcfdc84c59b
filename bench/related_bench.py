"""Related-issue index: query latency at 10,000 and 100,000 reports, and Redis memory per report.

    .venv/bin/python bench/related_bench.py [--sizes 10000,100000] [--queries 300]

Reports are synthesized from the words of shared/data/duplicates/hadoop.jsonl: each one takes
a real report's title and body lengths and draws its words from the pooled titles and bodies
(so term frequencies follow the real ones). Queries are real reports from the same file,
asked against the synthetic index through RelatedIndex.query, as a worker asks. Redis is a
private redis-server started for the run (memory is its INFO used_memory, before and after).

Each size is queried four times back to back: posting lists read from the sorted sets (the
path without the posting cache); with the cache, empty then filled; and with the cache
while each query is followed by indexing one more report, as a worker does.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rules.related.index import IndexedDoc, RelatedIndex  # noqa: E402
from rules.related.scoring import HUB  # noqa: E402
from workers.procs import free_port, start_redis, stop  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "duplicates" / "hadoop.jsonl"
WORD = re.compile(r"\S+")
MAX_BODY_WORDS = 2000


def load(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def synthesize(
    rows: list[dict[str, str]], n: int, rng: random.Random, now: datetime
) -> Iterator[IndexedDoc]:
    """n reports: real title/body lengths, words drawn from the pooled real words."""
    title_words = [w for r in rows for w in WORD.findall(r["title"])]
    body_words = [w for r in rows for w in WORD.findall(r["body"])]
    shapes = [
        (len(WORD.findall(r["title"])), min(len(WORD.findall(r["body"])), MAX_BODY_WORDS))
        for r in rows
    ]
    for i in range(n):
        t, b = rng.choice(shapes)
        yield IndexedDoc(
            # Numbers, as the workers index Zendesk ticket ids.
            id=str(1_000_000 + i),
            created_at=now - timedelta(seconds=rng.uniform(0, 89 * 86400)),
            title=" ".join(rng.choices(title_words, k=max(t, 1))),
            body=" ".join(rng.choices(body_words, k=b)),
        )


def used_memory(client: Redis) -> int:
    return int(client.info("memory")["used_memory"])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--posting-limit", type=int, default=HUB.posting_limit, help="postings read per term"
    )
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    rows = load(args.data)
    rng = random.Random(8)
    now = datetime.now(UTC)
    queries = [
        IndexedDoc(id=f"q{i}", created_at=now, title=r["title"], body=r["body"])
        for i, r in enumerate(rng.sample(rows, min(args.queries, len(rows))))
    ]

    print("command: .venv/bin/python bench/related_bench.py " + " ".join(sys.argv[1:]))
    print(f"machine: {os.cpu_count()} cores; Redis and the client on the same machine")
    with tempfile.TemporaryDirectory() as directory:
        port = free_port()
        proc = start_redis(port, Path(directory))
        client = Redis(host="127.0.0.1", port=port)
        try:
            method = dataclasses.replace(HUB, posting_limit=args.posting_limit)
            index = RelatedIndex(client, prefix="bench:related", method=method)
            base = used_memory(client)
            # The largest index, plus the reports indexed between queries.
            docs = synthesize(rows, sizes[-1] + 2 * len(sizes) * len(queries), rng, now)
            built = 0
            results = []
            adds: list[float] = []
            add_times = []
            started = time.perf_counter()
            for size in sizes:
                while built < size:
                    batch = [next(docs) for _ in range(min(args.batch, size - built))]
                    index.add_many(batch)
                    built += len(batch)
                build_s = time.perf_counter() - started
                memory = used_memory(client) - base
                # Back to back on the same index: posting lists read from the sorted sets,
                # then from the posting cache (first pass fills it, second reads it).
                plain = RelatedIndex(
                    client, prefix="bench:related", method=method, posting_cache=False
                )
                for q in queries[:20]:  # warm the connection and caches
                    plain.query(q)
                stale = list(client.scan_iter("bench:related:top:*", count=10000))
                if stale:
                    client.delete(*stale)
                for label, idx in (
                    ("sorted sets", plain),
                    ("cache, 1st", index),
                    ("cache, 2nd", index),
                    ("cache+adds", index),
                    # What the grouping job runs: the query, then the join features of
                    # its three best candidates (rules/related/joins.py).
                    ("group_for+adds", index),
                ):
                    latencies = []
                    for q in queries:
                        t0 = time.perf_counter()
                        if label == "group_for+adds":
                            idx.group_for(q, k=10)
                        else:
                            idx.query(q, k=10)
                        latencies.append((time.perf_counter() - t0) * 1000)
                        if label.endswith("+adds"):
                            # As a worker does: each report is queried, then indexed, and
                            # its postings enter (are written into) cached best postings.
                            t0 = time.perf_counter()
                            index.add(next(docs))
                            adds.append((time.perf_counter() - t0) * 1000)
                            built += 1
                    results.append(
                        (
                            size,
                            label,
                            statistics.median(latencies),
                            percentile(latencies, 99),
                            memory / size,
                            build_s,
                        )
                    )
                add_times.append((size, statistics.median(adds), percentile(adds, 99)))
                adds.clear()
                print(f"  indexed {size} in {build_s:.0f} s", flush=True)
        finally:
            client.close()
            stop(proc)

    print()
    header = f"{'reports':>9} {'postings from':>13} {'p50 ms':>8} {'p99 ms':>8}"
    print(f"{header} {'bytes/report':>13} {'build s':>8}")
    for size, label, p50, p99, per_report, build_s in results:
        line = f"{size:>9} {label:>13} {p50:>8.2f} {p99:>8.2f}"
        print(f"{line} {per_report:>13.0f} {build_s:>8.0f}")
    for size, p50, p99 in add_times:
        print(f"{size:>9} {'one add':>13} {p50:>8.2f} {p99:>8.2f}  (index.add in the +adds rows)")
    print(f"({len(queries)} queries: real hadoop.jsonl reports, k=10, ", end="")
    print(f"{args.posting_limit} postings read per term; load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
