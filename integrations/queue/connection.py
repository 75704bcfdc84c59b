"""The Redis connection and the hub's named queues: what every process opens first."""

from __future__ import annotations

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from rq import Queue
from rq.job import Job

# Worker priority order: a report waiting to become a ticket goes first, then
# Zendesk ticket events, then Slack notifications.
TICKETS = "tickets"
EVENTS = "events"
NOTIFY = "notify"
QUEUES = (TICKETS, EVENTS, NOTIFY)


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


def fetch_job(connection: Redis, jid: str) -> Job | None:
    """The job with this id, or None when Redis no longer has it."""
    try:
        return Job.fetch(jid, connection=connection)
    except Exception:  # rq raises NoSuchJobError, or a deserialization error for a broken hash
        return None
