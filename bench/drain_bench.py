"""Draining a backlog against Zendesk's rate limit: how much of the budget the hub uses.

A backlog of reports (built as the Slack intake builds them, enqueued through
the hub's own enqueue path, Hub.file_report) is drained by K Procfile workers
against the Zendesk sandbox limited to L requests per minute. Printed per limit:
tickets per minute, the share of the budget used while the backlog lasts
(Zendesk requests answered, 429s excluded, / (L x minutes)), the 429s received,
and Zendesk requests per ticket (a ticket needs one create; the group list is
fetched once and cached).

    .venv/bin/python -m bench.drain_bench [--reports 2000] [--limits 200,700] [--workers 4]

The full run (2,000 reports at 200 then 700 a minute) takes about 14 minutes.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from integrations.queue import connect
from integrations.settings import Settings
from integrations.slack.payloads import parse_command
from integrations.slack.reports import command_report
from integrations.web import Hub
from tests.faults.harness import SLACK_USERS, Cluster


@dataclass
class Drain:
    """One drain's numbers."""

    limit: int
    reports: int
    workers: int
    seconds: float
    tickets: int
    requests: int  # Zendesk requests answered, 429s included
    throttled: int
    by_route: dict[str, dict[str, int]]

    @property
    def minutes(self) -> float:
        return self.seconds / 60

    @property
    def tickets_per_minute(self) -> float:
        return self.tickets / self.minutes

    @property
    def budget_used(self) -> float:
        return (self.requests - self.throttled) / (self.limit * self.minutes)

    @property
    def requests_per_ticket(self) -> float:
        return self.requests / self.tickets if self.tickets else float("nan")


def drain(limit: int, reports: int, workers: int, workdir: Path) -> Drain:
    """Start the hub, enqueue the backlog, and time it until the last ticket exists."""
    with Cluster(workdir, workers=workers) as cluster:
        cluster.faults(rate_limit=limit)
        settings = Settings.from_env("web", cluster.env, read_dotenv=False)
        hub = Hub(settings=settings, redis=connect(cluster.redis_url))
        bodies = [
            cluster.slack_report(f"b{n}", SLACK_USERS[n % len(SLACK_USERS)])[0]
            for n in range(reports)
        ]
        requests.delete(f"{cluster.zendesk_url}/__sandbox/stats", timeout=10)
        start = time.monotonic()
        for body in bodies:
            hub.file_report(command_report(parse_command(body)))
        enqueued = time.monotonic() - start
        deadline = start + reports / (limit * 0.8) * 60 + 120
        while time.monotonic() < deadline:
            stats = cluster.zendesk_stats()
            created = stats["by_route"].get("POST /api/v2/tickets.json", {}).get("201", 0)
            if created >= reports:
                break
            time.sleep(0.5)
        else:
            raise SystemExit(f"the backlog was not drained in time: {created} of {reports}")
        seconds = time.monotonic() - start
        stats = cluster.zendesk_stats()
        print(
            f"  limit {limit}/min: {reports} enqueued in {enqueued:.1f} s, drained in "
            f"{seconds:.0f} s",
            file=sys.stderr,
        )
        return Drain(
            limit=limit,
            reports=reports,
            workers=workers,
            seconds=seconds,
            tickets=created,
            requests=int(stats["requests"]),
            throttled=int(stats["by_status"].get("429", 0)),
            by_route=stats["by_route"],
        )


def table(results: list[Drain]) -> str:
    """The results as a Markdown table, with the requests by route underneath."""
    lines = [
        "| limit/min | reports | workers | minutes | tickets/min | budget used | 429s | "
        "requests/ticket |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.limit} | {r.reports} | {r.workers} | {r.minutes:.2f} | "
            f"{r.tickets_per_minute:.0f} | {r.budget_used:.1%} | {r.throttled} | "
            f"{r.requests_per_ticket:.3f} |"
        )
    lines.append("")
    for r in results:
        routes = ", ".join(
            f"{route} {dict(statuses)}" for route, statuses in sorted(r.by_route.items())
        )
        lines.append(f"requests at {r.limit}/min: {routes}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the drains and print the table with the command that produced it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--limits", default="200,700", help="requests per minute, comma separated")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    # Stopped with SIGTERM, still stop the processes it started (the `with` blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: list[Any] = []
    for limit in (int(x) for x in args.limits.split(",")):
        with tempfile.TemporaryDirectory(prefix="drain-bench-") as tmp:
            results.append(drain(limit, args.reports, args.workers, Path(tmp)))
    command = "python -m bench.drain_bench " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"$ {command.strip()}\n")
    print(table(results))


if __name__ == "__main__":
    main()
