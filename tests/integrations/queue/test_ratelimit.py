"""The shared rate limiter: one budget in Redis for every worker, fed by the API's headers."""

from __future__ import annotations

from email.utils import formatdate

import pytest
from redis import Redis

from integrations.errors import Retryable
from integrations.queue.ratelimit import RateLimiter, retry_after_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_429_blocks_every_worker_for_retry_after(redis: Redis) -> None:
    clock = Clock()
    first = RateLimiter(redis, "zendesk", clock=clock)
    second = RateLimiter(redis, "zendesk", clock=clock)  # another worker, same Redis
    assert first.observe(429, {"Retry-After": "30"}) == 30
    with pytest.raises(Retryable) as err:
        second.acquire()
    assert err.value.retry_after == pytest.approx(30)
    clock.now += 31
    second.acquire()  # the wait is over


def test_low_remaining_budget_waits_for_the_window(redis: Redis) -> None:
    clock = Clock()
    limiter = RateLimiter(redis, "zendesk", reserve=2, clock=clock)
    limiter.observe(200, {"X-Rate-Limit-Remaining": "4", "X-Rate-Limit": "200"})
    limiter.acquire()  # 4 -> 3
    limiter.acquire()  # 3 -> 2
    with pytest.raises(Retryable) as err:
        limiter.acquire()
    assert 0 < (err.value.retry_after or 0) <= 60
    clock.now += 61
    limiter.acquire()  # a new window: what the API says next is trusted again


def test_budgets_are_per_api(redis: Redis) -> None:
    clock = Clock()
    RateLimiter(redis, "zendesk", clock=clock).observe(429, {"Retry-After": "10"})
    # Zendesk's 429 holds back Zendesk calls only: Slack's still go.
    with pytest.raises(Retryable):
        RateLimiter(redis, "zendesk", clock=clock).acquire()
    RateLimiter(redis, "slack:chat.postMessage", clock=clock).acquire()


def test_429_without_retry_after_waits_a_minute(redis: Redis) -> None:
    assert RateLimiter(redis, "zendesk").observe(429, {}) == 60


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", 30.0),
        ("0", 1.0),
        ("1.5", 1.5),
        ("soon", None),
        ("", None),
        (None, None),
        ("-5", None),
    ],
)
def test_retry_after_parsing(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value) == expected


def test_retry_after_as_http_date() -> None:
    now = 1_700_000_000.0
    assert retry_after_seconds(formatdate(now + 120, usegmt=True), now) == pytest.approx(120)


def test_requests_are_paced_just_under_the_advertised_limit(redis: Redis) -> None:
    clock = Clock()
    start = clock.now
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    limiter = RateLimiter(redis, "zendesk", clock=clock)
    limiter.observe(201, {"X-Rate-Limit": "120", "X-Rate-Limit-Remaining": "119"})
    for _ in range(60):
        limiter.acquire(sleep_up_to=1.0, sleep=sleep)
    elapsed = clock.now - start
    # 120/min paced at 95% is 1.9 requests a second: 60 requests, after a burst
    # of 3 (two seconds' worth, rounded down), take about 30 seconds.
    assert 29.0 <= elapsed <= 31.0
    assert all(s <= 1.0 for s in slept)


def test_long_waits_reschedule_instead_of_sleeping(redis: Redis) -> None:
    clock = Clock()
    limiter = RateLimiter(redis, "zendesk", clock=clock)
    limiter.observe(429, {"Retry-After": "5"})
    with pytest.raises(Retryable):
        limiter.acquire(sleep_up_to=1.0, sleep=lambda s: pytest.fail("slept on a 429"))


def test_low_remaining_without_a_reset_time_refills_as_a_sliding_window(redis: Redis) -> None:
    # The budget of a sliding window comes back request by request: a low count is a
    # short wait, not a minute's freeze of every worker (bench/drain_bench.py).
    clock = Clock()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    limiter = RateLimiter(redis, "zendesk", reserve=2, clock=clock)
    limiter.observe(201, {"X-Rate-Limit": "200", "X-Rate-Limit-Remaining": "2"})
    limiter.acquire(sleep_up_to=1.0, sleep=sleep)
    assert slept == [pytest.approx(0.3)]  # one request's share of 200 a minute


def test_low_remaining_with_a_reset_time_waits_for_the_reset(redis: Redis) -> None:
    clock = Clock()
    limiter = RateLimiter(redis, "zendesk", reserve=2, clock=clock)
    limiter.observe(
        201, {"X-Rate-Limit": "200", "X-Rate-Limit-Remaining": "1", "ratelimit-reset": "40"}
    )
    with pytest.raises(Retryable) as err:
        limiter.acquire(sleep_up_to=1.0, sleep=lambda s: pytest.fail("slept out a spent budget"))
    assert err.value.retry_after == pytest.approx(40)
