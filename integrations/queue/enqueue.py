"""The enqueue helper that never queues a piece of work twice, and rq's job hash built once."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

from redis import Redis
from rq import Callback, Queue, Retry
from rq import __version__ as rq_version
from rq.job import Job
from rq.scripts import UNIQUE_ENQUEUE_SCRIPT, _build_hset_args

from integrations.queue import wire
from integrations.queue.connection import queue
from integrations.queue.group_commit import GroupCommit, write_now
from integrations.queue.jobs import FILE_REPORT, JobSpec
from integrations.queue.wire import Commands
from integrations.report import digest

# A finished job's hash is kept this long, so the same job id is refused as a
# duplicate for a day; past that, the job's own idempotency (the ticket's
# external_id) is what keeps effects single.
DEDUPE_SECONDS = 24 * 3600
# Long outages are ridden out by rq retries, growing to hourly: about 12 hours in all.
# One interval per retry: rq uses the list's first value for retries beyond its length.
RETRY_INTERVALS = [10, 30, 60, 120, 300, 600, 900, 1800] + [3600] * 11
# HUB_RETRY_INTERVALS ("2,3,5"): a faster schedule, for the fault-injection suite
# and the benchmarks only; production keeps the schedule above. Read by the
# process that enqueues (the intervals travel with each job).
_RETRY_OVERRIDE = os.environ.get("HUB_RETRY_INTERVALS", "").strip()
_FAST = [int(s) for s in _RETRY_OVERRIDE.split(",")] if _RETRY_OVERRIDE else []
# As many tries as production, the last fast interval repeated.
_INTERVALS = (
    [*_FAST, *[_FAST[-1]] * (len(RETRY_INTERVALS) - len(_FAST))] if _FAST else RETRY_INTERVALS
)
DEFAULT_RETRY = Retry(max=len(_INTERVALS), interval=_INTERVALS)
# Failed jobs are dead letters: kept until an operator replays or removes them.
KEEP_FOREVER = -1
JOB_TIMEOUT = 120
# Runs after every failed attempt; on the last one it tells the reporter and an operator.
JOB_FAILED = "workers.deadletters.job_failed"

UNIQUE_ENQUEUE_SHA = wire.script(UNIQUE_ENQUEUE_SCRIPT)

_JOB_ID = re.compile(r"^[A-Za-z0-9_-]+$")


def job_id(kind: str, key: str) -> str:
    """The job id for a piece of work identified by `key`: the same key, the same id."""
    if not _JOB_ID.match(kind):
        raise ValueError(f"job kind {kind!r} must match [A-Za-z0-9_-]+")
    return f"{kind}-{digest(kind, key)}"


@dataclass(frozen=True)
class Enqueued:
    """What the enqueue helper did: the job's id, and whether this call created it."""

    job_id: str
    created: bool


class EnqueueOptions(TypedDict, total=False):
    """How a job is kept: its retries, timeout, meta, and the caller's own writes."""

    retry: Retry | None
    timeout: int
    meta: dict[str, Any] | None
    also: Callable[[Commands], object] | None


def enqueue_once(
    connection: Redis,
    job: JobSpec,
    *args: Any,
    key: str,
    writer: GroupCommit | None = None,
    **options: Unpack[EnqueueOptions],
) -> Enqueued:
    """Enqueue `job(*args)` once per (job.kind, key); a repeat returns the existing job's id.

    Returns only after Redis has the job: acknowledged means durable. Raises
    redis.exceptions.RedisError when Redis cannot take it. `options` (stage_enqueue's):
    `also` may add the caller's own writes, which travel in the same round trip. With a
    `writer`, concurrent callers share round trips (GroupCommit).
    """
    staged = stage_enqueue(connection, job, *args, key=key, **options)
    results = (
        writer.write(staged.commands)
        if writer is not None
        else write_now(connection, staged.commands)
    )
    return staged.done(results)


@dataclass(frozen=True)
class StagedEnqueue:
    """An enqueue ready to go to Redis: its commands, and how to read their replies.

    The same write whether it is sent by a thread (GroupCommit) or an event loop
    (AsyncGroupCommit).
    """

    job_id: str
    commands: Commands

    def done(self, results: list[Any]) -> Enqueued:
        """What the enqueue did, from the replies to `commands` (rq's script answers 1 if new)."""
        return Enqueued(self.job_id, created=results[1] == 1)


def stage_enqueue(
    connection: Redis,
    job: JobSpec,
    *args: Any,
    key: str,
    retry: Retry | None = DEFAULT_RETRY,
    timeout: int = JOB_TIMEOUT,
    meta: dict[str, Any] | None = None,
    also: Callable[[Commands], object] | None = None,
) -> StagedEnqueue:
    """The writes of `enqueue_once`, not yet sent (see there for the arguments)."""
    jid = job_id(job.kind, key)
    template = _template(connection, job, retry, timeout, meta or {})
    # What rq's enqueue(unique=True) does, in one round trip instead of two: the
    # queue's registration, then rq's own atomic check-save-push script (rq.scripts)
    # by EVALSHA, then the caller's writes. Every round trip counts against Slack's
    # 3 s and the intake's throughput.
    commands = Commands().add_encoded(template.registration)
    # rq logs the description; the default is the call with its arguments, which
    # would put whole reports in the logs.
    description = f"{job.name} {jid}"
    commands.add_encoded(template.enqueue_command(jid, args, description=description))
    if also is not None:
        also(commands)
    return StagedEnqueue(jid, commands)


