"""Group commit: requests handled at the same moment share a round trip to Redis, each one
still answered only after Redis holds its own job."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from redis import ConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from integrations.queue import TICKETS, Enqueued, GroupCommit, queue
from integrations.queue.status import StatusStore
from integrations.queue.wire import Commands
from integrations.report import Report, Reporter
from integrations.settings import Settings
from integrations.web import Hub

CALLERS = 24


class CountingPool(ConnectionPool):
    """A real connection pool that counts the connections taken (one per round trip)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.taken = 0
        self._count_lock = threading.Lock()

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        with self._count_lock:
            self.taken += 1
        return super().get_connection(*args, **kwargs)


def _report(n: int) -> Report:
    return Report(
        source="slack_command",
        idempotency_key=f"slack:command:T1:U{n}:C1:trigger-{n}",
        reporter=Reporter(name=f"person {n}", slack_team_id="T1", slack_user_id=f"U{n}"),
        subject=f"The export button does nothing ({n})",
        description="Clicked it twice.",
    )


def _file_all(hub: Hub, reports: list[Report]) -> list[Enqueued]:
    start = threading.Barrier(len(reports))

    def file(report: Report) -> Enqueued:
        start.wait()
        return hub.file_report(report)

    with ThreadPoolExecutor(len(reports)) as pool:
        return list(pool.map(file, reports))


def test_concurrent_reports_share_round_trips_and_every_one_is_queued(
    redis: Redis, settings: Settings
) -> None:
    pool = CountingPool(**redis.connection_pool.connection_kwargs)
    hub = Hub(settings=settings, redis=Redis(connection_pool=pool))
    hub.file_report(_report(CALLERS))  # the first report of a process builds its job template
    pool.taken = 0
    # Redis holds writes for 300 ms: the first round trip is on the wire while the others
    # arrive, as under load, so they must wait for it and go together in the next one.
    other = Redis(connection_pool=redis.connection_pool)
    other.execute_command("CLIENT", "PAUSE", 300, "WRITE")
    reports = [_report(n) for n in range(CALLERS)]

    results = _file_all(hub, reports)

    assert all(r.created for r in results)
    assert len({r.job_id for r in results}) == CALLERS
    assert queue(redis, TICKETS).count == CALLERS + 1
    statuses = StatusStore(redis)
    assert all(statuses.get(r.key_digest).state == "queued" for r in reports)  # type: ignore[union-attr]
    # The paused first trip, then the rest together (a late thread may make one more).
    assert pool.taken <= 3, f"{CALLERS} reports took {pool.taken} round trips"


def test_a_report_sent_again_in_the_same_batch_is_one_job(redis: Redis, settings: Settings) -> None:
    hub = Hub(settings=settings, redis=redis)
    Redis(connection_pool=redis.connection_pool).execute_command("CLIENT", "PAUSE", 200, "WRITE")
    same = _report(7)

    results = _file_all(hub, [same] * 8)

    assert sum(r.created for r in results) == 1
    assert len({r.job_id for r in results}) == 1
    assert queue(redis, TICKETS).count == 1


def test_a_new_redis_without_the_script_still_takes_the_whole_batch(
    redis: Redis, settings: Settings
) -> None:
    hub = Hub(settings=settings, redis=redis)
    hub.file_report(_report(100))
    redis.script_flush()  # as after a Redis restart: EVALSHA answers NOSCRIPT

    results = _file_all(hub, [_report(n) for n in range(8)])

    assert all(r.created for r in results)
    assert queue(redis, TICKETS).count == 9


def test_a_redis_with_only_rqs_script_files_each_report_once_and_lists_it(
    redis: Redis, settings: Settings
) -> None:
    from rq.scripts import UNIQUE_ENQUEUE_SCRIPT

    from integrations.queue.report_log import ReportFilter, ReportLog

    # rq loaded its own script (a worker's enqueue) after a restart; the console's is missing.
    redis.script_flush()
    redis.script_load(UNIQUE_ENQUEUE_SCRIPT)
    hub = Hub(settings=settings, redis=redis)

    results = _file_all(hub, [_report(n) for n in range(4)])

    # New reports, as the callers are told (not "already queued": a mobile app's
    # attachments would be dropped as a duplicate's), each listed once, queued.
    assert all(r.created for r in results)
    assert queue(redis, TICKETS).count == 4
    rows = ReportLog(redis).page(ReportFilter(status="queued")).rows
    assert sorted(r.subject for r in rows) == [_report(n).subject for n in range(4)]


def test_redis_down_fails_every_waiting_caller_and_none_hangs(settings: Settings) -> None:
    # Nothing listens on port 1: every caller must get the error, to answer "please retry".
    down = Redis(port=1, socket_timeout=1, socket_connect_timeout=1)
    hub = Hub(settings=settings, redis=down)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def file(n: int) -> None:
        start.wait()
        try:
            hub.file_report(_report(n))
        except RedisError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=file, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a caller is still waiting"
    assert len(errors) == 8
    assert all(isinstance(e, RedisConnectionError) for e in errors)


def test_a_command_error_in_a_batch_is_its_callers_alone(redis: Redis) -> None:
    writer = GroupCommit(redis)
    redis.set("not-a-list", "x")
    Redis(connection_pool=redis.connection_pool).execute_command("CLIENT", "PAUSE", 200, "WRITE")

    stages = [Commands().add("SET", f"fine-{n}", "1") for n in range(6)]
    stages.insert(3, Commands().add("LPUSH", "not-a-list", "y"))
    start = threading.Barrier(len(stages))

    def write(stage: Any) -> Any:
        start.wait()
        try:
            return writer.write(stage)
        except RedisError as exc:
            return exc

    with ThreadPoolExecutor(len(stages)) as pool:
        results = list(pool.map(write, stages))

    assert isinstance(results[3], RedisError) and "WRONGTYPE" in str(results[3])
    assert [r for i, r in enumerate(results) if i != 3] == [[b"OK"]] * 6
    assert all(redis.get(f"fine-{n}") == b"1" for n in range(6))


def test_callers_stuck_behind_a_slow_trip_give_up_and_the_writer_recovers(redis: Redis) -> None:
    # A round trip that outlasts the followers' patience (Redis holding writes for 1 s):
    # they are told, so the request can answer "please retry", and the writer still works.
    writer = GroupCommit(redis, wait_seconds=0.3)
    Redis(connection_pool=redis.connection_pool).execute_command("CLIENT", "PAUSE", 1000, "WRITE")
    start = threading.Barrier(4)

    def write(n: int) -> Any:
        start.wait()
        if n:
            time.sleep(0.05)  # the first caller leads
        try:
            return writer.write(Commands().add("SET", f"slow-{n}", "1"))
        except RedisError as exc:
            return exc

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(write, range(4)))

    assert results[0] == [b"OK"]
    gave_up = [r for r in results[1:] if isinstance(r, RedisError)]
    assert gave_up and all("did not start" in str(r) for r in gave_up)
    # Nobody gave up on a write that then happened anyway, and nothing is left stuck.
    assert all(redis.get(f"slow-{n}") is None for n, r in enumerate(results) if r in gave_up)
    assert writer.write(Commands().add("SET", "after", "1")) == [b"OK"]
