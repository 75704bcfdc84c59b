"""The weekly tag digest through the Slack sandbox: two workers, restarts, a clock moved
across weeks; exactly one digest per week, a missed week sent late once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from redis import Redis

from app import cli
from integrations.queue import QUEUES, queue
from integrations.queue.tag_counts import count_report, week_start
from integrations.sandbox import SlackSandbox, ZendeskSandbox
from integrations.settings import Settings
from tests.jobs import run_jobs
from workers import digest
from workers.context import installed
from workers.worker import HubWorker

CHANNEL = "#product-trends"


@pytest.fixture
def digest_env(
    worker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    extra = {"DIGEST_CHANNEL": CHANNEL, "DIGEST_TZ": "Europe/Berlin"}
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    yield {**worker_env, **extra}


def _file(redis: Redis, ticket: int, week: str, tags: list[str], subject: str) -> None:
    count_report(
        redis,
        ticket_id=ticket,
        received_at=week_start(week) + timedelta(days=2, hours=ticket % 24),
        tags=tags,
        taxonomy_tags=tags,
        group="Support",
        source="slack_command",
        subject=subject,
        text=f"{subject}\n{subject}",
    )


def _seed(redis: Redis) -> None:
    ticket = 0
    # Six quiet weeks of `export`, then 16 in 2026-W50; `dark_mode` first seen in W50.
    for week in ("2026-W44", "2026-W45", "2026-W46", "2026-W47", "2026-W48", "2026-W49"):
        for _ in range(3):
            ticket += 1
            _file(redis, ticket, week, ["export"], "Export is slow")
    for i in range(16):
        ticket += 1
        subject = "Export <!channel> fails" if i == 15 else f"Export fails for file {i}"
        _file(redis, ticket, "2026-W50", ["export"], subject)
    for _ in range(2):
        ticket += 1
        _file(redis, ticket, "2026-W50", ["dark_mode"], "Dark mode please")
    for _ in range(3):
        ticket += 1
        _file(redis, ticket, "2026-W50", [], "The footer colour looks odd on my tablet")


def test_one_digest_per_week_across_two_workers_restarts_and_a_missed_week(
    digest_env: dict[str, str],
    redis: Redis,
    slack_sandbox: SlackSandbox,
    zendesk_sandbox: ZendeskSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _seed(redis)
    settings = Settings.from_env("worker", digest_env)
    clock = [datetime(2026, 12, 14, 7, 30, tzinfo=UTC)]
    monkeypatch.setattr(digest, "_now", lambda: clock[0])

    def two_workers() -> list[HubWorker]:
        return [
            HubWorker(
                [queue(redis, n) for n in QUEUES],
                connection=Redis.from_url(digest_env["REDIS_URL"]),
            )
            for _ in range(2)
        ]

    def at(moment: datetime, workers: list[HubWorker]) -> None:
        clock[0] = moment
        for worker in workers:
            worker.run_maintenance_tasks()
        run_jobs(redis)

    def weeks_posted() -> list[str]:
        return [m.text.splitlines()[0] for m in slack_sandbox.channel_messages(CHANNEL)]

    with installed(settings):
        workers = two_workers()
        # Monday 08:30 in Berlin, the hub's first minute: last Monday's digest (W49) is
        # sent late, once.
        at(datetime(2026, 12, 14, 7, 30, tzinfo=UTC), workers)
        at(datetime(2026, 12, 14, 7, 31, tzinfo=UTC), workers)
        workers = two_workers()  # both restart
        at(datetime(2026, 12, 14, 7, 59, tzinfo=UTC), workers)
        assert weeks_posted() == ["*Tag digest, week 2026-W49* (Mon 30 Nov - Sun 06 Dec 2026, UTC)"]
        # 09:00 in Berlin: W50's digest, once, whoever ticks and however often.
        for minute in range(3):
            at(datetime(2026, 12, 14, 8, minute, tzinfo=UTC), workers)
        workers = two_workers()
        at(datetime(2026, 12, 16, 12, 0, tzinfo=UTC), workers)
        assert len(weeks_posted()) == 2
        # The workers were down over two Mondays: only the latest due week (W52) is sent.
        at(datetime(2026, 12, 30, 12, 0, tzinfo=UTC), two_workers())
        at(datetime(2026, 12, 30, 12, 1, tzinfo=UTC), two_workers())

    posted = weeks_posted()
    assert [line.split("*")[1] for line in posted] == [
        "Tag digest, week 2026-W49",
        "Tag digest, week 2026-W50",
        "Tag digest, week 2026-W52",
    ]
    w50 = slack_sandbox.channel_messages(CHANNEL)[1].text
    # 16 export + 2 dark_mode + 3 the taxonomy did not tag.
    assert "21 report(s); the taxonomy left 3 untagged (14%)" in w50
    assert "• `export` 16" in w50
    mover = w50.split("*Movers*")[1].split("*New tags*")[0]
    # Twelve weeks: five before the counters began, six quiet ones, then this week.
    # The baseline: the 8 weeks before (two zeros, six of 3) = 2.25.
    assert "`export` 16 (usually 2.2, p=" in mover and "▁▁▁▁▁▂▂▂▂▂▂█" in mover
    # Two example subjects with ticket links, escaped for mrkdwn; no reporter anywhere.
    assert f"<{zendesk_sandbox.url}/agent/tickets/" in mover
    assert "Export &lt;!channel&gt; fails" in mover and "<!channel>" not in w50
    assert mover.count("/agent/tickets/") == 2
    new = w50.split("*New tags*")[1].split("*Tending")[0]
    assert "`dark_mode` 2" in new
    assert '"footer colour' in w50


def test_digest_now_dry_run_prints_and_now_posts_once(
    digest_env: dict[str, str], redis: Redis, slack_sandbox: SlackSandbox
) -> None:
    _seed(redis)
    result = CliRunner().invoke(cli, ["digest", "--now", "--dry-run", "--week", "2026-W50"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("*Tag digest, week 2026-W50*")
    assert "`dark_mode`" in result.output
    assert slack_sandbox.calls("chat.postMessage") == []
    # --now posts it, once: the scheduled job (or a second --now) finds it posted.
    for said in ("posted the digest of 2026-W50", "was posted already; nothing sent"):
        result = CliRunner().invoke(cli, ["digest", "--now", "--week", "2026-W50"])
        assert result.exit_code == 0, result.output
        assert said in result.output
    [posted] = slack_sandbox.channel_messages(CHANNEL)
    assert posted.text.startswith("*Tag digest, week 2026-W50*")
