"""Redis connection, the named queues, and the enqueue helper that never queues a report twice."""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Callback, Queue, Retry
from rq.job import Job
from rq.scripts import UNIQUE_ENQUEUE_SCRIPT, _build_hset_args
from rq.utils import now, utcformat

from integrations.report import digest

# Worker priority order: a report waiting to become a ticket goes first, then
# Zendesk ticket events, then Slack notifications.
TICKETS = "tickets"
EVENTS = "events"
NOTIFY = "notify"
QUEUES = (TICKETS, EVENTS, NOTIFY)

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

# Redis names scripts by their SHA-1 (EVALSHA); not a security use.
_UNIQUE_ENQUEUE_SHA = hashlib.sha1(
    UNIQUE_ENQUEUE_SCRIPT.encode(), usedforsecurity=False
).hexdigest()

_JOB_ID = re.compile(r"^[A-Za-z0-9_-]+$")


def connect(url: str, *, timeout: float = 5.0) -> Redis:
    """A Redis client with bounded timeouts, so a dead Redis is an error and not a hang."""
    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=min(timeout, 2.0),
        health_check_interval=30,
    )


def queue(connection: Redis, name: str) -> Queue:
    """One of the hub's named queues."""
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}; the hub's queues are {', '.join(QUEUES)}")
    return Queue(name, connection=connection)


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


def enqueue_once(
    connection: Redis,
    queue_name: str,
    func: str,
    *args: Any,
    kind: str,
    key: str,
    retry: Retry | None = DEFAULT_RETRY,
    timeout: int = JOB_TIMEOUT,
    meta: dict[str, Any] | None = None,
    also: Callable[[Pipeline], object] | None = None,
    writer: GroupCommit | None = None,
) -> Enqueued:
    """Enqueue `func(*args)` once per (kind, key); a repeat returns the existing job's id.

    `func` is the job's import path ("workers.jobs.file_report"), so the web
    process never imports worker code.

    Returns only after Redis has the job: acknowledged means durable. Raises
    redis.exceptions.RedisError when Redis cannot take it. `also` may add the
    caller's own writes, which travel in the same round trip. With a `writer`,
    concurrent callers share round trips (GroupCommit).
    """
    jid = job_id(kind, key)
    q = queue(connection, queue_name)
    template = _template(q, func, retry, timeout, meta or {})
    # rq logs the description; the default is the call with its arguments, which
    # would put whole reports in the logs.
    fields = template.fields_for(args, description=f"{func.rsplit('.', 1)[-1]} {jid}")
    job_key = Job.key_for(jid)

    # What rq's enqueue(unique=True) does, in one round trip instead of two: its
    # own atomic check-save-push script (rq.scripts), by EVALSHA in a pipeline
    # with the queue's registration and the caller's writes. Every round trip
    # counts against Slack's 3 s and the intake's throughput.
    def stage(pipe: Pipeline) -> None:
        pipe.sadd(q.redis_queues_keys, q.key)
        pipe.evalsha(_UNIQUE_ENQUEUE_SHA, 2, job_key, q.key, jid, "R", template.ttl, *fields)
        if also is not None:
            also(pipe)

    results = writer.write(stage) if writer is not None else _write_now(connection, stage)
    return Enqueued(jid, created=results[1] == 1)


Stage = Callable[[Pipeline], object]


class JobTemplate:
    """The hash rq writes for one kind of job (queue, function, retry, timeouts), built by rq.

    Building an rq Job and serializing it field by field cost more than the rest of an
    intake request's Python. Between two jobs of one kind only four fields differ: the
    call's arguments (`data`), the description and two timestamps. Those are filled in
    per job exactly as rq's Job.to_dict fills them; every other field is rq's own,
    computed once. tests/test_queue.py checks the result against rq's for the same job.
    """

    PER_JOB = ("data", "description", "created_at", "enqueued_at")

    def __init__(
        self, q: Queue, func: str, retry: Retry | None, timeout: int, meta: dict[str, Any]
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

    def fields_for(self, args: tuple[Any, ...], *, description: str) -> list[Any]:
        """The HSET field/value list of one job of this kind calling `func(*args)`."""
        fields = list(self.fields)
        at = self._at
        # Job.data and Job.to_dict: (func name, instance, args, kwargs), serialized, zlib'd.
        fields[at["data"]] = _deflate(self.serializer.dumps((self.func_name, None, args, {})))
        fields[at["description"]] = description
        stamp = utcformat(now())
        fields[at["created_at"]] = stamp
        fields[at["enqueued_at"]] = stamp
        return fields


def _deflate(data: bytes) -> bytes:
    """zlib.compress(data) as rq does it (level 6), with a quarter of the hash memory.

    zlib.compress sets up some 256 KB of state and clears its 64 KB hash table on every
    call: for a job of a few hundred bytes that was most of the 70-110 us it took, the
    largest single cost of an intake request (docs/slack.md). memLevel 4 sets up a
    fraction of it and is three times faster; the stream is the same zlib format (rq
    reads it with zlib.decompress), the same bytes for a small job, and within a few
    percent of the size for a large one.
    """
    deflate = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS, 4)
    return deflate.compress(data) + deflate.flush()


