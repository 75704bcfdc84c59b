"""Filed reports are counted by the intake job; agents' tag changes move the counts."""

from __future__ import annotations

from datetime import UTC, datetime

from redis import Redis

from integrations.queue import enqueue_once
from integrations.queue.jobs import FILE_REPORT
from integrations.queue.tag_counts import counted, iso_week, weekly_counts, weekly_totals
from integrations.report import Report
from integrations.sandbox import SlackSandbox, ZendeskSandbox
from tests.jobs import run_jobs


def report(key: str, subject: str, received: datetime) -> Report:
    return Report(
        source="mobile",
        idempotency_key=key,
        reporter={"name": "Ada", "email": "ada@example.com"},
        subject=subject,
        description=subject,
        received_at=received,
    )


def test_filed_reports_count_once_and_an_agents_tag_change_moves_them(
    hub_url: str,
    redis: Redis,
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
    groups: dict[str, int],
) -> None:
    now = datetime.now(UTC)
    crash = report("r1", "The app crashes on launch", now)
    vague = report("r2", "The footer colour looks odd on my tablet", now)
    for r in (crash, vague):
        enqueue_once(redis, FILE_REPORT, r.to_job(), key=r.external_id)
    run_jobs(redis)
    # A replay of the same report (a retry, an operator's replay) counts nothing more.
    enqueue_once(redis, FILE_REPORT, crash.to_job(), key=crash.external_id + "-replay")
    run_jobs(redis)

    [crash_ticket] = [t for t in zendesk_sandbox.tickets.values() if "crash" in t["tags"]]
    counts = weekly_counts(redis, weeks=1, now=now)
    assert counts["crash"] == [1]
    assert weekly_totals(redis, weeks=1, now=now) == {"reports": [2], "untagged": [1]}
    record = counted(redis, int(crash_ticket["id"]))
    assert record is not None and record["w"] == iso_week(now) and record["s"] == "mobile"

    # The agent decides it is a login problem, not a crash: the counts follow.
    zendesk_sandbox.agent_tags(int(crash_ticket["id"]), add=["login"], remove=["crash"])
    run_jobs(redis)
    counts = weekly_counts(redis, weeks=1, now=now)
    assert "crash" not in counts
    assert counts["login"] == [1]
