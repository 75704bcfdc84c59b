"""Jobs for the queue tests: they leave a trace in Redis a test can read."""

from __future__ import annotations

from rq import get_current_job


def record(key: str) -> int:
    """Count one run for `key` in Redis (hash test:runs)."""
    job = get_current_job()
    assert job is not None
    return int(job.connection.hincrby("test:runs", key, 1))
