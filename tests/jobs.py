"""Jobs for the queue tests: they leave a trace in Redis a test can read."""

from __future__ import annotations

import subprocess
from pathlib import Path

from redis import Redis
from rq import SimpleWorker, get_current_job

from integrations.queue import QUEUES, queue
from workers.procs import process_env, procfile_args
from workers.worker import HubJob


def record(key: str) -> int:
    """Count one run for `key` in Redis (hash test:runs)."""
    job = get_current_job()
    assert job is not None
    return int(job.connection.hincrby("test:runs", key, 1))


def refuse(key: str) -> None:
    """Fail the way a Zendesk 422 does: permanently."""
    from integrations.errors import Permanent
    from workers.retry import run_guarded

    def body() -> None:
        raise Permanent("Zendesk refused to create ticket (422)", status=422, body='{"error":"x"}')

    run_guarded(body)


def leak(key: str) -> None:
    """Fail with the bot token in the message, as a client's error with a URL might."""
    import os

    raise RuntimeError(f"GET https://slack.test/api/x?token={os.environ['SLACK_BOT_TOKEN']} (500)")


def fail_until(key: str, attempts: int) -> int:
    """Fail (as an outage would) until this has been tried `attempts` times, then count a run."""
    job = get_current_job()
    assert job is not None
    tries = int(job.connection.hincrby("test:tries", key, 1))
    if tries < attempts:
        raise ConnectionError(f"outage, try {tries}")
    return int(job.connection.hincrby("test:runs", key, 1))


class _BurstWorker(SimpleWorker):
    """rq's SimpleWorker without its command channel, which a burst in a test never uses.

    rq 3.0 stops its pubsub thread with redis-py 8.2's `stop()`, which joins the thread while
    it may sit in a 60 s `get_message` (whether it does is a race): each run_jobs could
    take a minute.
    """

    def subscribe(self) -> None:
        """No command channel."""

    def unsubscribe(self) -> None:
        """No command channel."""


def run_jobs(redis: Redis, queues: tuple[str, ...] = QUEUES) -> None:
    """Run every queued job, and the jobs they queue, in this process (rq's SimpleWorker, burst).

    The jobs see this test's environment (the worker_env fixture).
    """
    worker = _BurstWorker(
        [queue(redis, name) for name in queues], connection=redis, job_class=HubJob
    )
    worker.work(burst=True, with_scheduler=False)


def run_worker_burst(env: dict[str, str], repo_root: Path) -> subprocess.CompletedProcess[str]:
    """Run the Procfile's worker command in burst mode until the queues are empty."""
    full_env = process_env({**env, "PYTHONPATH": str(repo_root)})
    args = [*procfile_args("worker", full_env), "--burst"]
    return subprocess.run(
        args, env=full_env, cwd=repo_root, capture_output=True, text=True, timeout=120, check=False
    )
