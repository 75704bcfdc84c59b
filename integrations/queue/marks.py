"""Effects that must happen once, and work one worker at a time: marks and locks in Redis."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis

from integrations.errors import Retryable


class Claim:
    """This caller's mark on an effect: `done` records how it went."""

    def __init__(self, redis: Redis, key: str, ttl: int) -> None:
        self.redis, self.key, self.ttl = redis, key, ttl

    def done(self, value: str = "sent") -> None:
        """Record the effect as done (the mark stays, so it is never repeated)."""
        self.redis.set(self.key, value, ex=self.ttl)


@contextmanager
def once(redis: Redis, key: str, *, ttl: int) -> Iterator[Claim | None]:
    """A Claim when this caller is the first to mark `key`, else None (done or under way).

    The mark is set before the effect: a worker that dies mid-post leaves it, and the
    retry does not post again (a person told twice is worse than one message lost to a
    crash). When the effect raises, Slack or Zendesk said no or could not be reached:
    nothing was done, so the mark is removed and a retry may do it.
    """
    if not redis.set(key, "sending", nx=True, ex=ttl):
        yield None
        return
    try:
        yield Claim(redis, key, ttl)
    except BaseException:
        redis.delete(key)
        raise


@contextmanager
def exclusive(redis: Redis, key: str, *, ttl: int, busy: str) -> Iterator[None]:
    """Run the block in one worker at a time; another gets Retryable(`busy`) and comes back.

    `ttl` bounds a crashed holder: the lock frees itself by expiry.
    """
    if not redis.set(key, 1, nx=True, ex=ttl):
        raise Retryable(busy, retry_after=5)
    try:
        yield
    finally:
        redis.delete(key)
