"""Timer storage: started once, stopped once, each stage claimed once, kept across restarts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from redis import Redis

from integrations.queue.timers import Timer, TimerStore
from workers.procs import free_port, start_redis, stop

NOW = 1_800_000_000.0


def a_timer(ticket_id: int = 7, **changes: object) -> Timer:
    timer = Timer(
        ticket_id=ticket_id,
        subject="Export button does nothing",
        group="Support",
        target="Everything else within an hour",
        seconds=3600,
        accepted=NOW,
        nudge_at=NOW + 2700,
        breach_at=NOW + 3600,
        nudge_channel="#support-triage",
        breach_channel="#support-escalations",
        breach_tags=("response_overdue",),
        url=f"https://example.zendesk.com/agent/tickets/{ticket_id}",
        requester_id=10002,
    )
    return replace(timer, **changes)  # type: ignore[arg-type]


def test_a_second_start_keeps_the_first_clock(redis: Redis) -> None:
    store = TimerStore(redis)
    assert store.start(a_timer())
    assert not store.start(a_timer(accepted=NOW + 600, breach_at=NOW + 4200))
    timer = store.get(7)
    assert timer is not None
    assert (timer.accepted, timer.breach_at, timer.state) == (NOW, NOW + 3600, "open")
    assert store.due(NOW + 2699) == []
    assert store.due(NOW + 3600) == [(7, "nudge", NOW + 2700), (7, "breach", NOW + 3600)]
    assert store.open_count() == 1


def test_each_stage_is_claimed_once_and_not_after_the_clock_stopped(redis: Redis) -> None:
    store = TimerStore(redis)
    store.start(a_timer())
    store.start(a_timer(8))
    timer = store.get(7)
    assert timer is not None
    assert store.claim(timer, "nudge", NOW + 2700)
    assert not store.claim(timer, "nudge", NOW + 2701)
    assert store.nudged("#support-triage") == [7]
    assert store.stop(timer, state="answered", at=NOW + 3000, by="Sam Support")
    assert not store.claim(timer, "breach", NOW + 3600)
    other = store.get(8)
    assert other is not None
    assert store.claim(other, "breach", NOW + 3600)
    assert not store.claim(other, "breach", NOW + 3601)


def test_the_first_stop_counts_and_a_repeat_does_not(redis: Redis, client: FlaskClient) -> None:
    store = TimerStore(redis)
    store.start(a_timer())
    timer = store.get(7)
    assert timer is not None
    assert store.stop(timer, state="answered", at=NOW + 1200, by="Sam Support")
    assert not store.stop(timer, state="answered", at=NOW + 1800, by="Someone Else")
    stopped = store.get(7)
    assert stopped is not None
    assert (stopped.state, stopped.stopped_at, stopped.answered_by) == (
        "answered",
        NOW + 1200,
        "Sam Support",
    )
    assert store.due(NOW + 9999) == []
    assert store.open_count() == 0
    text = client.get("/metrics").get_data(as_text=True)
    labels = 'group="Support",target="Everything else within an hour"'
    bucket = 'feedback_hub_first_reply_seconds_bucket{{group="Support",le="{}",target="{}"}}'
    target = "Everything else within an hour"
    # 20 minutes: not within 15, within 30; counted once.
    assert bucket.format("900.0", target) + " 0.0" in text
    assert bucket.format("1800.0", target) + " 1.0" in text
    assert f"feedback_hub_first_reply_seconds_count{{{labels}}} 1.0" in text
    assert f"feedback_hub_first_reply_seconds_sum{{{labels}}} 1200.0" in text
    assert "feedback_hub_open_timers 0.0" in text


def test_breaches_and_open_timers_in_metrics(redis: Redis, client: FlaskClient) -> None:
    store = TimerStore(redis)
    store.start(a_timer(1))
    store.start(a_timer(2, group="Billing"))
    timer = store.get(2)
    assert timer is not None
    store.claim(timer, "breach", NOW + 3600)
    text = client.get("/metrics").get_data(as_text=True)
    assert "feedback_hub_open_timers 2.0" in text
    assert (
        'feedback_hub_first_reply_breaches_total{group="Billing",'
        'target="Everything else within an hour"} 1.0'
    ) in text


@pytest.fixture
def aof_redis(tmp_path: Path) -> tuple[int, Path]:
    return free_port(), tmp_path / "aof"


def test_timers_survive_a_redis_restart_with_its_append_only_file(
    aof_redis: tuple[int, Path],
) -> None:
    port, directory = aof_redis
    proc = start_redis(port, directory, appendonly=True)
    try:
        redis = Redis(port=port)
        store = TimerStore(redis)
        store.start(a_timer())
        timer = store.get(7)
        assert timer is not None and store.claim(timer, "nudge", NOW + 2700)
        # What Redis does on SIGTERM: the append-only file is flushed, then it exits.
        redis.close()
    finally:
        stop(proc)
    proc = start_redis(port, directory, appendonly=True)
    try:
        redis = Redis(port=port)
        store = TimerStore(redis)
        timer = store.get(7)
        assert timer is not None and timer.open and timer.nudged
        assert store.due(NOW + 3600) == [(7, "nudge", NOW + 2700), (7, "breach", NOW + 3600)]
        # The nudge was claimed before the restart: it is not claimed again.
        assert not store.claim(timer, "nudge", NOW + 2800)
        assert store.claim(timer, "breach", NOW + 3600)
        redis.close()
    finally:
        stop(proc)
