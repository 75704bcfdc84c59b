"""First-reply targets: the `response_time:` section, which target a report gets, when it is due."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from integrations.report import Report, Reporter
from rules.cli import rules_cli
from rules.engine import evaluate
from rules.loader import parse_rules
from rules.model import RuleSet
from rules.targets import (
    counted_seconds,
    deadlines,
    due_at,
    format_duration,
    parse_duration,
    target_for,
)
from rules.yaml_reader import RulesError

RULES = """\
business_hours:
  timezone: Europe/Berlin
  weekly: {weekdays: "09:00-18:00"}
  holidays: [2026-12-25]
intake:
  - name: Data loss is urgent
    when: {text: {contains: ["data loss"]}}
    then: [{set_priority: urgent}]
response_time:
  - name: Urgent within 15 minutes
    when: {priority: {at_least: urgent}}
    first_reply: 15m
    nudge: {at: 75%, channel: "#support-triage"}
    breach: {channel: "#support-escalations", add_tags: [response_overdue]}
  - name: Everything else within an hour
    first_reply: 60m
    hours: business
    nudge: {at: 75%, channel: "#support-triage"}
    breach: {channel: "#support-escalations", add_tags: [Response Overdue]}
"""


def a_report(text: str, at: datetime) -> Report:
    return Report(
        source="mobile",
        idempotency_key=f"test:{text}:{at.isoformat()}",
        reporter=Reporter(name="Ada", email="ada@example.com"),
        subject=text,
        description=text,
        received_at=at,
    )


@pytest.fixture
def ruleset() -> RuleSet:
    return parse_rules(RULES, "rules.yml")


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    """A December 2026 moment given in Berlin time, as UTC."""
    return datetime(2026, 12, day, hour, minute, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)


def test_the_first_matching_target_wins_and_sees_what_the_rules_decided(ruleset: RuleSet) -> None:
    urgent = a_report("data loss after the update", berlin(7, 10))
    assert target_for(urgent, evaluate(urgent, ruleset), ruleset).name == "Urgent within 15 minutes"  # type: ignore[union-attr]
    normal = a_report("the export button does nothing", berlin(7, 10))
    target = target_for(normal, evaluate(normal, ruleset), ruleset)
    assert target is not None
    assert (target.name, target.seconds, target.business) == (
        "Everything else within an hour",
        3600,
        True,
    )
    assert target.breach_tags == ("response_overdue",)


def test_a_report_at_1755_is_due_the_next_working_morning(ruleset: RuleSet) -> None:
    # Monday 7 December 2026, 17:55 in Berlin: 5 minutes today, 55 tomorrow from 09:00.
    report = a_report("the export button does nothing", berlin(7, 17, 55))
    target = target_for(report, evaluate(report, ruleset), ruleset)
    assert target is not None
    due = deadlines(target, report.received_at, ruleset)
    assert due.breach == berlin(8, 9, 55)
    assert due.nudge == berlin(8, 9, 40)  # 75% of an hour: 45 minutes of open time


def test_business_hours_skip_the_weekend_and_holidays(ruleset: RuleSet) -> None:
    hours = ruleset.business_hours
    # Friday 4 December 17:30: 30 minutes on Friday, the other 30 on Monday morning.
    assert due_at(berlin(4, 17, 30), 3600, hours) == berlin(7, 9, 30)
    # Saturday: nothing counts until Monday 09:00.
    assert due_at(berlin(5, 11), 900, hours) == berlin(7, 9, 15)
    # Thursday 24 December 17:50, Christmas Day a holiday: 10 minutes, then Monday 28th.
    assert due_at(berlin(24, 17, 50), 3600, hours) == berlin(28, 9, 50)
    # Inside hours it is plain addition.
    assert due_at(berlin(8, 10), 3600, hours) == berlin(8, 11)


def test_an_always_target_counts_every_minute(ruleset: RuleSet) -> None:
    report = a_report("data loss on saturday night", berlin(5, 23, 50))
    target = target_for(report, evaluate(report, ruleset), ruleset)
    assert target is not None and not target.business
    due = deadlines(target, report.received_at, ruleset)
    assert due.breach == berlin(6, 0, 5)
    assert due.nudge is not None and due.nudge.isoformat() == "2026-12-05T23:01:15+00:00"


def test_no_target_section_means_no_clock() -> None:
    ruleset = parse_rules("intake:\n  - name: a\n    then: [{add_tags: [x]}]\n")
    report = a_report("anything", berlin(7, 10))
    assert target_for(report, evaluate(report, ruleset), ruleset) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900), ("1h", 3600), ("1h30m", 5400), ("90s", 90), ("2 h", 7200), ("0m", None)],
)
def test_durations(text: str, seconds: int | None) -> None:
    assert parse_duration(text) == seconds


def test_durations_print_back() -> None:
    assert [format_duration(s) for s in (60, 5400, 45, 0)] == ["1m", "1h30m", "45s", "0s"]


def test_problems_name_file_line_and_column() -> None:
    broken = """\
