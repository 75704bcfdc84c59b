"""One rate-limit state per outside API, shared by every worker through Redis.

Fed by what the API says (`X-Rate-Limit-Remaining`, `Retry-After`); a call that
would overrun the budget raises Retryable with the seconds to wait, and the job
is rescheduled for then. No worker ever sleeps on a 429.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime

from redis import Redis

from integrations.errors import Retryable

# When Zendesk says so little budget is left, wait for the next window rather
# than spend the last requests: other workers are calling too.
DEFAULT_RESERVE = 2
# A 429 without a usable Retry-After (Zendesk sometimes omits it).
DEFAULT_RETRY_AFTER = 60.0

# Take one request from the budget unless the API is blocked. KEYS: state hash.
# ARGV: now. Returns seconds to wait (0 = go ahead). The window is the API's own
# minute; `remaining` is what the API last told us, decremented per request we
# send, so concurrent workers do not all spend the same last request.
_TAKE = """
local blocked = tonumber(redis.call('HGET', KEYS[1], 'blocked_until') or '0')
local now = tonumber(ARGV[1])
if blocked > now then
  return tostring(blocked - now)
end
local remaining = tonumber(redis.call('HGET', KEYS[1], 'remaining') or '-1')
local window_end = tonumber(redis.call('HGET', KEYS[1], 'window_end') or '0')
if remaining >= 0 and window_end > now and remaining <= tonumber(ARGV[2]) then
  return tostring(window_end - now)
end
if remaining >= 0 and window_end > now then
  redis.call('HINCRBY', KEYS[1], 'remaining', -1)
end
return '0'
"""


class RateLimiter:
    """The shared budget of one outside API (e.g. "zendesk", "slack:chat.postMessage")."""

    def __init__(
        self,
        redis: Redis,
        name: str,
        *,
        reserve: int = DEFAULT_RESERVE,
        window: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.name = name
        self.key = f"hub:ratelimit:{name}"
        self.reserve = reserve
        self.window = window
        self.clock = clock
        self._take = redis.register_script(_TAKE)

    def acquire(self) -> None:
        """Take one request from the shared budget, or raise Retryable with the wait."""
        wait = float(self._take(keys=[self.key], args=[self.clock(), self.reserve]))
        if wait > 0:
            raise Retryable(f"{self.name} rate limit: budget spent", retry_after=wait)

    def observe(self, status: int, headers: Mapping[str, str]) -> float | None:
        """Record what a response said about the budget; return the wait when it was a 429."""
        now = self.clock()
        if status == 429:
            wait = retry_after_seconds(headers.get("Retry-After"), now) or DEFAULT_RETRY_AFTER
            self.redis.hset(self.key, mapping={"blocked_until": now + wait})
            self.redis.expire(self.key, int(wait) + 3600)
            self.redis.hincrby(self.key, "throttled", 1)
            return wait
        remaining = headers.get("X-Rate-Limit-Remaining") or headers.get("x-rate-limit-remaining")
        if remaining is not None and remaining.strip().lstrip("-").isdigit():
            pipe = self.redis.pipeline()
            # The API's budget is per minute; we do not know where its minute
            # started, so the number is trusted for one window from now.
            pipe.hset(
                self.key, mapping={"remaining": int(remaining), "window_end": now + self.window}
            )
            pipe.expire(self.key, 3600)
            pipe.execute()
        return None

    def state(self) -> dict[str, str]:
        """The stored state, for operators (feedback-hub status, /metrics)."""
        raw: dict[bytes, bytes] = self.redis.hgetall(self.key)  # type: ignore[assignment]
        return {k.decode(): v.decode() for k, v in raw.items()}


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return None
        seconds = when - (now if now is not None else time.time())
    if math.isnan(seconds) or seconds < 0:
        return None
    return max(seconds, 1.0)
