"""Tag counters: per ISO week (UTC), idempotent per report, moved by agents' tag changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis import Redis

from integrations.queue import tag_counts
from integrations.queue.tag_counts import (
    count_report,
    examples,
    iso_week,
    move_tags,
    recent_weeks,
    untagged_texts,
    week_start,
    weekly_counts,
    weekly_totals,
)

NOW = datetime(2026, 12, 9, 12, 0, tzinfo=UTC)  # a Wednesday of 2026-W50


def _count(redis: Redis, ticket: int, tags: list[str], **kw: Any) -> bool:
    values: dict[str, Any] = {
        "received_at": NOW,
        "taxonomy_tags": tags,
        "group": "Mobile",
        "source": "slack_command",
        "subject": f"report {ticket}",
        "text": f"report {ticket}\nthe app crashes",
    }
    values.update(kw)
    return count_report(redis, ticket_id=ticket, tags=tags, **values)


def test_iso_weeks_are_utc_and_turn_on_monday_midnight() -> None:
    sunday_late = datetime(2026, 12, 13, 23, 59, 59, tzinfo=UTC)
    assert iso_week(sunday_late) == "2026-W50"
    assert iso_week(sunday_late + timedelta(seconds=1)) == "2026-W51"
    # 00:30 on Monday in Berlin is still Sunday in UTC: the UTC week counts.
    berlin = datetime.fromisoformat("2026-12-14T00:30:00+01:00")
    assert iso_week(berlin) == "2026-W50"
    # ISO years: 2026-12-31 (a Thursday) is in 2026-W53; 2027-01-04 starts 2027-W01.
    assert iso_week(datetime(2026, 12, 31, tzinfo=UTC)) == "2026-W53"
    assert iso_week(datetime(2027, 1, 4, tzinfo=UTC)) == "2027-W01"
    assert week_start("2026-W50") == datetime(2026, 12, 7, tzinfo=UTC)
    assert recent_weeks(3, NOW) == ["2026-W48", "2026-W49", "2026-W50"]


def test_a_report_counts_once_per_tag_group_and_source_even_when_its_job_is_retried(
    redis: Redis,
) -> None:
    assert _count(redis, 1, ["crash", "ios"]) is True
    assert _count(redis, 1, ["crash", "ios"]) is False  # the retried job
    _count(redis, 2, ["crash"], group="Billing", source="mobile")
    _count(redis, 3, [], text="where is the dark mode")

    assert weekly_counts(redis, weeks=2, now=NOW) == {"crash": [0, 2], "ios": [0, 1]}
    assert weekly_counts(redis, weeks=2, now=NOW, group="mobile") == {
        "crash": [0, 1],
        "ios": [0, 1],
    }
    assert weekly_counts(redis, weeks=1, now=NOW, source="mobile") == {"crash": [1]}
    assert weekly_counts(redis, weeks=1, now=NOW, tag="billing") == {"billing": [0]}
    assert weekly_totals(redis, weeks=1, now=NOW) == {"reports": [3], "untagged": [1]}
    assert untagged_texts(redis, "2026-W50") == ["where is the dark mode"]
    assert [e.ticket for e in examples(redis, "2026-W50", "crash")] == [2, 1]
    assert tag_counts.first_seen(redis) == {"crash": "2026-W50", "ios": "2026-W50"}
    # Kept at least a year.
    assert redis.ttl("hub:tags:week:2026-W50") > 365 * 24 * 3600


def test_the_week_is_the_reports_arrival_in_utc(redis: Redis) -> None:
    sunday_night = datetime(2026, 12, 6, 23, 30, tzinfo=UTC)
    _count(redis, 1, ["crash"], received_at=sunday_night)
    _count(redis, 2, ["crash"], received_at=sunday_night + timedelta(hours=1))
    assert weekly_counts(redis, weeks=2, now=NOW) == {"crash": [1, 1]}


def test_an_agents_tag_change_moves_the_reports_count_once(redis: Redis) -> None:
    _count(redis, 7, ["login", "needs_info"])
    assert move_tags(redis, 7, removed=["needs_info"], added=["crash"]) is True
    # The same webhook delivered again moves nothing.
    assert move_tags(redis, 7, removed=["needs_info"], added=["crash"]) is False
    assert weekly_counts(redis, weeks=1, now=NOW) == {"crash": [1], "login": [1]}
    # A ticket the hub did not count is left alone.
    assert move_tags(redis, 999, removed=[], added=["crash"]) is False
    assert weekly_counts(redis, weeks=1, now=NOW, tag="crash") == {"crash": [1]}


def test_weeks_must_be_positive() -> None:
    with pytest.raises(ValueError, match="weeks must be at least 1"):
        recent_weeks(0)
