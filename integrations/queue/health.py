"""What the queues and workers look like right now: read by /readyz, /metrics and people.

A worker that has stopped filing (dead, or waiting out a Redis outage) shows here as
fewer workers alive and an oldest queued job growing older, while the web process
goes on accepting reports into the durable queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from redis import Redis
from rq import Worker
from rq.job import Job

from integrations.queue.connection import QUEUES, queue

# A worker beats at least every worker_ttl (75 s, workers/worker.py) while idle, and
# every job_monitoring_interval while a job runs: silent longer than this, it is gone.
ALIVE_SECONDS = 90.0


@dataclass(frozen=True)
class QueueHealth:
    """Workers registered in Redis (alive: their heartbeat key has not lapsed), and per
    queue the jobs waiting and the age in seconds of the oldest (0 when none wait)."""

    workers_alive: int
    waiting: dict[str, int] = field(default_factory=dict)
    oldest_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def oldest_queued_seconds(self) -> float:
        """The oldest waiting job's age across the hub's queues."""
        return max(self.oldest_seconds.values(), default=0.0)


def queue_health(redis: Redis, *, now: datetime | None = None) -> QueueHealth:
    """Read the workers and queues (a few round trips; raises RedisError when Redis is away)."""
    at = now or datetime.now(UTC)
    waiting: dict[str, int] = {}
    oldest: dict[str, float] = {}
    for name in QUEUES:
        q = queue(redis, name)
        waiting[name] = q.count
        oldest[name] = _age(redis, q.get_job_ids(0, 1), at)
    return QueueHealth(_workers_alive(redis, at), waiting, oldest)


def _workers_alive(redis: Redis, at: datetime) -> int:
    """Registered workers that beat within ALIVE_SECONDS (rq keeps a killed worker's key
    for two minutes more; its last heartbeat says it is gone sooner)."""
    keys = Worker.all_keys(connection=redis)
    with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hget(key, "last_heartbeat")
        beats = pipe.execute()
    alive = 0
    for beat in beats:
        if beat is None:
            continue
        text = beat.decode() if isinstance(beat, bytes) else str(beat)
        try:
            last = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            continue
        if last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        if (at - last).total_seconds() <= ALIVE_SECONDS:
            alive += 1
    return alive


def _age(redis: Redis, first: list[str], at: datetime) -> float:
    if not first:
        return 0.0
    jobs = Job.fetch_many(first, connection=redis)
    job = jobs[0] if jobs else None
    if job is None or job.enqueued_at is None:
        return 0.0
    enqueued = job.enqueued_at
    if enqueued.tzinfo is None:  # rq stores UTC without a zone
        enqueued = enqueued.replace(tzinfo=UTC)
    return max(0.0, round((at - enqueued).total_seconds(), 1))
