"""Jobs rq lost between a queue and a worker, found and queued again: the hub's safety net.

A worker listening on several queues (the hub's do: tickets, events, notify)
takes a job with BLPOP. From then until the worker records the job as started,
the job id is nowhere in Redis but the worker's memory: a worker killed, or a
Redis restarted, in that moment leaves a job whose hash says "queued" that no
queue or registry holds, and nothing in rq ever runs it (rq issues #580, #2015;
rq's reliable LMOVE dequeue is used only by single-queue workers). The
fault-injection suite (tests/faults) loses acknowledged reports this way when
Redis restarts under load.

`requeue_lost` finds such jobs and puts them back at the front of their queue.
A job is only "lost" once it has been seen so for `min_age` seconds (a worker
records a popped job as started within milliseconds). Running a job twice is
safe: every job's effect is idempotent (the ticket's external_id). Every worker
runs it with rq's maintenance (workers/worker.py).
"""

from __future__ import annotations

import logging
import time

from redis import Redis

from integrations import logs
from integrations.queue import QUEUES, queue

log = logging.getLogger(__name__)

# Suspects: job id -> when first seen queued but in no queue (a Redis hash).
SUSPECTS = "hub:maintenance:lost-suspects"
LOCK = "hub:maintenance:lock"
DEFAULT_MIN_AGE = 30.0
_JOB_PREFIX = "rq:job:"


def lost_jobs(connection: Redis, queue_names: tuple[str, ...] = QUEUES) -> dict[str, str]:
    """Jobs whose status is queued but that no queue list holds: job id -> queue name."""
    listed: set[str] = set()
    for name in queue_names:
        q = queue(connection, name)
        listed.update(q.get_job_ids())
        listed.update(_ids(connection.lrange(q.intermediate_queue_key, 0, -1)))
    out: dict[str, str] = {}
    for key in connection.scan_iter(match=f"{_JOB_PREFIX}*", count=1000):
        jid = _text(key)[len(_JOB_PREFIX) :]
        if ":" in jid or jid in listed:
            continue  # rq:job:<id>:dependents and the like; or waiting as it should
        status, origin = connection.hmget(key, ["status", "origin"])
        if _text(status) == "queued" and _text(origin) in queue_names:
            out[jid] = _text(origin)
    return out


def requeue_lost(
    connection: Redis,
    *,
    min_age: float = DEFAULT_MIN_AGE,
    queue_names: tuple[str, ...] = QUEUES,
    clock: float | None = None,
) -> list[str]:
    """Queue again the jobs lost for at least `min_age` seconds; returns their ids."""
    now = time.time() if clock is None else clock
    found = lost_jobs(connection, queue_names)
    raw: dict[bytes, bytes] = connection.hgetall(SUSPECTS)  # type: ignore[assignment]
    seen = {_text(k): float(v) for k, v in raw.items()}
    gone = [jid for jid in seen if jid not in found]
    if gone:
        connection.hdel(SUSPECTS, *gone)
    requeued = []
    for jid, name in found.items():
        first = seen.get(jid)
        if first is None:
            connection.hset(SUSPECTS, jid, now)
            continue
        if now - first < min_age:
            continue
        q = queue(connection, name)
        # Re-checked just before: a worker may have picked it up since the scan.
        if _text(connection.hget(f"{_JOB_PREFIX}{jid}", "status")) != "queued":
            continue
        q.push_job_id(jid, at_front=True)
        connection.hdel(SUSPECTS, jid)
        requeued.append(jid)
        logs.event(log, "job.requeued_lost", logging.WARNING, job=jid, queue=name)
    return requeued


def run_once(connection: Redis, *, every: float) -> list[str]:
    """`requeue_lost` by one worker of many: the first to take the lock does it."""
    if not connection.set(LOCK, 1, nx=True, ex=max(1, int(every) - 1)):
        return []
    return requeue_lost(connection)


def _ids(values: object) -> list[str]:
    return [_text(v) for v in values]  # type: ignore[attr-defined]


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return "" if value is None else str(value)