_TEMPLATES: dict[tuple[Any, ...], JobTemplate] = {}


def _template(
    q: Queue, func: str, retry: Retry | None, timeout: int, meta: dict[str, Any]
) -> JobTemplate:
    """The template of this kind of job, built on first use (a handful of kinds per process)."""
    shape = (
        q.name,
        func,
        (retry.max, tuple(retry.intervals), retry.enqueue_at_front) if retry else None,
        timeout,
        json.dumps(meta, sort_keys=True, default=repr),
    )
    found = _TEMPLATES.get(shape)
    if found is None:
        found = _TEMPLATES[shape] = JobTemplate(q, func, retry, timeout, meta)
    return found


class _Entry:
    """One caller's commands waiting in a GroupCommit, and what became of them."""

    __slots__ = ("error", "lead", "ready", "results", "stage")

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.ready = threading.Event()
        self.lead = False
        self.results: list[Any] | None = None
        self.error: Exception | None = None


class GroupCommit:
    """Sends the writes of concurrent callers to Redis together: one round trip for many.

    A web process answers each request only after Redis holds its job. While one
    round trip is on the wire, the requests that arrive queue their commands here,
    and the next round trip carries all of them (databases call this group commit):
    the same durability per request, a fraction of the system calls, which is what
    an intake under load spends its time on. A caller alone is sent at once.

    Leader and followers: the caller that finds nothing in flight sends the batch
    and hands the lead to the first caller waiting, who sends the next batch.
    Thread-safe; one per process (the pool gives each round trip its own connection).
    """

    def __init__(self, connection: Redis, *, wait_seconds: float = 10.0) -> None:
        self.connection = connection
        # A follower's bound on waiting: a round trip is bounded by the client's
        # socket timeout, so this only guards against a leader that died mid-send.
        self.wait_seconds = wait_seconds
        self._lock = threading.Lock()
        self._pending: list[_Entry] = []
        self._sending = False

    def write(self, stage: Stage) -> list[Any]:
        """Run `stage`'s commands in a pipeline (with others'); their results, or raise."""
        entry = _Entry(stage)
        with self._lock:
            self._pending.append(entry)
            entry.lead = not self._sending
            self._sending = True
        while not entry.lead and entry.results is None and entry.error is None:
            if not entry.ready.wait(self.wait_seconds):
                with self._lock:
                    # Given the lead meanwhile (under this lock): it must send, not leave.
                    if not entry.lead and entry in self._pending:
                        self._pending.remove(entry)
                        raise RedisTimeoutError("the intake's write to Redis did not start")
                continue
            entry.ready.clear()
        if entry.results is None and entry.error is None:
            self._send_batch()
        if entry.error is not None:
            raise entry.error
        assert entry.results is not None
        return entry.results

    def _send_batch(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        try:
            _send(self.connection, batch)
        finally:
            with self._lock:
                if self._pending:
                    # The next batch is the first waiter's to send.
                    successor = self._pending[0]
                    successor.lead = True
                    successor.ready.set()
                else:
                    self._sending = False
            for entry in batch:
                entry.ready.set()


def _write_now(connection: Redis, stage: Stage) -> list[Any]:
    """`stage`'s commands in a pipeline of their own: their results, or raise."""
    entry = _Entry(stage)
    _send(connection, [entry])
    if entry.error is not None:
        raise entry.error
    assert entry.results is not None
    return entry.results


def _send(connection: Redis, batch: list[_Entry]) -> None:
    """One pipeline for the batch; each entry gets its own results or its own error."""
    spans: list[tuple[_Entry, int, int]] = []
    pipe = connection.pipeline(transaction=False)
    for entry in batch:
        start = len(pipe.command_stack)
        entry.stage(pipe)
        spans.append((entry, start, len(pipe.command_stack)))
    try:
        results = pipe.execute(raise_on_error=False)
    except RedisError as exc:
        for entry in batch:
            entry.error = exc
        return
    except Exception as exc:  # a bug must reach every waiter, not strand them
        for entry in batch:
            entry.error = exc
        raise
    retry: list[_Entry] = []
    for entry, start, end in spans:
        mine = results[start:end]
        if any(isinstance(r, NoScriptError) for r in mine):
            retry.append(entry)
            continue
        failed = next((r for r in mine if isinstance(r, Exception)), None)
        if failed is not None:
            entry.error = failed
        else:
            entry.results = mine
    if retry:
        # A new or restarted Redis has no scripts yet; every write staged is idempotent.
        try:
            connection.script_load(UNIQUE_ENQUEUE_SCRIPT)
        except RedisError as exc:
            for entry in retry:
                entry.error = exc
            return
        _send(connection, retry)


def fetch_job(connection: Redis, jid: str) -> Job | None:
    """The job with this id, or None when Redis no longer has it."""
    try:
        return Job.fetch(jid, connection=connection)
    except Exception:  # rq raises NoSuchJobError, or a deserialization error for a broken hash
        return None