class JobTemplate:
    """The hash rq writes for one kind of job (queue, function, retry, timeouts), built by rq.

    Building an rq Job and serializing it field by field cost more than the rest of an
    intake request's Python. Between two jobs of one kind only four fields differ: the
    call's arguments (`data`), the description and two timestamps. Those are filled in
    per job exactly as rq's Job.to_dict fills them; every other field is rq's own,
    computed once. tests/integrations/queue/test_enqueue.py checks the result against
    rq's for the same job.
    """

    PER_JOB = ("data", "description", "created_at", "enqueued_at")

    def __init__(
        self,
        q: Queue,
        func: str,
        retry: Retry | None,
        timeout: int,
        meta: dict[str, Any],
        at_front: bool = False,
    ) -> None:
        job = q.create_job(
            func,
            job_id="template",
            description="",
            retry=retry,
            timeout=timeout,
            result_ttl=DEDUPE_SECONDS,
            failure_ttl=KEEP_FOREVER,
            on_failure=Callback(JOB_FAILED),
            meta=meta,
        )
        q._prepare_for_queue(job)
        self.fields: list[Any] = _build_hset_args(job)
        self._at = {name: i + 1 for i, name in enumerate(self.fields) if i % 2 == 0}
        missing = [name for name in self.PER_JOB if name not in self._at]
        if missing:
            raise RuntimeError(f"rq's job hash has no {', '.join(missing)} field: rq changed")
        self.func_name = func
        self.serializer = job.serializer
        self.ttl = job.ttl if job.ttl is not None else -1
        # SADD rq:queues <queue>: rq registers a queue on every enqueue; always the same bytes.
        self.registration = wire.command("SADD", q.redis_queues_keys, q.key)
        # rq's unique-enqueue script call, encoded once: what changes per job is a Slot.
        # The script pushes the job id on the queue's left ("L": taken next) or right.
        call: list[Any] = [
            "EVALSHA", UNIQUE_ENQUEUE_SHA, 2, wire.Slot("job_key"), q.key, wire.Slot("job_id"),
            "L" if at_front else "R", self.ttl, *self.fields,
        ]  # fmt: skip
        for name in self.PER_JOB:
            call[8 + self._at[name]] = wire.Slot(name)
        self._call = wire.CommandTemplate(*call)

    def values_for(self, args: tuple[Any, ...], *, description: str) -> dict[str, Any]:
        """The fields that differ between two jobs of this kind, for one calling `func(*args)`."""
        # Job.data and Job.to_dict: (func name, instance, args, kwargs), serialized, zlib'd.
        data = wire.deflate(self.serializer.dumps((self.func_name, None, args, {})))
        stamp = wire.utc_stamp()
        return {"data": data, "description": description, "created_at": stamp, "enqueued_at": stamp}

    def fields_for(self, args: tuple[Any, ...], *, description: str) -> list[Any]:
        """The HSET field/value list of one job of this kind calling `func(*args)`."""
        fields = list(self.fields)
        for name, value in self.values_for(args, description=description).items():
            fields[self._at[name]] = value
        return fields

    def enqueue_command(self, jid: str, args: tuple[Any, ...], *, description: str) -> bytes:
        """rq's unique-enqueue script call for this job, in wire format (one reply: 1 if new)."""
        values = self.values_for(args, description=description)
        values["job_key"] = Job.key_for(jid)
        values["job_id"] = jid
        return self._call.fill(values)


_TEMPLATES: dict[tuple[Any, ...], JobTemplate] = {}


def _template(
    connection: Redis, job: JobSpec, retry: Retry | None, timeout: int, meta: dict[str, Any]
) -> JobTemplate:
    """The template of this kind of job, built on first use (a handful of kinds per process)."""
    shape = (
        job,
        (retry.max, tuple(retry.intervals), retry.enqueue_at_front) if retry else None,
        timeout,
        # Most jobs have no meta (every intake request): no encoding for them.
        json.dumps(meta, sort_keys=True, default=repr) if meta else "",
    )
    found = _TEMPLATES.get(shape)
    if found is None:
        q = queue(connection, job.queue)
        found = _TEMPLATES[shape] = JobTemplate(q, job.func, retry, timeout, meta, job.at_front)
    return found


def check_rq_format(connection: Redis) -> None:
    """Stop at start, not on the first report, when the installed rq reads our job hash
    differently: the hub writes rq's hash itself (JobTemplate), so an rq release that
    changed its format would otherwise fail every job after a deploy.
    """
    args = ({"subject": "rq format check"},)
    template = _template(connection, FILE_REPORT, DEFAULT_RETRY, JOB_TIMEOUT, {})
    fields = template.fields_for(args, description="rq format check")
    raw = {wire.arg(fields[i]): wire.arg(fields[i + 1]) for i in range(0, len(fields), 2)}
    job = Job("rq-format-check", connection=connection)
    try:
        job.restore(raw)
        read: tuple[Any, ...] = (job.func_name, job.args, job.origin, job.retries_left)
    except Exception as exc:  # whatever rq raises for a hash it cannot read
        read = (type(exc).__name__, str(exc))
    wanted = (FILE_REPORT.func, args, FILE_REPORT.queue, DEFAULT_RETRY.max)
    if read != wanted:
        raise RuntimeError(
            f"the installed rq {rq_version} reads the hub's job hash as {read!r}, not "
            f"{wanted!r}: pin rq to the version in pyproject.toml"
        )
