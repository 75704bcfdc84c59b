"""What happens when a job has no retries left: it stays in the failed registry (the dead
letters, never deleted by the hub), the reporter hears it is delayed, an operator is alerted."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

from redis import Redis
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry

from integrations import logs
from integrations.errors import Permanent
from integrations.queue import DEFAULT_RETRY, QUEUES, enqueue_once, fetch_job, queue
from integrations.queue.jobs import FILE_REPORT, OPS_ALERT, REPORT_DELAYED, spec_for
from integrations.queue.status import StatusStore
from integrations.report import Report
from workers.context import known_secrets

log = logging.getLogger(__name__)

# How much of a refusing service's response body a dead letter keeps.
RESPONSE_KEPT = 4000


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
        if spec_for(job.func_name) is FILE_REPORT and job.args:
            # The status API says so while the retries run (it never hides "filed").
            StatusStore(connection).set(
                Report.from_job(job.args[0]).key_digest, "delayed", reason=f"{reason}; retrying"
            )
        return
    if isinstance(exc, Permanent) and exc.body:
        # What Zendesk or Slack answered: rq keeps only the traceback, so it is kept here
        # with the job (secrets replaced) for `failed show` and the console.
        job.meta["response_body"] = logs.Redactor(known_secrets())(exc.body)[:RESPONSE_KEPT]
        job.save_meta()
    logs.event(log, "job.dead_letter", logging.ERROR, job=job.id, func=job.func_name, reason=reason)
    if spec_for(job.func_name) is OPS_ALERT:
        return  # an alert about a failed alert would loop
    if spec_for(job.func_name) is FILE_REPORT and job.args:
        _report_failed(connection, job, Report.from_job(job.args[0]), reason)
    enqueue_once(
        connection,
        OPS_ALERT,
        f":rotating_light: job `{job.id}` ({job.func_name}) failed for good: {reason}. "
        f"It is kept in dead letters: `feedback-hub failed show {job.id}`.",
        key=f"{job.id}:{job.number_of_retries or 0}:{job.enqueued_at}",
    )


def _report_failed(connection: Redis, job: Job, report: Report, reason: str) -> None:
    StatusStore(connection).set(
        report.key_digest, "failed", reason=f"{reason}; kept for an operator to retry"
    )
    if report.source.startswith("slack"):
        enqueue_once(
            connection,
            REPORT_DELAYED,
            report.to_job(),
            reason,
            key=f"{report.external_id}:{job.enqueued_at}",
        )


def _reason(exc_type: type[BaseException] | None, exc: BaseException | None) -> str:
    """The failure in a line, secrets replaced: it goes to the report's status (which the
    app reads), the reporter's delay notice and the ops alert."""
    if exc is None:
        return exc_type.__name__ if exc_type else "unknown error"
    if isinstance(exc, Permanent):
        # Not twice: most reasons name their status already ("refused ... (422)").
        detail = (
            f" (HTTP {exc.status})" if exc.status and f"({exc.status})" not in exc.reason else ""
        )
        return logs.Redactor(known_secrets())(f"{exc.reason}{detail}")
    text = str(exc) or type(exc).__name__
    return logs.Redactor(known_secrets())(text)[:500]


# ---------------------------------------------------------------- operator tools


@dataclass(frozen=True)
class DeadLetter:
    """A job that exhausted its retries, as an operator sees it."""

    job_id: str
    queue: str
    func: str
    failed_at: str
    reason: str
    summary: str
    attempts: int
    # The refusing service's response body, when it gave one ("" otherwise).
    response: str = ""


def dead_letters(connection: Redis) -> list[DeadLetter]:
    """Every dead letter, oldest first, across the hub's queues."""
    out = []
    redact = logs.Redactor(known_secrets())  # the settings read once, not once a letter
    for name in QUEUES:
        registry = FailedJobRegistry(queue=queue(connection, name))
        for jid in registry.get_job_ids(cleanup=False):
            letter = dead_letter(connection, jid, redact)
            if letter is not None:
                out.append(letter)
    return sorted(out, key=lambda d: d.failed_at)


def dead_letter(
    connection: Redis, jid: str, redact: logs.Redactor | None = None
) -> DeadLetter | None:
    """One dead letter by job id, or None when there is no such failed job."""
    job = fetch_job(connection, jid)
    if job is None or job.get_status(refresh=False) != JobStatus.FAILED:
        return None
    result = job.latest_result()
    exc = (result.exc_string if result is not None else None) or job._exc_info or ""
    last_line = next((ln for ln in reversed(exc.strip().splitlines()) if ln.strip()), "unknown")
    return DeadLetter(
        job_id=job.id,
        queue=job.origin,
        func=job.func_name or "?",
        failed_at=(job.ended_at or job.enqueued_at or datetime.now(UTC)).isoformat(),
        # Scrubbed when rq stored it (HubWorker.handle_job_failure); again here for a
        # dead letter an older version kept.
        reason=(redact or logs.Redactor(known_secrets()))(last_line.strip())[:300],
        summary=_summary(job),
        attempts=(job.number_of_retries or 0) + 1,
        response=str(job.meta.get("response_body") or ""),
    )


def replay(connection: Redis, jid: str) -> DeadLetter:
    """Put a dead letter back on its queue with a fresh set of retries."""
    letter = dead_letter(connection, jid)
    if letter is None:
        raise KeyError(f"no dead letter with id {jid!r} (see `feedback-hub failed list`)")
    job = fetch_job(connection, jid)
    assert job is not None
    job.retries_left = job.retries_left or (DEFAULT_RETRY.max if job.retry_intervals else None)
    job.save()
    FailedJobRegistry(queue=queue(connection, job.origin)).requeue(job)
    if spec_for(job.func_name) is FILE_REPORT and job.args:
        StatusStore(connection).set(Report.from_job(job.args[0]).key_digest, "queued")
    logs.event(log, "job.replayed", job=jid, func=job.func_name)
    return letter


def _summary(job: Job) -> str:
    """What the job was about, without secrets or full bodies."""
    if spec_for(job.func_name) is FILE_REPORT and job.args:
        try:
            report = Report.from_job(job.args[0])
        except ValueError:
            return "file_report (unreadable report)"
        return f"{report.source} report {report.key_digest}: {report.subject[:80]!r}"
    return job.func_name or "?"
