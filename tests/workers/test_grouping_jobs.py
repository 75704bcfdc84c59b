"""Grouping through the real jobs: file_report against the Zendesk and Slack sandboxes (real
zenpy and slack_sdk clients), jobs run in this process by rq's SimpleWorker, and the
sandbox's signed webhooks to the hub served over real HTTP when a problem is solved."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from redis import Redis

from integrations.queue import NOTIFY, enqueue_once, queue
from integrations.queue.jobs import FILE_REPORT, JobSpec
from integrations.report import Report
from integrations.sandbox.slack import Message, SlackSandbox
from integrations.sandbox.zendesk import ZendeskSandbox
from integrations.zendesk.gateway import Ticket
from rules.related import IndexedDoc, RelatedIndex
from rules.related.joins import MIN_INDEXED
from tests.jobs import run_jobs
from workers.grouping import group_of, problem_of

SIGNATURE = "EXC_BAD_ACCESS KERN_INVALID_ADDRESS DraftStore.save(_:) + 148"


def crash_report(n: int, **changes: object) -> Report:
    """An iOS crash from the mobile app: rules/default.yml tells #mobile-eng about it."""
    base: dict[str, object] = {
        "source": "mobile",
        "idempotency_key": f"ios:crash-{n}",
        "reporter": {"email": f"user{n}@acme.test"},
        "subject": "App crashes when saving a draft",
        "description": "The app crashes every time I save a draft of a long post.",
        "tags": ["mobile", "crash"],
        "crash_signature": SIGNATURE,
        "fields": {"platform": "ios", "app_version": "5.2.1"},
    }
    return Report.model_validate({**base, **changes})


@pytest.fixture
def filed(
    redis: Redis, worker_env: dict[str, str], zendesk_sandbox: ZendeskSandbox, groups: object
) -> Iterator[list[int]]:
    """Three reports of one crash, filed one after the other; their ticket ids."""
    ids = []
    for n in (1, 2, 3):
        report = crash_report(n)
        if n == 2:
            # One reporter is in Slack: the reporter loop tells them when the problem is solved.
            report = crash_report(
                n,
                source="slack_command",
                reporter={
                    "name": "Ada",
                    "slack_team_id": "T0SANDBOX",
                    "slack_user_id": "U0REPORTER",
                },
                reply={"team_id": "T0SANDBOX", "user_id": "U0REPORTER", "channel_id": "C0GENERAL"},
            )
        enqueue_once(
            redis, replace(FILE_REPORT, kind="file"), report.to_job(), key=report.external_id
        )
        run_jobs(redis)
        [ticket] = zendesk_sandbox.find_tickets(report.external_id)
        ids.append(int(ticket["id"]))
    yield ids


def top_level(slack: SlackSandbox, channel: str) -> list[Message]:
    return [m for m in slack.channel_messages(channel) if not m.thread_ts]


def thread(slack: SlackSandbox, channel: str, ts: str) -> list[str]:
    return [m.text for m in slack.channel_messages(channel) if m.thread_ts == ts]


def shown(message: Message) -> str:
    return message.text + str(message.blocks)


def test_three_reports_of_one_crash_are_one_problem_with_three_incidents(
    redis: Redis, filed: list[int], zendesk_sandbox: ZendeskSandbox
) -> None:
    problems = [t for t in zendesk_sandbox.tickets.values() if t["type"] == "problem"]
    assert len(problems) == 1
    problem = problems[0]
    assert problem["subject"] == "App crashes when saving a draft"
    assert "feedback_hub_problem" in problem["tags"]
    body = zendesk_sandbox.comments[problem["id"]][0]["body"]
    assert all(f"#{tid} App crashes when saving a draft" in body for tid in filed)
    for tid in filed:
        incident = zendesk_sandbox.tickets[tid]
        assert (incident["type"], incident["problem_id"]) == ("incident", problem["id"])
    group = group_of(redis, filed[0])
    assert group is not None and {group_of(redis, t) for t in filed} == {group}
    assert problem_of(redis, group) == problem["id"]


