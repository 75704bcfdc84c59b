"""What every view shares: the settings, Redis, and the enqueue helper, reached through the app."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from prometheus_client import Counter
from redis import Redis

from integrations.queue import (
    AsyncGroupCommit,
    Enqueued,
    GroupCommit,
    StagedEnqueue,
    connect_async,
    enqueue_once,
    stage_enqueue,
)
from integrations.queue.jobs import FILE_REPORT, JobSpec
from integrations.queue.report_log import ReportLog, report_log
from integrations.queue.status import StatusStore
from integrations.queue.wire import Commands
from integrations.report import Report
from integrations.settings import Settings

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
    # The same for an event loop; made on first use in the loop that uses it.
    _async_writer: tuple[asyncio.AbstractEventLoop, AsyncGroupCommit] | None = field(
        init=False, default=None
    )

    def __post_init__(self) -> None:
        self.writer = GroupCommit(self.redis)
        # The console's record of reports (integrations/queue/report_log.py).
        self.console: ReportLog = report_log(self.redis, self.settings)
        # The web client's own bound on a Redis reply, kept for the asyncio client.
        kwargs = self.redis.connection_pool.connection_kwargs
        self.redis_timeout: float = kwargs.get("socket_timeout") or 5.0

    def enqueue(self, job: JobSpec, *args: Any, key: str) -> Enqueued:
        """Durably enqueue a job once per (kind, key); raises RedisError if Redis cannot take it."""
        return enqueue_once(self.redis, job, *args, key=key, writer=self.writer)

    def file_report(self, report: Report) -> Enqueued:
        """Queue a report to become a Zendesk ticket, once per idempotency key.

        Returns only when Redis holds the job (acknowledged means durable);
        raises RedisError otherwise, which the caller turns into "retry".
        """
        staged = self.stage_report(report)
        return staged.done(self.writer.write(staged.commands))

    async def file_report_async(self, report: Report) -> Enqueued:
        """`file_report` on an event loop (the ASGI web process's /slack/commands)."""
        staged = self.stage_report(report)
        return staged.done(await self.async_writer().write(staged.commands))

    def stage_report(self, report: Report) -> StagedEnqueue:
        """The writes that file a report, not yet sent."""
        # One round trip: the job, its "queued" status and the console's record of it,
        # listed at once (both only if none is there yet: what is recorded is newer).
        status, console = StatusStore(self.redis), self.console

        def also(commands: Commands) -> None:
            status.mark_queued(report.key_digest, commands)
            console.mark_accepted(report, commands)

        return stage_enqueue(
            self.redis, FILE_REPORT, report.to_job(), key=report.external_id, also=also
        )

    async def close_async(self) -> None:
        """Finish this loop's pending writes and close its Redis connections."""
        if self._async_writer is not None:
            _, writer = self._async_writer
            self._async_writer = None
            await writer.close()

    def async_writer(self) -> AsyncGroupCommit:
        """The running event loop's shared writer (an asyncio client belongs to one loop)."""
        loop = asyncio.get_running_loop()
        if self._async_writer is None or self._async_writer[0] is not loop:
            assert self.settings.redis_url, "web settings always have REDIS_URL"
            # Sent once more when Redis does not answer in time: the intake's writes are all
            # safe to repeat (rq's unique enqueue, SADD, SET NX, the console's record), so a
            # reply lost to a timeout becomes a receipt rather than "please try again" for a
            # report that may have been kept (1 s each: inside Slack's 3 s).
            client = connect_async(self.settings.redis_url, timeout=self.redis_timeout, retries=1)
            self._async_writer = (loop, AsyncGroupCommit(client))
        return self._async_writer[1]


def hub() -> Hub:
    """The Hub of the running app."""
    found: Hub = current_app.extensions["feedback_hub"]
    return found
