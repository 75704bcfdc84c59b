"""Redis connection, the named queues, and the enqueue helper that never queues a report twice."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Callback, Queue, Retry
from rq.job import Job
from rq.scripts import UNIQUE_ENQUEUE_SCRIPT, _build_hset_args

from integrations.report import digest
from workers import wire
from workers.wire import Commands

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


def connect_async(url: str, *, timeout: float = 5.0, retries: int = 0) -> AsyncRedis:
    """`connect` for an event loop: the same URL, the same bounded timeouts.

    `retries`: how many times a command that met a dropped connection or no reply in
    `timeout` is sent again, on a new connection; only for callers whose every command is
    safe to repeat.
    """
    client: AsyncRedis = AsyncRedis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=min(timeout, 2.0),
        health_check_interval=30,
        retry=AsyncRetry(NoBackoff(), retries),
    )
    return client


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
    also: Callable[[Commands], object] | None = None,
    writer: GroupCommit | None = None,
    at_front: bool = False,
) -> Enqueued:
    """Enqueue `func(*args)` once per (kind, key); a repeat returns the existing job's id.

    `func` is the job's import path ("workers.jobs.file_report"), so the web
    process never imports worker code.

    Returns only after Redis has the job: acknowledged means durable. Raises
    redis.exceptions.RedisError when Redis cannot take it. `also` may add the
    caller's own writes, which travel in the same round trip. With a `writer`,
    concurrent callers share round trips (GroupCommit). `at_front` puts the job ahead of
    the queue's waiting jobs, for the next free worker.
    """
    staged = stage_enqueue(
        connection, queue_name, func, *args, kind=kind, key=key, retry=retry,
        timeout=timeout, meta=meta, also=also, at_front=at_front,
    )  # fmt: skip
    results = (
        writer.write(staged.commands)
        if writer is not None
        else _write_now(connection, staged.commands)
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
    queue_name: str,
    func: str,
    *args: Any,
    kind: str,
    key: str,
    retry: Retry | None = DEFAULT_RETRY,
    timeout: int = JOB_TIMEOUT,
    meta: dict[str, Any] | None = None,
    also: Callable[[Commands], object] | None = None,
    at_front: bool = False,
) -> StagedEnqueue:
    """The writes of `enqueue_once`, not yet sent (see there for the arguments)."""
    jid = job_id(kind, key)
    template = _template(connection, queue_name, func, retry, timeout, meta or {}, at_front)
    # What rq's enqueue(unique=True) does, in one round trip instead of two: the
    # queue's registration, then rq's own atomic check-save-push script (rq.scripts)
    # by EVALSHA, then the caller's writes. Every round trip counts against Slack's
    # 3 s and the intake's throughput.
    commands = Commands().add_encoded(template.registration)
    # rq logs the description; the default is the call with its arguments, which
    # would put whole reports in the logs.
    description = f"{func.rsplit('.', 1)[-1]} {jid}"
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
    computed once. tests/test_queue.py checks the result against rq's for the same job.
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
            "EVALSHA", _UNIQUE_ENQUEUE_SHA, 2, wire.Slot("job_key"), q.key, wire.Slot("job_id"),
            "L" if at_front else "R", self.ttl, *self.fields,
        ]  # fmt: skip
        for name in self.PER_JOB:
            call[8 + self._at[name]] = wire.Slot(name)
        self._call = wire.CommandTemplate(*call)

    def values_for(self, args: tuple[Any, ...], *, description: str) -> dict[str, Any]:
        """The fields that differ between two jobs of this kind, for one calling `func(*args)`."""
        # Job.data and Job.to_dict: (func name, instance, args, kwargs), serialized, zlib'd.
        data = _deflate(self.serializer.dumps((self.func_name, None, args, {})))
        stamp = _utc_stamp()
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


# Below this size a job's data is stored in its zlib stream, not squeezed: setting up a
# compressor cost a small report more than the rest of its intake's Python, to save a few
# hundred bytes of a hash that lives a day. Larger data is compressed as rq does it.
STORE_BELOW = 4096
# A zlib stream (RFC 1950): header 0x78 0x01 (deflate, 32 KB window, no dictionary).
_ZLIB_HEADER = b"\x78\x01"


def _deflate(data: bytes) -> bytes:
    """The job's data as rq writes it: a zlib stream (rq reads it with zlib.decompress).

    zlib sets up some 256 KB of state for every stream it writes, whatever the level; on
    this project's machine that allocation alone cost 60 us a call (zlib.compress at level
    0 included), a sixth of an intake request (docs/slack.md). A small report is written
    here as one stored deflate block (RFC 1951: final, uncompressed; its length and the
    length's complement) inside the zlib framing, with zlib's own Adler-32: 1 us, 11 bytes
    more than the data. A large one is compressed at level 6 with memLevel 4, a quarter of
    the hash memory, within a few percent of zlib.compress's size.
    """
    size = len(data)
    if size < STORE_BELOW:
        block = b"\x01" + size.to_bytes(2, "little") + (size ^ 0xFFFF).to_bytes(2, "little")
        return _ZLIB_HEADER + block + data + zlib.adler32(data).to_bytes(4, "big")
    deflate = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS, 4)
    return deflate.compress(data) + deflate.flush()


_second: tuple[int, str] = (-1, "")


def _utc_stamp() -> str:
    """Now as rq's utcformat writes it (`2026-12-06T05:20:41.123456Z`), the seconds formatted
    once a second: strftime on every enqueue cost more than serializing the job."""
    global _second
    now_ns = time.time_ns()
    second, micros = divmod(now_ns // 1000, 1_000_000)
    cached = _second
    if cached[0] != second:
        cached = _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{micros:06d}Z"


_TEMPLATES: dict[tuple[Any, ...], JobTemplate] = {}


def _template(
    connection: Redis,
    queue_name: str,
    func: str,
    retry: Retry | None,
    timeout: int,
    meta: dict[str, Any],
    at_front: bool,
) -> JobTemplate:
    """The template of this kind of job, built on first use (a handful of kinds per process)."""
    shape = (
        queue_name,
        func,
        at_front,
        (retry.max, tuple(retry.intervals), retry.enqueue_at_front) if retry else None,
        timeout,
        # Most jobs have no meta (every intake request): no encoding for them.
        json.dumps(meta, sort_keys=True, default=repr) if meta else "",
    )
    found = _TEMPLATES.get(shape)
    if found is None:
        q = queue(connection, queue_name)
        found = _TEMPLATES[shape] = JobTemplate(q, func, retry, timeout, meta, at_front)
    return found


class _Outcome:
    """One caller's commands in a shared round trip, and what became of them."""

    __slots__ = ("commands", "error", "results")

    def __init__(self, commands: Commands) -> None:
        self.commands = commands
        self.results: list[Any] | None = None
        self.error: Exception | None = None

    def result(self) -> list[Any]:
        """The replies, or raise the error."""
        if self.error is not None:
            raise self.error
        assert self.results is not None
        return self.results


class _Entry(_Outcome):
    """A thread's commands waiting in a GroupCommit."""

    __slots__ = ("lead", "signal")

    def __init__(self, commands: Commands) -> None:
        super().__init__(commands)
        # Held until the caller is woken, exactly once: given the lead, or its replies are in.
        # A bare lock is the cheapest one-shot hand-off between threads (an Event is a
        # Condition, a lock and a list around the same wait).
        self.signal = threading.Lock()
        self.signal.acquire()
        self.lead = False


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

    def write(self, commands: Commands) -> list[Any]:
        """Send the commands (with others'); their replies in order, or raise the first error."""
        entry = _Entry(commands)
        with self._lock:
            self._pending.append(entry)
            entry.lead = not self._sending
            self._sending = True
        while not entry.lead and entry.results is None and entry.error is None:
            if not entry.signal.acquire(timeout=self.wait_seconds):
                with self._lock:
                    # Given the lead meanwhile (under this lock): it must send, not leave.
                    if not entry.lead and entry in self._pending:
                        self._pending.remove(entry)
                        raise RedisTimeoutError("the intake's write to Redis did not start")
        if entry.results is None and entry.error is None:
            self._send_batch(entry)
        return entry.result()

    def _send_batch(self, leader: _Entry) -> None:
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
                    successor.signal.release()
                else:
                    self._sending = False
            for entry in batch:
                if entry is not leader:
                    entry.signal.release()


class AsyncGroupCommit:
    """GroupCommit for an event loop (the web process's `/slack/commands`).

    A caller's commands join the pending batch; when no round trip is in flight, a task
    starts one, and keeps sending what queued meanwhile until nothing waits. Each caller
    resumes with its own replies or its own error once Redis has answered. One per event
    loop: an asyncio client's connections belong to the loop that opened them.
    """

    def __init__(self, client: AsyncRedis) -> None:
        self.client = client
        self._pending: list[tuple[_Outcome, asyncio.Future[None]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def write(self, commands: Commands) -> list[Any]:
        """Send the commands (with others'); their replies in order, or raise the first error."""
        loop = asyncio.get_running_loop()
        outcome, answered = _Outcome(commands), loop.create_future()
        self._pending.append((outcome, answered))
        if self._sender is None:
            self._sender = loop.create_task(self._send_pending())
        # A caller that goes away (the client hung up) leaves its write to finish: a
        # write is never half-sent, and the job is durable whoever waits for it.
        await answered
        return outcome.result()

    async def _send_pending(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await _send_async(self.client, [outcome for outcome, _ in batch])
                except Exception as exc:  # a bug: every waiter gets it, the loop goes on
                    for outcome, _ in batch:
                        outcome.error = outcome.error or exc
                finally:
                    for _, answered in batch:
                        if not answered.done():
                            answered.set_result(None)
        finally:
            self._sender = None

    async def close(self) -> None:
        """Finish what is pending, then close the client's connections."""
        if self._sender is not None:
            await self._sender
        await self.client.aclose()


def _write_now(connection: Redis, commands: Commands) -> list[Any]:
    """The commands in a round trip of their own: their replies, or raise."""
    entry = _Outcome(commands)
    _send(connection, [entry])
    return entry.result()


def _send(connection: Redis, batch: Sequence[_Outcome]) -> None:
    """One round trip for the batch; each entry gets its own replies or its own error."""
    try:
        replies = wire.round_trip(connection, _together(batch))
    except RedisError as exc:
        _fail(batch, exc)
        return
    except Exception as exc:  # a bug must reach every waiter, not strand them
        _fail(batch, exc)
        raise
    retry = _settle(batch, replies)
    if retry:
        # A new or restarted Redis has no scripts yet; every write staged is idempotent.
        try:
            connection.script_load(UNIQUE_ENQUEUE_SCRIPT)
        except RedisError as exc:
            _fail(retry, exc)
            return
        _send(connection, retry)


async def _send_async(client: AsyncRedis, batch: Sequence[_Outcome]) -> None:
    """`_send` on an event loop."""
    try:
        replies = await wire.round_trip_async(client, _together(batch))
    except RedisError as exc:
        _fail(batch, exc)
        return
    retry = _settle(batch, replies)
    if retry:
        try:
            await client.script_load(UNIQUE_ENQUEUE_SCRIPT)
        except RedisError as exc:
            _fail(retry, exc)
            return
        await _send_async(client, retry)


def _fail(entries: Sequence[_Outcome], exc: Exception) -> None:
    for entry in entries:
        entry.error = exc


def _together(batch: Sequence[_Outcome]) -> Commands:
    together = Commands()
    for entry in batch:
        together.extend(entry.commands)
    return together


def _settle(batch: Sequence[_Outcome], replies: list[Any]) -> list[_Outcome]:
    """Give each entry its replies or its error; the entries Redis had no script for."""
    retry: list[_Outcome] = []
    start = 0
    for entry in batch:
        mine = replies[start : start + entry.commands.count]
        start += entry.commands.count
        if any(isinstance(r, NoScriptError) for r in mine):
            retry.append(entry)
            continue
        failed = next((r for r in mine if isinstance(r, Exception)), None)
        if failed is not None:
            entry.error = failed
        else:
            entry.results = mine
    return retry


def fetch_job(connection: Redis, jid: str) -> Job | None:
    """The job with this id, or None when Redis no longer has it."""
    try:
        return Job.fetch(jid, connection=connection)
    except Exception:  # rq raises NoSuchJobError, or a deserialization error for a broken hash
        return None
