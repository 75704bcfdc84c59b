"""The worker entry point: an rq worker with the scheduler, on the hub's queues."""

from __future__ import annotations

import logging

from rq import Worker

from integrations import logs
from integrations.settings import Settings
from workers.queues import QUEUES, connect, queue

log = logging.getLogger(__name__)


def run(settings: Settings, *, burst: bool = False, queues: tuple[str, ...] = QUEUES) -> bool:
    """Work the queues until stopped (or, with burst, until they are empty)."""
    assert settings.redis_url, "worker settings always have REDIS_URL"
    connection = connect(settings.redis_url, timeout=30)
    worker = Worker([queue(connection, name) for name in queues], connection=connection)
    logs.event(log, "worker.start", queues=list(queues), burst=burst, worker=worker.name)
    # The scheduler runs inside the worker: rq retries with intervals and
    # rescheduled (rate limited) jobs need it.
    return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