def test_engineering_sees_one_message_with_three_reporters_and_a_reply_per_joiner(
    filed: list[int], zendesk_sandbox: ZendeskSandbox, slack_sandbox: SlackSandbox
) -> None:
    [problem] = [t["id"] for t in zendesk_sandbox.tickets.values() if t["type"] == "problem"]
    [card] = top_level(slack_sandbox, "#mobile-eng")
    assert "3 reporters" in card.text
    assert "'*Reporters*\\n3'" in str(card.blocks)
    # The message is the problem's now: edited in place, never posted again.
    assert f"#{problem} App crashes when saving a draft" in card.text
    assert f"{zendesk_sandbox.url}/agent/tickets/{problem}" in shown(card)
    replies = thread(slack_sandbox, "#mobile-eng", card.ts)
    joined = [r for r in replies if r.startswith(":heavy_plus_sign: Another report")]
    assert len(joined) == 2
    assert f"|#{filed[1]}>" in joined[0] and f"|#{filed[2]}>" in joined[1]
    assert [r for r in replies if f"Problem ticket <{zendesk_sandbox.url}" in r] == [
        f":link: Problem ticket <{zendesk_sandbox.url}/agent/tickets/{problem}|#{problem}> "
        "opened; 3 reports linked to it as incidents."
    ]


