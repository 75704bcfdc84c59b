"""A job rq popped and then lost (its worker died, or Redis restarted, before it started) is
queued again by the workers' maintenance (workers/maintenance.py)."""

from __future__ import annotations

from dataclasses import replace

from redis import Redis
from rq.job import Job, JobStatus

from integrations.queue import NOTIFY, TICKETS, enqueue_once, queue
from integrations.queue.jobs import FILE_REPORT, OPS_ALERT
from workers.maintenance import lost_jobs, requeue_lost


def _enqueue(redis: Redis, key: str) -> str:
    return enqueue_once(redis, replace(FILE_REPORT, kind="t"), {}, key=key).job_id


def test_a_popped_job_that_never_started_is_queued_again_once_it_has_stayed_lost(
    redis: Redis,
) -> None:
    waiting = _enqueue(redis, "waiting")
    lost = _enqueue(redis, "lost")
    tickets = queue(redis, TICKETS)
    # What a worker's BLPOP does; the worker then dies before it marks the job started.
    redis.lrem(tickets.key, 1, lost)
    assert lost_jobs(redis) == {lost: TICKETS}

    assert requeue_lost(redis, min_age=30, clock=1000.0) == []  # first seen: maybe mid-pop
    assert requeue_lost(redis, min_age=30, clock=1010.0) == []  # not long enough yet
    assert requeue_lost(redis, min_age=30, clock=1031.0) == [lost]

    assert tickets.get_job_ids() == [lost, waiting]  # at the front: it waited long enough
    assert lost_jobs(redis) == {}
    assert requeue_lost(redis, min_age=30, clock=1100.0) == []


def test_started_scheduled_and_finished_jobs_are_not_lost(redis: Redis) -> None:
    started = _enqueue(redis, "started")
    redis.lrem(queue(redis, TICKETS).key, 1, started)
    Job.fetch(started, connection=redis).set_status(JobStatus.STARTED)
    scheduled = enqueue_once(redis, replace(OPS_ALERT, kind="n"), "x", key="k").job_id
    redis.lrem(queue(redis, NOTIFY).key, 1, scheduled)
    Job.fetch(scheduled, connection=redis).set_status(JobStatus.SCHEDULED)

    assert lost_jobs(redis) == {}
    assert requeue_lost(redis, min_age=0, clock=1.0) == []
    assert requeue_lost(redis, min_age=0, clock=2.0) == []


def test_a_job_picked_up_between_sightings_is_left_alone(redis: Redis) -> None:
    jid = _enqueue(redis, "slow-pop")
    redis.lrem(queue(redis, TICKETS).key, 1, jid)
    assert requeue_lost(redis, min_age=1, clock=10.0) == []
    Job.fetch(jid, connection=redis).set_status(JobStatus.STARTED)  # the worker got there after all
    assert requeue_lost(redis, min_age=1, clock=20.0) == []
    assert queue(redis, TICKETS).get_job_ids() == []
