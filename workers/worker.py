"""The worker entry point: an rq worker with the scheduler, on the hub's queues."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from redis.exceptions import RedisError
from rq import Worker
from rq.job import Job
from rq.utils import import_attribute

from integrations import logs
from integrations.queue import QUEUES, connect, queue
from integrations.queue.enqueue import check_rq_format
from integrations.queue.jobs import JOBS, current_name
from integrations.settings import Settings
from rules.store import store_for
from workers.context import installed
from workers.maintenance import run_once

log = logging.getLogger(__name__)

# What a dead worker leaves behind (its scheduler lock, 61 s TTL; its job in the
# started registry until the heartbeat lapses, 90 s) is taken over only by another
# worker's maintenance. rq runs it every 10 minutes, and an idle worker only between
# blocking dequeues of worker_ttl - 15 s (405 s by default): retries and rate-limited
# jobs could wait ~10 minutes for a scheduler. A minute each bounds that to ~2-3 minutes.
MAINTENANCE_SECONDS = 60
WORKER_TTL = 75
# Each job runs in a work horse forked from the worker: what is imported here is
# inherited, not imported again by every job (about 0.3 s of CPU each: zenpy,
# slack_sdk, the rules engine), which otherwise caps a worker at a few jobs a second.
PRELOAD = tuple(dict.fromkeys(spec.func.rsplit(".", 1)[0] for spec in JOBS.values()))


class HubJob(Job):
    """rq's job, which runs a job queued under a renamed function's old name.

    Jobs queued by the previous version are still in Redis when a new one starts; rq
    stores the function's dotted name, so each name ever released must still run
    (integrations/queue/jobs.py RENAMED).
    """

    @property
    def func(self) -> Any:
        """The function to run, found by its current name."""
        name = self.func_name
        if name is None or self.instance is not None:
            return super().func
        return import_attribute(current_name(name))


class HubWorker(Worker):
    """rq's worker, whose maintenance also queues again jobs rq lost (workers/maintenance.py)."""

    job_class = HubJob

    def run_maintenance_tasks(self) -> None:
        """rq's maintenance, then the hub's lost-job sweep (one worker at a time)."""
        super().run_maintenance_tasks()
        try:
            run_once(self.connection, every=self.maintenance_interval)
        except RedisError as exc:
            logs.event(log, "maintenance.failed", logging.WARNING, error=type(exc).__name__)


def run(settings: Settings, *, burst: bool = False, queues: tuple[str, ...] = QUEUES) -> bool:
    """Work the queues until stopped (or, with burst, until they are empty)."""
    assert settings.redis_url, "worker settings always have REDIS_URL"
    connection = connect(settings.redis_url, timeout=30)
    # The web process writes rq's job hash itself: a worker whose rq reads it differently
    # must not start and fail every job.
    check_rq_format(connection)
    for module in PRELOAD:
        importlib.import_module(module)
    store_for(settings.rules_path).current()
    worker = HubWorker(
        [queue(connection, name) for name in queues],
        connection=connection,
        worker_ttl=WORKER_TTL,
        maintenance_interval=MAINTENANCE_SECONDS,
    )
    logs.event(log, "worker.start", queues=list(queues), burst=burst, worker=worker.name)
    # The scheduler runs inside the worker: rq retries with intervals and
    # rescheduled (rate limited) jobs need it. Every job of this worker gets its settings.
    with installed(settings):
        return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