intake:
  - name: Data loss is urgent
    then: [{set_priority: urgent}]
response_time:
  - name: Urgent
    when: {priorty: urgent}
    first_reply: soon
    nudge: {at: 120%, chanel: "#x"}
    hours: busines
  - name: Data loss is urgent
    first_reply: 1h
    hours: business
    breach: {channel: "#y", tags: [a]}
"""
    with pytest.raises(RulesError) as caught:
        parse_rules(broken, "broken.yml")
    lines = [str(p) for p in caught.value.problems]
    assert any(
        line.startswith("broken.yml:6:12: unknown condition 'priorty'")
        and "did you mean 'priority'" in line
        for line in lines
    ), lines
    assert "broken.yml:7:18: first_reply: 'soon' is not a duration like 15m, 1h or 1h30m" in lines
    assert any(line.startswith("broken.yml:8:17: nudge at: '120%'") for line in lines), lines
    assert any(line.startswith("broken.yml:8:23: unknown nudge setting 'chanel'") for line in lines)
    assert any(line.startswith("broken.yml:9:12: unknown hours 'busines'") for line in lines)
    assert any(
        line.startswith("broken.yml:10:11: rule name 'Data loss is urgent' is used twice")
        for line in lines
    )
    assert "broken.yml:12:12: hours: business needs a business_hours section in the file" in lines
    assert any(line.startswith("broken.yml:13:29: unknown breach setting 'tags'") for line in lines)
    # The misspelt `chanel` is the problem; "nudge needs channel" would only repeat it.
    assert not any("nudge needs" in line for line in lines)


def test_rules_check_and_explain_show_the_target(tmp_path: Path, ruleset: RuleSet) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    runner = CliRunner()
    checked = runner.invoke(rules_cli, ["check", str(rules)])
    assert checked.exit_code == 0, checked.output
    assert checked.output.strip().endswith(
        "1 intake rules, 0 event rules, 0 taxonomy tags, 2 first-reply targets"
    )
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"text": "the export button does nothing"}))
    explained = runner.invoke(
        rules_cli,
        ["explain", str(report), "--rules", str(rules), "--at", "2026-12-07T17:55:00+01:00"],
    )
    assert explained.exit_code == 0, explained.output
    assert (
        "  response  first reply within 1h (business hours), due 2026-12-08T08:55+00:00    "
        f'<- response_time 2 "Everything else within an hour" ({rules}:15:5)'
    ) in explained.output
    assert "nudge #support-triage at 2026-12-08T08:40+00:00" in explained.output
    assert "breach #support-escalations +response_overdue" in explained.output


def test_counted_time_is_the_open_hours_between_two_moments(ruleset: RuleSet) -> None:
    hours = ruleset.business_hours
    # Monday 17:55 to Tuesday 09:10: 5 minutes on Monday, 10 on Tuesday.
    assert counted_seconds(berlin(7, 17, 55), berlin(8, 9, 10), hours) == 15 * 60
    # Friday 17:30 to Monday 09:30, a weekend between: one hour.
    assert counted_seconds(berlin(4, 17, 30), berlin(7, 9, 30), hours) == 3600
    # The inverse of due_at, across a holiday.
    start = berlin(24, 17, 50)
    assert counted_seconds(start, due_at(start, 3600, hours), hours) == 3600
    # All time without business hours; nothing for an end before the start.
    assert counted_seconds(berlin(5, 23), berlin(6, 1), None) == 7200
    assert counted_seconds(berlin(8, 10), berlin(8, 9), hours) == 0
