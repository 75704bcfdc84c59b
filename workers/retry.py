"""The retry policy's job side: rate limits reschedule, outages retry, refusals go to dead letters.

The other layer, a few quick retries inside one HTTP call, is in the clients
(integrations/zendesk/client.py, integrations/slack/).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, TypeVar

from rq import Retry, get_current_job

from integrations import logs
from integrations.errors import Permanent, Retryable

log = logging.getLogger(__name__)

T = TypeVar("T")

# A job waiting out a rate limit is rescheduled, not failed: waiting does not
# use up the retries meant for outages (integrations.queue.DEFAULT_RETRY).
RATE_LIMIT_RESCHEDULES = 10_000


def run_guarded(step: Callable[..., T], *args: Any) -> T | Retry:
    """Run a job body; a rate limit reschedules it, a permanent refusal skips the retries."""
    try:
        return step(*args)
    except Retryable as exc:
        if exc.retry_after:
            logs.event(log, "job.rate_limited", reason=exc.reason, retry_after=exc.retry_after)
            return Retry(max=RATE_LIMIT_RESCHEDULES, interval=math.ceil(exc.retry_after))
        raise
    except Permanent:
        # A 4xx is a bug or bad data; retrying cannot help. Straight to dead letters.
        job = get_current_job()
        if job is not None:
            job.retries_left = 0
        raise
