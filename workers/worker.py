"""The worker entry point: an rq worker with the scheduler, on the hub's queues.

It rides out a Redis outage. rq retries a lost connection only while it waits for
a job; a heartbeat, a suspension check or a job's bookkeeping meeting a restarting
Redis ends rq's work loop ("found an unhandled exception, quitting...") and the
process with it, and nothing is filed until the platform restarts the worker.
`HubWorker` waits for Redis at those places instead (backoff up to 5 s), registers
itself again if Redis came back without it, and hands back the job it was running.
"""

from __future__ import annotations

import importlib
import logging
import time
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Worker
from rq.exceptions import InvalidJobOperation, StopRequested
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.utils import import_attribute

from integrations import logs
from integrations.queue import QUEUES, connect, queue
from integrations.queue.enqueue import check_rq_format
from integrations.queue.jobs import JOBS, current_name
from integrations.settings import Settings
from rules.store import store_for
from workers.context import installed, known_secrets
from workers.digest import maintenance_tick as digest_tick
from workers.maintenance import run_once
from workers.timers import ensure_tick, sweep_checks

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
# What a Redis restart or a network cut raises; other Redis errors are bugs or
# misconfiguration (a wrong password, OOM) and are not waited out.
OUTAGE = (RedisConnectionError, RedisTimeoutError)
# Waits between tries while Redis is away: 0.5 s, growing by half, at most this.
MAX_OUTAGE_WAIT = 5.0
# A job whose bookkeeping a Redis outage interrupted: rq's state says neither done nor failed.
_UNSETTLED = {JobStatus.STARTED, JobStatus.QUEUED}


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
    # Set by SIGTERM/SIGINT: the platform is stopping this worker (rq raises or waits).
    stopping = False

    def request_stop(self, signum: Any, frame: Any) -> None:
        """rq's warm shutdown, remembered so `run` does not start the worker again."""
        self.stopping = True
        super().request_stop(signum, frame)

    def subscribe(self) -> None:
        """rq's command channel (`rq` stop-job commands), read in 1 s waits, not 60 s.

        rq reads it in a thread that waits up to 60 s for a message; with redis-py 8.2,
        closing the channel at shutdown waits for that wait to end, so every worker took
        up to a minute to stop (longer than a platform's grace period: Heroku's is 30 s).
        A second's wait costs one small Redis read a second per worker.
        """
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
            sleep_time=1, daemon=True, exception_handler=self._pubsub_exception_handler
        )

    def handle_job_failure(
        self,
        job: Job,
        queue: Queue,
        started_job_registry: Any = None,
        exc_string: str = "",
        execution: Any = None,
    ) -> None:
        """rq's failure bookkeeping, with the secrets taken out of the traceback it keeps.

        rq stores the formatted exception with the job's result and in the failed registry:
        what `feedback-hub failed`, the console's dead letters and the ops alert show. An
        exception message may carry a token (a URL, a client's error): it is replaced here,
        before anything is stored.
        """
        exc_string = logs.Redactor(known_secrets())(exc_string)
        super().handle_job_failure(job, queue, started_job_registry, exc_string, execution)

    def run_maintenance_tasks(self) -> None:
        """rq's maintenance, then the hub's lost-job sweep (one worker at a time)."""
        try:
            super().run_maintenance_tasks()
            run_once(self.connection, every=self.maintenance_interval)
            # A first-reply tick chain that died with its worker begins again (workers/timers.py).
            ensure_tick(self.connection)
            # Breached clocks with no look at Zendesk coming get one (once a day).
            sweep_checks(self.connection)
            # The weekly tag digest: claimed once per ISO week, whoever ticks (workers/digest.py).
            digest_tick(self.connection)
        except OUTAGE as exc:
            self.ride_out_outage(exc)
        except RedisError as exc:
            logs.event(log, "maintenance.failed", logging.WARNING, error=type(exc).__name__)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """rq's heartbeat; during an outage, wait for Redis and beat once it is back."""
        if pipeline is not None:  # part of the caller's transaction: the caller handles it
            super().heartbeat(timeout, pipeline)
            return
        try:
            super().heartbeat(timeout)
        except OUTAGE as exc:
            self.ride_out_outage(exc)
            super().heartbeat(timeout)
        # Also after an outage rq's own dequeue loop waited out (it beats once it is back).
        self.revive_scheduler()

    def revive_scheduler(self) -> None:
        """Start this worker's scheduler process again if a lost connection ended it.

        rq's scheduler (retries, rate-limited jobs) exits on a lost connection, and rq
        starts it again only at its next maintenance, up to a minute on; its lock is
        still this worker's, so it can start again at once.
        """
        scheduler = self.scheduler
        process = scheduler._process if scheduler is not None else None
        if scheduler is None or process is None or process.is_alive():
            return
        try:
            scheduler.acquire_locks(auto_start=True)
        except OUTAGE:
            return  # Redis is still away: the next heartbeat tries again
        logs.event(log, "worker.scheduler_restarted", worker=self.name)

    def check_for_suspension(self, burst: bool) -> None:
        """rq's suspension check, waiting out an outage."""
        try:
            super().check_for_suspension(burst)
        except OUTAGE as exc:
            self.ride_out_outage(exc)

    def maintain_heartbeats(self, job: Job, execution: Any = None) -> None:
        """Keep the running job's heartbeats; an outage skips one beat, never the job."""
        try:
            super().maintain_heartbeats(job, execution)
        except OUTAGE as exc:
            logs.event(log, "worker.heartbeat_missed", logging.WARNING, job=job.id,
                       error=type(exc).__name__)  # fmt: skip

    # The execution of the job being run (rq 3 records each run in the started registry).
    _execution: Any = None

    def prepare_execution(self, job: Job) -> Any:
        """rq's bookkeeping before a run, remembered for `hand_back`."""
        self._execution = super().prepare_execution(job)
        return self._execution

    def execute_job(self, job: Job, queue: Queue) -> None:
        """rq's execution; a job whose bookkeeping met an outage is handed back after it."""
        self._execution = None
        try:
            super().execute_job(job, queue)
        except OUTAGE as exc:
            self.ride_out_outage(exc)
            self.hand_back(job, queue)

    def hand_back(self, job: Job, queue: Queue) -> None:
        """Retry a job an outage left unsettled (running it again is safe: effects are
        idempotent), as its own failure would be: rq's Retry, then a dead letter."""
        try:
            status = job.get_status(refresh=True)
        except InvalidJobOperation:
            return  # finished, and its result already expired
        if status not in _UNSETTLED:
            return  # the horse finished it (or failed it) before or after the outage
        logs.event(log, "worker.job_handed_back", logging.WARNING, job=job.id, queue=queue.name)
        # With its execution, so the started registry forgets this run now, not when
        # rq's cleanup finds it expired and takes it for a job that failed.
        self.handle_job_failure(
            job,
            queue=queue,
            exc_string="Redis became unreachable while the job ran",
            execution=self._execution,
        )

    def ride_out_outage(self, exc: Exception) -> None:
        """Wait until Redis answers again (backoff), then make sure this worker is registered."""
        logs.event(log, "worker.redis_lost", logging.WARNING, worker=self.name,
                   error=type(exc).__name__)  # fmt: skip
        started = time.monotonic()
        _wait_for_redis(self.connection, stopping=lambda: self.stopping)
        # A Redis that restarted without its data forgot this worker: register it again,
        # so rq's maintenance and /readyz count it as alive.
        if not self.connection.exists(self.key):
            self.register_birth()
        self.revive_scheduler()
        logs.event(log, "worker.redis_back", worker=self.name,
                   outage_seconds=round(time.monotonic() - started, 1))  # fmt: skip


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
    restarts = 0
    with installed(settings):
        while True:
            worker = HubWorker(
                [queue(connection, name) for name in queues],
                connection=connection,
                worker_ttl=WORKER_TTL,
                maintenance_interval=MAINTENANCE_SECONDS,
            )
            logs.event(log, "worker.start", queues=list(queues), burst=burst, worker=worker.name)
            try:
                # The scheduler runs inside the worker: rq retries with intervals and
                # rescheduled (rate limited) jobs need it.
                worked = worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
            except OUTAGE as exc:  # rq's teardown met the outage
                worked = False
                if worker.stopping:
                    logs.event(log, "worker.stopped_during_outage", logging.WARNING,
                               error=type(exc).__name__)  # fmt: skip
            if burst or worker.stopping:
                return worked
            # rq's work loop ended on an error it does not handle. A worker process that
            # exits files nothing until something restarts it: start a new worker in this
            # process once Redis answers.
            restarts += 1
            logs.event(log, "worker.restarting", logging.WARNING, worker=worker.name,
                       restarts=restarts)  # fmt: skip
            # Never a busy loop, should the error come back at once every time.
            time.sleep(min(2.0**restarts, MAX_OUTAGE_WAIT))
            _wait_for_redis(connection)


def _wait_for_redis(connection: Any, *, stopping: Any = lambda: False) -> None:
    """Return once Redis answers PING; tries back off from 0.5 s to MAX_OUTAGE_WAIT."""
    wait = 0.5
    while True:
        if stopping():
            raise StopRequested()
        time.sleep(wait)
        try:
            connection.ping()
            return
        except OUTAGE:
            wait = min(wait * 1.5, MAX_OUTAGE_WAIT)
