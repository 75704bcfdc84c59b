"""What every view shares: the settings, Redis, and the enqueue helper, reached through the app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from redis import Redis

from integrations.settings import Settings
from workers.queues import Enqueued, enqueue_once

# A readiness check answers (ok, detail); /readyz runs every registered one.
ReadinessCheck = Callable[[], tuple[bool, str]]


@dataclass
class Hub:
    """The web process's shared state, built once by create_app."""

    settings: Settings
    redis: Redis
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)

    def enqueue(self, queue_name: str, func: str, *args: Any, kind: str, key: str) -> Enqueued:
        """Durably enqueue a job once per (kind, key); raises RedisError if Redis cannot take it."""
        return enqueue_once(self.redis, queue_name, func, *args, kind=kind, key=key)


def hub() -> Hub:
    """The Hub of the running app."""
    found: Hub = current_app.extensions["feedback_hub"]
    return found
