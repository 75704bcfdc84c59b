"""`feedback-hub tags report` and `tags suggest` on counts where the answer is known."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from redis import Redis

from app import cli
from integrations.queue.tag_counts import count_report, recent_weeks


@pytest.fixture
def counted(redis: Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Eight weeks of `login` (2 a week) and, this week, 12 `export` reports in Billing."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    now = datetime.now(UTC)
    ticket = 0

    def file(when: datetime, tags: list[str], group: str, text: str = "x") -> None:
        nonlocal ticket
        ticket += 1
        count_report(
            redis,
            ticket_id=ticket,
            received_at=when,
            tags=tags,
            taxonomy_tags=tags,
            group=group,
            source="mobile",
            subject=text,
            text=text,
        )

    for week in range(8, 0, -1):
        for _ in range(2):
            file(now - timedelta(weeks=week), ["login"], "Accounts")
    for _ in range(12):
        file(now, ["export"], "Billing")
    for text in ("Dark mode toggle is gone", "Bring back the dark mode toggle"):
        file(now, [], "Support", text)
    return recent_weeks(12, now)


def test_report_text_csv_and_filters(counted: list[str]) -> None:
    runner = CliRunner()
    text = runner.invoke(cli, ["tags", "report"])
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[1].startswith("export") and lines[1].endswith("▁▁▁▁▁▁▁▁▁▁▁█")
    assert "new tags: export" in text.output
    assert "movers: none this week" in text.output  # export is new, login is steady

    csv = runner.invoke(cli, ["tags", "report", "--csv", "--weeks", "3"])
    assert csv.output.splitlines() == [
        "tag," + ",".join(counted[-3:]),
        "export,0,0,12",
        "login,2,2,0",
    ]
    only = runner.invoke(cli, ["tags", "report", "--json", "--group", "accounts"])
    data = json.loads(only.output)
    assert list(data["tags"]) == ["login"] and data["reports"][-1] == 0
    tag = json.loads(runner.invoke(cli, ["tags", "report", "--json", "--tag", "export"]).output)
    assert tag["tags"] == {"export": [0] * 11 + [12]}
    both = runner.invoke(cli, ["tags", "report", "--csv", "--json"])
    assert both.exit_code == 2 and "give --csv or --json, not both" in both.output


def test_suggest_lists_phrases_of_untagged_reports(counted: list[str]) -> None:
    result = CliRunner().invoke(cli, ["tags", "suggest", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["untagged_reports"] == 2
    assert data["suggestions"][0]["phrase"] == "dark mode toggle"
    bad = CliRunner().invoke(cli, ["tags", "suggest", "--week", "last week"])
    assert bad.exit_code == 2 and "is not an ISO week like 2026-W49" in bad.output