def test_a_dissimilar_report_starts_its_own_group(
    redis: Redis,
    filed: list[int],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    report = Report.model_validate(
        {
            "source": "mobile",
            "idempotency_key": "android:billing-1",
            "reporter": {"email": "k@acme.test"},
            "subject": "Invoice shows the wrong currency",
            "description": "My invoice for March is in dollars, my account is in euros.",
            "tags": ["billing"],
            "fields": {"platform": "android", "app_version": "5.2.1"},
        }
    )
    posts_before = len(slack_sandbox.calls("chat.postMessage"))
    enqueue_once(redis, replace(FILE_REPORT, kind="file"), report.to_job(), key="other")
    run_jobs(redis)
    [ticket] = zendesk_sandbox.find_tickets(report.external_id)
    assert group_of(redis, ticket["id"]) not in (None, group_of(redis, filed[0]))
    assert ticket["type"] != "incident" and ticket["problem_id"] is None
    assert len([t for t in zendesk_sandbox.tickets.values() if t["type"] == "problem"]) == 1
    assert len(slack_sandbox.calls("chat.postMessage")) == posts_before


def replay(redis: Redis, func: str, *args: object) -> None:
    """Queue a job again under a new id, as an operator replaying it would."""
    kind = f"replay-{func.replace('_', '-')}-{redis.incr('test:replays')}"
    enqueue_once(redis, JobSpec(f"workers.grouping.{func}", NOTIFY, kind), *args, key="replay")


def test_running_the_grouping_jobs_again_changes_nothing(
    redis: Redis,
    filed: list[int],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    tickets = {tid: dict(t) for tid, t in zendesk_sandbox.tickets.items()}
    slack_calls = [c.method for c in slack_sandbox.calls()]
    third = filed[2]
    group = group_of(redis, third)
    assert group is not None
    problem = problem_of(redis, group)
    members = RelatedIndex(redis).group_members(group)
    report = crash_report(3).to_job()
    ticket = Ticket(id=third, url=f"{zendesk_sandbox.url}/agent/tickets/{third}", status="new")
    channels = {"#mobile-eng": "a rule"}

    replay(redis, "group_report", report, ticket.to_job(), channels, "high", True)
    replay(redis, "group_engineering", group, report, ticket.to_job(), channels, "high", True)
    replay(redis, "open_problem", group)
    replay(redis, "link_incident", third, problem)
    replay(redis, "problem_engineering", group, problem)
    run_jobs(redis)

    assert {tid: dict(t) for tid, t in zendesk_sandbox.tickets.items()} == tickets
    # Edits in place are fine (the count is shown again); nothing is posted twice.
    again = [c.method for c in slack_sandbox.calls()][len(slack_calls) :]
    assert set(again) <= {"chat.update"}
    assert RelatedIndex(redis).group_members(group) == members
    [card] = top_level(slack_sandbox, "#mobile-eng")
    assert "3 reporters" in card.text


def test_a_retried_problem_does_not_read_the_tickets_it_already_linked(
    redis: Redis, filed: list[int], zendesk_sandbox: ZendeskSandbox
) -> None:
    # Under Zendesk 500s the problem job fails mid-way and is retried: each try must go
    # on where the last one stopped, not read every member again (and fail again).
    group = group_of(redis, filed[0])
    assert group is not None
    zendesk_sandbox.reset_stats()

    replay(redis, "open_problem", group)
    run_jobs(redis)

    assert zendesk_sandbox.stats()["requests"] == 0
    problem = problem_of(redis, group)
    assert all(zendesk_sandbox.tickets[t]["problem_id"] == problem for t in filed)


def test_solving_the_problem_tells_the_thread_and_the_reporters(
    redis: Redis,
    filed: list[int],
    hub_url: str,
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    [problem] = [t["id"] for t in zendesk_sandbox.tickets.values() if t["type"] == "problem"]
    index = RelatedIndex(redis)
    assert len(index) == 3

    deliveries = zendesk_sandbox.agent_solve(problem, "Fixed in 5.2.2, please update.")
    assert deliveries and all(d.status == 200 for d in deliveries)
    run_jobs(redis)

    [card] = top_level(slack_sandbox, "#mobile-eng")
    replies = thread(slack_sandbox, "#mobile-eng", card.ts)
    assert (
        replies.count(
            f":white_check_mark: Problem #{problem} solved: its incidents are solved "
            "and their reporters told."
        )
        == 1
    )
    assert card.text.startswith(f"[solved] #{problem} ")
    assert all(zendesk_sandbox.tickets[t]["status"] == "solved" for t in filed)
    # Solved reports leave the related-issue index.
    assert len(index) == 0
    # The Slack reporter hears the problem's reply and the solve on their own ticket.
    told = [m.text for m in slack_sandbox.channel_messages("D0REPORTER")]
    assert any("Fixed in 5.2.2, please update." in t for t in told)
    assert any(f"|#{filed[1]}> was marked solved" in t for t in told)


def test_slack_down_holds_back_only_the_slack_part(
    redis: Redis,
    worker_env: dict[str, str],
    groups: object,
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    slack_sandbox.set_faults(down=True)
    for n in (1, 2, 3):
        report = crash_report(n)
        enqueue_once(
            redis, replace(FILE_REPORT, kind="file"), report.to_job(), key=report.external_id
        )
        run_jobs(redis)
    # Zendesk's part is done: one problem, three incidents.
    [problem] = [t["id"] for t in zendesk_sandbox.tickets.values() if t["type"] == "problem"]
    assert [t["problem_id"] for t in zendesk_sandbox.tickets.values()].count(problem) == 3
    notify = queue(redis, NOTIFY)
    waiting = notify.scheduled_job_registry.get_job_ids()
    assert waiting and all(j.startswith("group-") for j in waiting)
    zendesk_calls = zendesk_sandbox.stats()

    slack_sandbox.clear_faults()
    for job_id in waiting:
        # What the worker's scheduler does when the retry is due.
        notify.scheduled_job_registry.requeue(job_id)
    run_jobs(redis)

    assert zendesk_sandbox.stats() == zendesk_calls
    [card] = top_level(slack_sandbox, "#mobile-eng")
    assert card.text.startswith(f"[new] #{problem} ") and "3 reporters" in card.text
    replies = thread(slack_sandbox, "#mobile-eng", card.ts)
    assert len([r for r in replies if "Another report" in r]) == 2
    assert len([r for r in replies if "Problem ticket" in r]) == 1


def _file_twice(redis: Redis, zendesk: ZendeskSandbox) -> list[int]:
    """Two reports in nearly the same words (no crash signature), in an index old enough
    for words to join (joins.MIN_INDEXED): their ticket ids."""
    now = datetime.now(UTC)
    RelatedIndex(redis).add_many(
        [
            IndexedDoc(str(900_000 + i), now, f"Widget{i} sync issue", f"module{i} panel{i}")
            for i in range(MIN_INDEXED + 20)
        ]
    )
    ids = []
    for n, subject in enumerate(
        ["Export to CSV produces an empty file", "CSV export gives an empty file"]
    ):
        report = Report.model_validate(
            {
                "source": "mobile",
                "idempotency_key": f"android:export-{n}",
                "reporter": {"email": f"e{n}@acme.test"},
                "subject": subject,
                "description": "The exported CSV spreadsheet is empty, no rows at all.",
                "fields": {"platform": "android", "app_version": "5.2.1"},
            }
        )
        enqueue_once(redis, replace(FILE_REPORT, kind="file"), report.to_job(), key=f"e{n}")
        run_jobs(redis)
        [ticket] = zendesk.find_tickets(report.external_id)
        ids.append(int(ticket["id"]))
    return ids


def test_reports_in_the_same_words_join_at_the_measured_threshold(
    redis: Redis, worker_env: dict[str, str], zendesk_sandbox: ZendeskSandbox, groups: object
) -> None:
    first, second = _file_twice(redis, zendesk_sandbox)
    assert group_of(redis, second) == group_of(redis, first)


def test_related_join_score_1_leaves_words_to_suggestions(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    groups: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RELATED_JOIN_SCORE", "1")
    first, second = _file_twice(redis, zendesk_sandbox)
    assert group_of(redis, second) != group_of(redis, first)
    # What the console shows for the second: the first as its suggestion.
    suggestions = json.loads(redis.hget(f"hub:grouping:ticket:{second}", "suggestions") or "[]")
    assert [s["ticket_id"] for s in suggestions][:1] == [first]
