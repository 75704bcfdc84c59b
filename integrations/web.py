"""What every view shares: the settings, Redis, and the enqueue helper, reached through the app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from prometheus_client import Counter
from redis import Redis

from integrations.report import Report
from integrations.settings import Settings
from workers.queues import TICKETS, Enqueued, GroupCommit, enqueue_once
from workers.status import StatusStore

# The job that turns a report into a ticket (by import path: the web process
# never imports worker code).
FILE_REPORT = "workers.jobs.file_report"

# Every answer of this web process, by route and status (/metrics).
HTTP_REQUESTS = Counter(
    "feedback_hub_http_requests",
    "HTTP requests answered by this web process",
    ["route", "status"],
)

# A readiness check answers (ok, detail); /readyz runs every registered one.
ReadinessCheck = Callable[[], tuple[bool, str]]


@dataclass
class Hub:
    """The web process's shared state, built once by create_app."""

    settings: Settings
    redis: Redis
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    # Requests handled at the same moment share their round trips to Redis.
    writer: GroupCommit = field(init=False)

    def __post_init__(self) -> None:
        self.writer = GroupCommit(self.redis)

    def enqueue(self, queue_name: str, func: str, *args: Any, kind: str, key: str) -> Enqueued:
        """Durably enqueue a job once per (kind, key); raises RedisError if Redis cannot take it."""
        return enqueue_once(
            self.redis, queue_name, func, *args, kind=kind, key=key, writer=self.writer
        )

    def file_report(self, report: Report) -> Enqueued:
        """Queue a report to become a Zendesk ticket, once per idempotency key.

        Returns only when Redis holds the job (acknowledged means durable);
        raises RedisError otherwise, which the caller turns into "retry".
        """
        # One round trip: the job, and its "queued" status (SET NX: a state
        # already recorded is newer and stays).
        status = StatusStore(self.redis)
        return enqueue_once(
            self.redis,
            TICKETS,
            FILE_REPORT,
            report.to_job(),
            kind="file-report",
            key=report.external_id,
            also=lambda commands: status.mark_queued(report.key_digest, commands),
            writer=self.writer,
        )


def hub() -> Hub:
    """The Hub of the running app."""
    found: Hub = current_app.extensions["feedback_hub"]
    return found
