"""The console's record of a report begun at acceptance (ReportLog.mark_accepted), in the
intake's own write: listed as queued, found by the filters, replaced by the intake job's
record under the same key, trimmed like any other."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from redis import Redis

from integrations.queue.group_commit import write_now
from integrations.queue.report_log import ReportFilter, ReportLog
from integrations.queue.status import StatusStore
from integrations.queue.wire import Commands
from integrations.report import Report


def a_report(n: int = 1, **kw: object) -> Report:
    return Report.model_validate(
        {
            "source": "slack_command",
            "idempotency_key": f"accepted-{n}",
            "subject": f"Export button does nothing ({n})",
            "description": "on the reports page, nothing downloads",
            "reporter": {"name": "Ada Reporter", "slack_team_id": "T1", "slack_user_id": "U1"},
            "tags": ["slack", "feedback", "export"],
            "fields": {"platform": "web"},
            "reply": {"channel_id": "C1", "response_url": "https://hooks.slack.com/commands/1/2"},
            "custom": {"internal_note": "not for the console"},
            **kw,
        }
    )


def accept(redis: Redis, log: ReportLog, *reports: Report) -> list[object]:
    """What Hub.stage_report does for the console: its write, staged, sent in one trip
    (loading the script into a Redis that lacks it, as the web's writer does)."""
    commands = Commands()
    for report in reports:
        StatusStore(redis).mark_queued(report.key_digest, commands)
        log.mark_accepted(report, commands)
    return write_now(redis, commands)


def test_an_accepted_report_is_listed_queued_with_what_the_intake_knows(redis: Redis) -> None:
    log = ReportLog(redis)
    report = a_report()
    accept(redis, log, report)

    [row] = log.page(ReportFilter()).rows
    assert (row.id, row.state, row.source) == (report.key_digest, "queued", "slack_command")
    assert (row.subject, row.reporter_name, row.reporter_slack) == (
        "Export button does nothing (1)",
        "Ada Reporter",
        "U1",
    )
    assert row.received_at == report.received_at.timestamp()
    assert (row.decision, row.group, row.ticket_id) == (None, None, None)
    assert row.fields == {"platform": "web"}
    assert [event for _, event, _ in row.timeline] == ["accepted"]


def test_the_record_holds_nothing_secret(redis: Redis) -> None:
    accept(redis, ReportLog(redis), report := a_report())
    raw = redis.get(f"hub:console:report:{report.key_digest}")
    assert isinstance(raw, bytes)
    stored = raw.decode()  # plain JSON until the intake job rewrites it compressed
    assert "hooks.slack.com" not in stored and "response_url" not in stored
    assert "not for the console" not in stored
    assert set(json.loads(stored)) >= {"id", "source", "subject", "state", "timeline"}


def test_every_filter_finds_a_queued_report(redis: Redis) -> None:
    log = ReportLog(redis)
    accept(redis, log, a_report(1), a_report(2, source="mobile", tags=["android"]))

    def subjects(**wanted: str) -> list[str]:
        return [r.subject for r in log.page(ReportFilter(**wanted)).rows]

    assert subjects(source="slack_command") == ["Export button does nothing (1)"]
    assert subjects(status="queued") == [
        "Export button does nothing (2)",
        "Export button does nothing (1)",
    ]
    assert subjects(status="filed") == []
    assert subjects(tag="EXPORT") == ["Export button does nothing (1)"]
    assert subjects(tag="android", text="(2)") == ["Export button does nothing (2)"]
    assert subjects(text="nothing downloads", source="mobile") == ["Export button does nothing (2)"]
    assert subjects(text="ada reporter", source="slack_command") == [
        "Export button does nothing (1)"
    ]
    StatusStore(redis).set(
        a_report(2, source="mobile").key_digest, "delayed", reason="Zendesk is limiting"
    )
    assert subjects(status="delayed") == ["Export button does nothing (2)"]


def test_the_intake_job_makes_it_the_full_record_once_keeping_the_timeline(
    redis: Redis,
) -> None:
    log = ReportLog(redis)
    report = a_report()
    accept(redis, log, report)
    assert [(r.id, r.state) for r in log.page(ReportFilter()).rows] == [
        (report.key_digest, "queued")
    ]
    log.record(report, decision={"group": "Engineering", "tags": ["export"]}, state="queued",
               event="filing, attempt 1")  # fmt: skip
    log.record(report, decision={"group": "Engineering", "tags": ["export"]}, state="filed",
               event="ticket #7 created", ticket_id=7)  # fmt: skip

    assert log.count() == 1
    [row] = log.page(ReportFilter()).rows
    assert (row.group, row.ticket_id) == ("Engineering", 7)
    assert [event for _, event, _ in row.timeline] == [
        "accepted",
        "filing, attempt 1",
        "ticket #7 created",
    ]
    assert redis.zscore("hub:console:reports", report.key_digest) == row.received_at


def test_a_second_delivery_or_a_late_write_keeps_the_record_there(redis: Redis) -> None:
    log = ReportLog(redis)
    report = a_report()
    accept(redis, log, report)
    log.record(report, decision={"group": "Engineering"}, state="filed", event="ticket #7 created",
               ticket_id=7)  # fmt: skip
    # Slack's retry of the same command: the same report, received again a minute later.
    again = report.model_copy(
        update={"received_at": datetime.fromtimestamp(report.received_at.timestamp() + 60, UTC)}
    )
    assert accept(redis, log, again)[-1] == 0

    [row] = log.page(ReportFilter()).rows
    assert (row.ticket_id, row.group) == (7, "Engineering")
    assert row.received_at == report.received_at.timestamp()
    assert redis.zscore("hub:console:reports", report.key_digest) == row.received_at


def test_queued_records_are_trimmed_and_expire_like_the_others(redis: Redis) -> None:
    log = ReportLog(redis, max_reports=2, days=1)
    for n in range(4):
        at = datetime.fromtimestamp(1_000_000.0 + n, UTC)
        accept(redis, log, a_report(n, received_at=at))
    key = f"hub:console:report:{a_report(3).key_digest}"
    assert 0 < redis.ttl(key) <= 24 * 3600

    assert log.trim(now=1_000_010.0) == 2
    assert [r.subject for r in log.page(ReportFilter(source="slack_command")).rows] == [
        "Export button does nothing (3)",
        "Export button does nothing (2)",
    ]
    # Past the age: gone from the list and from every index.
    assert log.trim(now=1_000_010.0 + 2 * 24 * 3600) == 2
    assert log.count() == 0
    assert log.page(ReportFilter(tag="export")).rows == []
    assert redis.smembers("hub:console:indexes") == set()


def test_a_redis_that_lost_its_scripts_is_given_them_again(redis: Redis) -> None:
    accept(redis, ReportLog(redis), a_report(1))
    redis.script_flush()
    commands = Commands()
    ReportLog(redis).mark_accepted(a_report(2), commands)
    assert write_now(redis, commands) == [1]
    assert ReportLog(redis).count() == 2
