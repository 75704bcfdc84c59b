"""Workers ride out a Redis restart on their own (issue 23, defect 1).

Before: with reports arriving, a Redis restart made every worker log "found an
unhandled exception, quitting..." and exit; the web process went on answering
202, and nothing was filed until the platform restarted the workers. Here the
workers are never restarted and nothing recovers jobs for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import Cluster, assert_exactly_once

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """The hub with two workers, on a fresh Redis (AOF on) and fresh sandboxes."""
    with Cluster(tmp_path, workers=2) as running:
        yield running


def test_the_same_workers_file_everything_after_redis_restarts(cluster: Cluster) -> None:
    workers = {proc.pid: proc for proc in cluster.workers}
    cluster.faults(delay=0.5)  # each Zendesk call is slow: jobs are mid-flight when Redis goes
    before = cluster.send(10)
    cluster.restart_redis(down_for=4.0)
    cluster.faults(delay=0.0)
    after = cluster.send(20, start=10)
    drained = cluster.drain(timeout=200, hands_off=True)

    exited = {pid: proc.returncode for pid, proc in workers.items() if proc.poll() is not None}
    assert exited == {}, f"workers exited: {exited}\n{cluster.log_tail()}"
    assert {proc.pid for proc in cluster.workers} == set(workers), "no worker was replaced"
    verdict = cluster.verdict("Redis restart, workers alone", before + after, **drained)
    assert_exactly_once(verdict, cluster)
    assert verdict.acknowledged == 30, verdict.line()
    logs = cluster.hub_logs()
    assert "quitting" not in logs
    assert '"event": "worker.redis_lost"' in logs and '"event": "worker.redis_back"' in logs
