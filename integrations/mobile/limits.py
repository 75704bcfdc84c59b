"""The mobile API's limits, and the per-app rate limit kept in Redis.

Sizes are chosen for phone screenshots (1-4 MB PNG / HEIC), short screen
recordings and log files, while keeping what waits in Redis bounded: see
docs/mobile.md, "Limits".
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis import Redis

MiB = 1024 * 1024

# Reports per minute per app key unless MOBILE_RATE_LIMIT says otherwise (Settings).
DEFAULT_RATE_PER_MINUTE = 60


@dataclass(frozen=True)
class Limits:
    """What one request may carry, and how many reports an app may send per minute."""

    # The whole multipart request: the report plus every file.
    body_bytes: int = 25 * MiB
    # The report JSON: the application/json body, or the multipart `report` part.
    report_bytes: int = 1 * MiB
    files: int = 5
    file_bytes: int = 10 * MiB
    rate_per_minute: int = DEFAULT_RATE_PER_MINUTE
    # The ticket shows the last part of long logs; the whole log is attached.
    log_excerpt_chars: int = 4000


def size_text(n: int) -> str:
    """A byte count as people read it: 10 MiB, 512 KiB, 300 bytes."""
    if n >= MiB and n % MiB == 0:
        return f"{n // MiB} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"


class RateLimit:
    """A fixed one-minute window per app key, counted in Redis (shared by every web process)."""

    def __init__(
        self, redis: Redis, per_minute: int, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.redis = redis
        self.per_minute = per_minute
        self.clock = clock

    def take(self, app_id: str) -> float | None:
        """Count one report for `app_id`; None when allowed, else seconds until it may retry."""
        now = self.clock()
        window = int(now // 60)
        key = f"hub:mobile:rate:{app_id}:{window}"
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, 120)
        count, _ = pipe.execute()
        if int(count) <= self.per_minute:
            return None
        return max(1.0, math.ceil((window + 1) * 60 - now))
