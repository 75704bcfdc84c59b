"""What happens when a job has no retries left: it stays in the failed registry (the dead
letters, never deleted by the hub), the reporter hears it is delayed, an operator is alerted."""

from __future__ import annotations

import logging
from types import TracebackType

from redis import Redis
from rq.job import Job

from integrations import logs
from integrations.errors import Permanent
from integrations.report import Report
from workers.queues import NOTIFY, enqueue_once
from workers.status import StatusStore

log = logging.getLogger(__name__)

OPS_ALERT = "integrations.slack.jobs.ops_alert"
REPORT_DELAYED = "integrations.slack.jobs.report_delayed"
FILE_REPORT = "workers.jobs.file_report"


def job_failed(
    job: Job,
    connection: Redis,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> None:
    """rq's on_failure callback: runs after every failed attempt, before the retry decision."""
    reason = _reason(exc_type, exc)
    if job.retries_left and not isinstance(exc, Permanent):
        logs.event(
            log, "job.attempt_failed", logging.WARNING, job=job.id, reason=reason,
            retries_left=job.retries_left,
        )  # fmt: skip
        return
    logs.event(log, "job.dead_letter", logging.ERROR, job=job.id, func=job.func_name, reason=reason)
    if job.func_name == OPS_ALERT:
        return  # an alert about a failed alert would loop
    if job.func_name == FILE_REPORT and job.args:
        _report_failed(connection, job, Report.from_job(job.args[0]), reason)
    enqueue_once(
        connection,
        NOTIFY,
        OPS_ALERT,
        f":rotating_light: job `{job.id}` ({job.func_name}) failed for good: {reason}. "
        f"It is kept in dead letters: `feedback-hub failed show {job.id}`.",
        kind="ops-alert",
        key=f"{job.id}:{job.number_of_retries or 0}:{job.enqueued_at}",
    )


def _report_failed(connection: Redis, job: Job, report: Report, reason: str) -> None:
    StatusStore(connection).set(
        report.key_digest, "failed", reason=f"{reason}; kept for an operator to retry"
    )
    if report.source.startswith("slack"):
        enqueue_once(
            connection,
            NOTIFY,
            REPORT_DELAYED,
            report.to_job(),
            reason,
            kind="report-delayed",
            key=f"{report.external_id}:{job.enqueued_at}",
        )


def _reason(exc_type: type[BaseException] | None, exc: BaseException | None) -> str:
    if exc is None:
        return exc_type.__name__ if exc_type else "unknown error"
    if isinstance(exc, Permanent):
        detail = f" (HTTP {exc.status})" if exc.status else ""
        return f"{exc.reason}{detail}"
    text = str(exc) or type(exc).__name__
    return text[:500]
