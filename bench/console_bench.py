"""The console's Reports page over a full store: time per page and memory per stored report.

Fills a private redis-server with N reports written by the intake job's own writer
(ReportLog.record, decisions from the real rules engine), then asks the Flask app for
the Reports page (50 rows) as a signed-in browser would, unfiltered and filtered, and
prints p50/p95 per kind and Redis memory per stored report.

    .venv/bin/python -m bench.console_bench [--reports 100000] [--requests 200]

Target (issue 19): p95 under 100 ms for 50 rows over 100,000 stored reports.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis import Redis

from app import create_app
from integrations.queue.report_log import ReportLog
from integrations.report import Report
from integrations.settings import Settings
from rules.engine import evaluate
from rules.store import store_for
from workers.procs import free_port, start_redis, stop

TEXTS = [
    ("I was charged twice this month", "please refund the second invoice"),
    ("The app crashes on launch", "crash every time since the update, iOS 17"),
    ("Export button does nothing", "on the reports page, nothing downloads"),
    ("Cannot log in", "password reset email never arrives"),
    ("Dark mode request", "would love a dark theme for the dashboard"),
    ("Slow search", "searching customers takes 20 seconds"),
    ("Invoice address wrong", "the billing address on the invoice is outdated"),
    ("Sync stuck", "android app stuck on syncing, offline since yesterday"),
]
SOURCES = ["slack_command", "slack_modal", "slack_shortcut", "mobile"]


def fill(redis: Redis, count: int) -> float:
    """Store `count` reports the way the intake job does; seconds it took."""
    rules = store_for("rules/default.yml").current()
    log = ReportLog(redis, max_reports=count, days=90)
    rng = random.Random(19)
    start = datetime.now(UTC) - timedelta(days=30)
    decisions: dict[tuple[int, str], dict[str, object]] = {}
    began = time.perf_counter()
    for n in range(count):
        which, source = rng.randrange(len(TEXTS)), rng.choice(SOURCES)
        subject, description = TEXTS[which]
        report = Report(
            source=source,
            idempotency_key=f"bench-{n}",
            subject=f"{subject} ({n})",
            description=description,
            reporter={"name": f"Reporter {n % 500}", "email": f"r{n % 500}@example.com"},
            fields={"platform": "ios" if "iOS" in description else None},
            received_at=start + timedelta(seconds=n * 25),
        )
        key = (which, source)
        if key not in decisions:
            decisions[key] = evaluate(report, rules).to_json()
        log.record(report, decision=decisions[key], state="filed", event="ticket #1 created")
    return time.perf_counter() - began


def timed(client: object, path: str, requests: int) -> tuple[float, float, int]:
    samples = []
    size = 0
    for _ in range(requests):
        began = time.perf_counter()
        response = client.get(path)  # type: ignore[attr-defined]
        samples.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, (path, response.status_code)
        size = response.text.count("<tr>")
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1], size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    port = free_port()
    proc = start_redis(port, Path(tempfile.mkdtemp(prefix="console-bench-")))
    try:
        url = f"redis://127.0.0.1:{port}/0"
        redis = Redis.from_url(url)
        empty = int(redis.info("memory")["used_memory"])
        seconds = fill(redis, args.reports)
        used = int(redis.info("memory")["used_memory"]) - empty
        stored = ReportLog(redis).count()
        sample = [k for k in redis.scan_iter("hub:console:report:*", count=1000)][:1000]
        record_bytes = statistics.mean(int(redis.memory_usage(k) or 0) for k in sample)
        settings = Settings.from_env(
            "web",
            {
                "REDIS_URL": url,
                "SLACK_SIGNING_SECRET": "bench-signing-secret",
                "SLACK_CLIENT_ID": "bench.client",
                "SLACK_CLIENT_SECRET": "bench-client-secret",
                "SECRET_KEY": "bench-secret-key-" + "x" * 32,
            },
            read_dotenv=False,
        )
        client = create_app(settings).test_client()
        with client.session_transaction() as session:
            session["user"] = {
                "user_id": "U0BENCH",
                "name": "Bench",
                "email": None,
                "team_id": None,
            }
        print(
            f"stored {stored:,} reports in {seconds:.1f} s ({seconds / stored * 1e6:.0f} us each)"
        )
        print(
            f"redis memory: {used / stored:,.0f} bytes per stored report (used_memory delta, "
            f"indexes included); {record_bytes:,.0f} bytes per record key (MEMORY USAGE)"
        )
        print(f"{'page':<44} {'p50 ms':>8} {'p95 ms':>8} {'rows':>5}")
        for label, path in (
            ("Reports, 50 newest", "/admin/reports"),
            ("Reports rows (the htmx poll)", "/admin/reports/rows"),
            ("Reports, tag=billing", "/admin/reports?tag=billing"),
            ("Reports, source=mobile & status=filed", "/admin/reports?source=mobile&status=filed"),
            ("Reports, text=dashboard", "/admin/reports?text=dashboard"),
        ):
            p50, p95, rows = timed(client, path, args.requests)
            print(f"{label:<44} {p50:>8.1f} {p95:>8.1f} {rows:>5}")
        redis.close()
    finally:
        stop(proc)


if __name__ == "__main__":
    main()
