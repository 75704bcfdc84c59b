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
from typing import Any

from redis import Redis

from integrations.errors import Retryable

# When the API says so little budget is left, wait for its window to reset
# rather than spend the last requests: other workers are calling too.
DEFAULT_RESERVE = 2
# A 429 without a usable Retry-After (Zendesk sometimes omits it).
DEFAULT_RETRY_AFTER = 60.0
# Pace requests at this share of the API's advertised per-minute limit, so a
# backlog drains at nearly the full budget without tripping the limit.
DEFAULT_PACE = 0.95
# How many seconds of requests may go out at once before pacing applies.
BURST_SECONDS = 2.0

# Take one request from the shared budget. KEYS[1]: the state hash.
# ARGV: now, reserve, pace, burst seconds. Returns "go", or why and how long to
# wait: "blocked:S" (a 429), "spent:S" (the reported budget), "pace:S".
# Three checks, in order: a 429's Retry-After; the remaining budget the API
# last reported (decremented per request sent, so concurrent workers do not all
# spend the same last request; without a reset time it refills at the limit's
# rate, so a low count is a short pacing wait, not a minute's freeze of every
# worker); a token bucket at `pace` x the advertised limit.
_TAKE = """
local now = tonumber(ARGV[1])
local blocked = tonumber(redis.call('HGET', KEYS[1], 'blocked_until') or '0')
if blocked > now then
  return 'blocked:' .. tostring(blocked - now)
end
local remaining = tonumber(redis.call('HGET', KEYS[1], 'remaining') or '-1')
local reset_at = tonumber(redis.call('HGET', KEYS[1], 'reset_at') or '0')
local limit = tonumber(redis.call('HGET', KEYS[1], 'limit') or '0')
local reserve = tonumber(ARGV[2])
if remaining >= 0 and reset_at > now and remaining <= reserve then
  if redis.call('HGET', KEYS[1], 'reset_known') == '1' or limit <= 0 then
    return 'spent:' .. tostring(reset_at - now)
  end
  -- No reset time given: a sliding window, whose budget comes back as old
  -- requests age out (about limit/60 a second), not all at once a minute later.
  local observed = tonumber(redis.call('HGET', KEYS[1], 'observed_at') or tostring(now))
  local refill = math.max(0, now - observed) * limit / 60.0
  if remaining + refill <= reserve then
    local wait = (reserve + 1 - remaining - refill) * 60.0 / limit
    return 'pace:' .. tostring(math.min(wait, reset_at - now))
  end
end
if limit > 0 then
  local rate = limit * tonumber(ARGV[3]) / 60.0
  local capacity = math.max(1.0, rate * tonumber(ARGV[4]))
  local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or tostring(capacity))
  local last = tonumber(redis.call('HGET', KEYS[1], 'tokens_at') or tostring(now))
  tokens = math.min(capacity, tokens + math.max(0, now - last) * rate)
  if tokens < 0.999 then
    redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'tokens_at', tostring(now))
    return 'pace:' .. tostring((1.0 - tokens) / rate)
  end
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1.0), 'tokens_at', tostring(now))
end
if remaining >= 0 and reset_at > now then
  redis.call('HINCRBY', KEYS[1], 'remaining', -1)
end
return 'go'
"""


class RateLimiter:
    """The shared budget of one outside API (e.g. "zendesk", "slack:chat.postMessage")."""

    def __init__(
        self,
        redis: Redis,
        name: str,
        *,
        reserve: int = DEFAULT_RESERVE,
        pace: float = DEFAULT_PACE,
        window: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.name = name
        self.key = f"hub:ratelimit:{name}"
        self.reserve = reserve
        self.pace = pace
        self.window = window
        self.clock = clock
        self._take = redis.register_script(_TAKE)

    def take(self) -> tuple[str, float]:
        """Take one request from the shared budget: ("go", 0) or (why, seconds to wait)."""
        args = [self.clock(), self.reserve, self.pace, BURST_SECONDS]
        answer = self._take(keys=[self.key], args=args)
        text = answer.decode() if isinstance(answer, bytes) else str(answer)
        why, _, seconds = text.partition(":")
        return why, float(seconds or 0)

    def acquire(
        self, *, sleep_up_to: float = 0.0, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        """Take one request from the budget, or raise Retryable with the wait.

        Pacing waits shorter than `sleep_up_to` are slept in place (they keep a
        backlog flowing at the budget's pace); a 429 or a spent budget means the
        job is rescheduled: a worker never sleeps out a rate limit.
        """
        why, wait = self.take()
        while why == "pace" and wait <= sleep_up_to:
            sleep(wait)
            why, wait = self.take()
        if why != "go":
            raise Retryable(f"{self.name} rate limit ({why})", retry_after=wait)

    def observe(self, status: int, headers: Mapping[str, str]) -> float | None:
        """Record what a response said about the budget; return the wait when it was a 429."""
        now = self.clock()
        if status == 429:
            wait = retry_after_seconds(headers.get("Retry-After"), now) or DEFAULT_RETRY_AFTER
            self.redis.hset(self.key, mapping={"blocked_until": now + wait})
            self.redis.expire(self.key, int(wait) + 3600)
            self.redis.hincrby(self.key, "throttled", 1)
            return wait
        state: dict[Any, Any] = {}
        limit = _number(headers.get("X-Rate-Limit") or headers.get("ratelimit-limit"))
        if limit:
            state["limit"] = limit
        remaining = _number(
            headers.get("X-Rate-Limit-Remaining") or headers.get("ratelimit-remaining")
        )
        if remaining is not None:
            state["remaining"] = int(remaining)
            # Zendesk says when its minute resets on some endpoints
            # (ratelimit-reset, seconds); elsewhere assume a whole window.
            reset = _number(headers.get("ratelimit-reset"))
            state["reset_at"] = now + (reset if reset is not None else self.window)
            state["reset_known"] = 1 if reset is not None else 0
            state["observed_at"] = now
        if state:
            pipe = self.redis.pipeline()
            pipe.hset(self.key, mapping=state)
            pipe.expire(self.key, 3600)
            pipe.execute()
        return None

    def state(self) -> dict[str, str]:
        """The stored state, for operators (feedback-hub status, /metrics)."""
        raw: dict[bytes, bytes] = self.redis.hgetall(self.key)  # type: ignore[assignment]
        return {k.decode(): v.decode() for k, v in raw.items()}


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and number >= 0 and not math.isnan(number) else None


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
