"""First-reply timers through the sandboxes: the real zenpy and slack_sdk clients, real webhooks.

Reports are filed by the intake job with an accepted time in the past, so their nudge or
breach is due now; a tick hands them to their jobs, which run in this process.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient
from redis import Redis

from integrations.queue import enqueue_once
from integrations.queue.jobs import FILE_REPORT
from integrations.queue.timers import TimerStore
from integrations.report import Report
from integrations.sandbox import SlackSandbox, ZendeskSandbox
from tests.jobs import run_jobs
from workers import timers
from workers.context import context
from workers.timers import handle_due, run_tick

RULES = """\
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
    nudge: {at: 75%, channel: "#support-triage"}
    breach: {channel: "#support-escalations", add_tags: [response_overdue]}
"""


@pytest.fixture
def worker_env(
    worker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """The worker's environment with this file's targets."""
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    monkeypatch.setenv("RULES_PATH", str(rules))
    yield {**worker_env, "RULES_PATH": str(rules)}


def file_report(redis: Redis, subject: str, minutes_ago: float) -> int:
    """File a mobile report accepted `minutes_ago`; returns its ticket id."""
    report = Report.model_validate(
        {
            "source": "mobile",
            "idempotency_key": f"mobile:test:{subject}",
            "reporter": {"name": "Ada Reporter", "email": "ada@example.com"},
            "subject": subject,
            "description": f"{subject}, since this morning.",
            "received_at": (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat(),
        }
    )
    enqueue_once(redis, FILE_REPORT, report.to_job(), key=report.external_id)
    run_jobs(redis)
    timer = next(t for t in TimerStore(redis).open_timers() if t.subject == subject)
    return timer.ticket_id


def tick(redis: Redis) -> None:
    run_tick(redis)
    run_jobs(redis)


def texts(slack: SlackSandbox, channel: str) -> list[str]:
    return [" ".join(b["text"]["text"] for b in m.blocks) for m in slack.channel_messages(channel)]


def test_nudges_share_one_message_edited_as_reports_come_and_are_answered(
    hub_url: str,
    redis: Redis,
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
    client: FlaskClient,
) -> None:
    first = file_report(redis, "Export <!channel> does nothing", minutes_ago=47)
    tick(redis)
    [message] = texts(slack_sandbox, "#support-triage")
    assert f"#{first}>" in message
    assert "Export &lt;!channel&gt; does nothing" in message  # escaped: pings nobody
    assert "13 min left" in message or "14 min left" in message

    second = file_report(redis, "Invoices are missing", minutes_ago=50)
    tick(redis)
    [message] = texts(slack_sandbox, "#support-triage")  # the same message, edited
    assert "2 reports close to the first-reply target" in message
    assert message.index(f"#{second}>") < message.index(f"#{first}>")  # soonest breach first
    assert len(slack_sandbox.calls("chat.postMessage")) == 1

    # An internal note is not an answer; a public reply is.
    zendesk_sandbox.agent_note(second, "Checking the billing logs first.")
    zendesk_sandbox.agent_reply(first, "Which app version are you on?")
    run_jobs(redis)
    [message] = texts(slack_sandbox, "#support-triage")
    assert f"#{first}>" not in message and f"#{second}>" in message
    assert "1 report close to the first-reply target" in message
    answered = TimerStore(redis).get(first)
    assert answered is not None and answered.state == "answered"
    assert answered.answered_by == "Sandbox Agent"
    still = TimerStore(redis).get(second)
    assert still is not None and still.open

    metrics = client.get("/metrics").get_data(as_text=True)
    assert (
        'feedback_hub_first_reply_seconds_count{group="",target="Everything else within an hour"}'
        " 1.0"
    ) not in metrics  # the group label is never empty
    assert (
        'feedback_hub_first_reply_seconds_count{group="-",target="Everything else within an hour"}'
        " 1.0"
    ) in metrics
    assert "feedback_hub_open_timers 1.0" in metrics
    # Nothing of this reached the reporter.
    assert not [c for c in slack_sandbox.calls() if c.method == "conversations.open"]


def test_a_breach_posts_tags_the_ticket_and_a_late_reply_edits_it(
    hub_url: str, redis: Redis, zendesk_sandbox: ZendeskSandbox, slack_sandbox: SlackSandbox
) -> None:
    ticket = file_report(redis, "Data loss after the update", minutes_ago=16)
    tick(redis)
    [breach] = texts(slack_sandbox, "#support-escalations")
    assert "No first reply within the target: Urgent within 15 minutes" in breach
    assert f"#{ticket}>" in breach
    assert "response_overdue" in zendesk_sandbox.tickets[ticket]["tags"]
    # It was nudged on the way, and the nudge list no longer holds it.
    [nudge] = texts(slack_sandbox, "#support-triage")
    assert f"#{ticket}>" not in nudge

    tick(redis)  # nothing more is due: nothing more is said
    assert len(slack_sandbox.channel_messages("#support-escalations")) == 1

    zendesk_sandbox.agent_reply(ticket, "Restoring your data from last night's backup now.")
    run_jobs(redis)
    [breach] = texts(slack_sandbox, "#support-escalations")
    assert "Answered after 16 min by Sandbox Agent" in breach
    assert len(slack_sandbox.calls("chat.postMessage")) == 2  # one nudge, one breach


def test_a_reply_whose_webhook_was_lost_stops_the_clock_before_any_nudge(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    # No webhook target: Zendesk's notice of the reply never reaches the hub.
    ticket = file_report(redis, "Search returns nothing", minutes_ago=50)
    zendesk_sandbox.agent_reply(ticket, "Fixed on our side, please try again.")
    tick(redis)
    assert slack_sandbox.channel_messages("#support-triage") == []
    timer = TimerStore(redis).get(ticket)
    assert timer is not None and timer.state == "answered"
    assert timer.answered_by == "Sandbox Agent"


def test_a_reply_between_the_check_and_the_nudge_wins(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ticket = file_report(redis, "Sync is stuck", minutes_ago=50)
    store = TimerStore(redis)
    now = time.time()

    def look_then_answer(ctx: object, timer: timers.Timer) -> None:
        # Zendesk had no reply when asked; the webhook's job stops the clock right after.
        store.stop(timer, state="answered", at=now, by="Sam Support")

    monkeypatch.setattr(timers, "find_reply", look_then_answer)
    assert handle_due(context(), ticket, "nudge", clock=lambda: now) == "stopped"
    assert handle_due(context(), ticket, "breach", clock=lambda: now) == "stopped"
    assert slack_sandbox.calls("chat.postMessage") == []
    assert "response_overdue" not in zendesk_sandbox.tickets[ticket]["tags"]


def test_solving_stops_the_clock_and_the_hubs_own_comment_does_not(
    hub_url: str, redis: Redis, zendesk_sandbox: ZendeskSandbox, slack_sandbox: SlackSandbox
) -> None:
    from workers.ticket_events import mark_own_comment

    ticket = file_report(redis, "Login loops", minutes_ago=5)
    mark_own_comment(redis, ticket, "Relayed by the hub")
    zendesk_sandbox.agent_reply(ticket, "Relayed by the hub")
    run_jobs(redis)
    timer = TimerStore(redis).get(ticket)
    assert timer is not None and timer.open
    zendesk_sandbox.agent_solve(ticket)
    run_jobs(redis)
    timer = TimerStore(redis).get(ticket)
    assert timer is not None and timer.state == "solved"
    assert TimerStore(redis).due(time.time() + 7200) == []


def test_watch_lists_the_open_timers(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    from click.testing import CliRunner

    from app import cli

    ticket = file_report(redis, "Export button does nothing", minutes_ago=10)
    answered = file_report(redis, "Invoices are missing", minutes_ago=5)
    zendesk_sandbox.agent_solve(answered, "Sent again, please check your inbox.")
    handle_due(context(), answered, "nudge")  # finds the reply in Zendesk: not listed any more
    result = CliRunner().invoke(cli, ["watch"])
    assert result.exit_code == 0, result.output
    [line, total] = result.output.splitlines()
    assert line.startswith(f"#{ticket} ")
    assert "due in 50 min" in line and "running" in line
    assert line.endswith("Everything else within an hour: Export button does nothing")
    assert total == "1 open timer"


def test_a_ticket_deleted_in_zendesk_stops_its_clock_without_an_alarm(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    ticket = file_report(redis, "Spam: buy cheap watches", minutes_ago=61)
    with zendesk_sandbox.lock:
        del zendesk_sandbox.tickets[ticket]
    tick(redis)
    assert slack_sandbox.calls("chat.postMessage") == []
    timer = TimerStore(redis).get(ticket)
    assert timer is not None and timer.state == "deleted"
    assert TimerStore(redis).open_count() == 0


def test_slack_down_fails_the_breach_for_a_retry_that_posts_it_once(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    ticket = file_report(redis, "Data loss in the shared folder", minutes_ago=16)
    slack_sandbox.set_faults(down=True)
    with pytest.raises(Exception, match="Slack"):
        handle_due(context(), ticket, "breach")
    assert slack_sandbox.channel_messages("#support-escalations") == []
    slack_sandbox.set_faults(down=False)
    assert handle_due(context(), ticket, "breach") == "breached"  # the retry
    assert handle_due(context(), ticket, "breach") == "breached"  # and one more, after a crash
    [breach] = texts(slack_sandbox, "#support-escalations")
    assert "No first reply within the target: Urgent within 15 minutes" in breach
    assert zendesk_sandbox.tickets[ticket]["tags"].count("response_overdue") == 1


def test_a_zendesk_rate_limit_reschedules_the_look_at_the_comments(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    from rq import Retry

    ticket = file_report(redis, "Reports export empty files", minutes_ago=50)
    # One request a minute, spent by someone else: the look at the comments meets a 429.
    zendesk_sandbox.set_faults(rate_limit=1)
    auth = (f"{worker_env['ZENDESK_EMAIL']}/token", worker_env["ZENDESK_API_TOKEN"])
    assert requests.get(f"{zendesk_sandbox.url}/api/v2/groups.json", auth=auth, timeout=5).ok
    outcome = timers.timer_due(ticket, "nudge")
    assert isinstance(outcome, Retry)  # rescheduled for when Zendesk allows, not failed
    timer = TimerStore(redis).get(ticket)
    assert timer is not None and timer.open and not timer.nudged
    assert slack_sandbox.calls("chat.postMessage") == []


def test_the_tick_chain_runs_while_clocks_run_and_a_lapsed_one_begins_again(
    redis: Redis,
) -> None:
    from rq.registry import ScheduledJobRegistry

    from integrations.queue import EVENTS, queue
    from integrations.queue.timers import Timer
    from workers.timers import TICKING, ensure_tick

    scheduled = ScheduledJobRegistry(queue=queue(redis, EVENTS))
    now = 1_800_000_000.0
    assert not ensure_tick(redis, clock=lambda: now)  # no clock runs: no tick
    TimerStore(redis).start(
        Timer(
            ticket_id=5,
            subject="s",
            group="",
            target="t",
            seconds=60,
            accepted=now,
            nudge_at=None,
            breach_at=now + 60,
            nudge_channel=None,
            breach_channel="#support-escalations",
            breach_tags=(),
            url="u",
        )
    )
    assert ensure_tick(redis, clock=lambda: now)
    assert not ensure_tick(redis, clock=lambda: now)  # one chain, not two
    assert scheduled.get_job_ids() == ["timer-tick-360000001"]
    # A tick with the breach still ahead schedules the next one, in the next slot.
    assert run_tick(redis, clock=lambda: now + 5)["due"] == 0
    assert "timer-tick-360000002" in scheduled.get_job_ids()
    # The chain's worker was killed: its mark lapses, and maintenance begins a new chain.
    redis.delete(TICKING)
    assert ensure_tick(redis, clock=lambda: now + 40)
    # The breach handed over, nothing is due any more: the chain ends.
    assert run_tick(redis, clock=lambda: now + 60)["due"] == 1
    assert not redis.exists(TICKING)
    assert "timer-tick-360000013" not in scheduled.get_job_ids()


def scheduled_checks(redis: Redis, ticket: int) -> dict[str, float]:
    """The looks at Zendesk rq's scheduler holds for a ticket: job id -> when."""
    from rq.registry import ScheduledJobRegistry

    from integrations.queue import EVENTS, queue

    registry = ScheduledJobRegistry(queue=queue(redis, EVENTS))
    return {
        job_id: registry.get_scheduled_time(job_id).timestamp()
        for job_id in registry.get_job_ids()
        if job_id.startswith(f"timer-due-{ticket}-check-")
    }


def test_a_breached_report_whose_answer_webhook_was_lost_is_found_answered_later(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    # No webhook target: Zendesk's notice of the late answer never reaches the hub.
    ticket = file_report(redis, "Data loss in my notes", minutes_ago=16)
    tick(redis)
    timer = TimerStore(redis).get(ticket)
    assert timer is not None and timer.open and timer.breached
    # Zendesk is looked at again an hour after the breach.
    [(job_id, at)] = scheduled_checks(redis, ticket).items()
    assert job_id == f"timer-due-{ticket}-check-0"
    assert timer.check_at == pytest.approx(at, abs=1) and 3590 < at - time.time() <= 3600

    zendesk_sandbox.agent_reply(ticket, "Your notes are back, sorry for the wait.")
    assert handle_due(context(), ticket, "check", 0, clock=lambda: at) == "answered"
    [breach] = texts(slack_sandbox, "#support-escalations")
    assert "Answered after 16 min by Sandbox Agent" in breach
    assert TimerStore(redis).open_count() == 0


def test_a_breached_report_nobody_answers_is_looked_at_less_often_then_let_go(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    from click.testing import CliRunner

    from app import cli

    ticket = file_report(redis, "Data loss on sync", minutes_ago=16)
    tick(redis)
    breach_at = time.time()
    # Nothing in Zendesk: each look schedules the next, twice as far, up to a day.
    now = breach_at
    for checks, hours in enumerate((2, 4, 8, 16, 24, 24)):
        now += 3600 * 2**checks if checks < 5 else 24 * 3600
        clock = functools.partial(float, now)
        assert handle_due(context(), ticket, "check", checks, clock=clock) == "waiting"
        later = scheduled_checks(redis, ticket)[f"timer-due-{ticket}-check-{checks + 1}"]
        assert later - now == pytest.approx(hours * 3600, abs=1)
    assert "overdue" in CliRunner().invoke(cli, ["watch"]).output

    # Two weeks after the breach, the hub stops watching: the message says so.
    two_weeks = breach_at + 14 * 24 * 3600
    assert handle_due(context(), ticket, "check", 6, clock=lambda: two_weeks) == "expired"
    [breach] = texts(slack_sandbox, "#support-escalations")
    assert "No public reply two weeks after the target" in breach
    timer = TimerStore(redis).get(ticket)
    assert timer is not None and timer.state == "expired"
    assert CliRunner().invoke(cli, ["watch"]).output.splitlines()[-1] == "0 open timers"


def test_a_breached_report_solved_without_a_webhook_stops_at_the_next_look(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    ticket = file_report(redis, "Data loss: duplicate of 41", minutes_ago=16)
    tick(redis)
    with zendesk_sandbox.lock:
        zendesk_sandbox.tickets[ticket]["status"] = "solved"
    assert handle_due(context(), ticket, "check", 0) == "solved"
    [breach] = texts(slack_sandbox, "#support-escalations")
    assert "Solved without a public reply" in breach


def test_breached_clocks_left_without_a_look_get_one_once_a_day(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    # Breached under an earlier version: open, with no look at Zendesk ever coming.
    ticket = file_report(redis, "Data loss when offline", minutes_ago=16)
    tick(redis)
    redis.hdel(f"hub:timer:{ticket}", "check_at")
    redis.delete(*(f"rq:job:{j}" for j in scheduled_checks(redis, ticket)))
    from rq.registry import ScheduledJobRegistry

    from integrations.queue import EVENTS, queue

    ScheduledJobRegistry(queue=queue(redis, EVENTS)).remove(f"timer-due-{ticket}-check-0")
    waiting = file_report(redis, "Export is slow", minutes_ago=5)  # not breached: no look

    assert timers.sweep_checks(redis) == 1
    assert list(scheduled_checks(redis, ticket)) == [f"timer-due-{ticket}-check-0"]
    assert scheduled_checks(redis, waiting) == {}
    assert timers.sweep_checks(redis) is None  # another worker, the same day


BUSINESS_RULES = """\
business_hours:
  timezone: Europe/Berlin
  weekly: {weekdays: "09:00-18:00"}
intake:
  - name: Everything to Support
    then: [{set_group: Support}]
response_time:
  - name: Within an hour of business hours
    first_reply: 60m
    hours: business
    breach: {channel: "#support-escalations"}
"""


def test_a_business_hours_target_counts_the_answer_in_open_hours(
    redis: Redis,
    worker_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    client: FlaskClient,
) -> None:
    from dataclasses import replace
    from zoneinfo import ZoneInfo

    from integrations.queue.timers import Timer
    from integrations.slack import first_reply

    rules = tmp_path / "business.yml"
    rules.write_text(BUSINESS_RULES)
    monkeypatch.setenv("RULES_PATH", str(rules))
    berlin = ZoneInfo("Europe/Berlin")
    # Accepted Monday 17:55 in Berlin, answered Tuesday 09:10: 15 minutes of open hours.
    accepted = datetime(2026, 12, 7, 17, 55, tzinfo=berlin).timestamp()
    answered = datetime(2026, 12, 8, 9, 10, tzinfo=berlin).timestamp()
    timer = Timer(
        ticket_id=99,
        subject="Export button does nothing",
        group="Support",
        target="Within an hour of business hours",
        seconds=3600,
        accepted=accepted,
        nudge_at=None,
        breach_at=datetime(2026, 12, 8, 9, 55, tzinfo=berlin).timestamp(),
        nudge_channel=None,
        breach_channel="#support-escalations",
        breach_tags=(),
        url="https://example.zendesk.com/agent/tickets/99",
        business=True,
    )
    store = TimerStore(redis)
    store.start(timer)
    timers.clock_stopped(context(), timer, state="answered", at=answered, by="Sam Support")

    stopped = store.get(99)
    assert stopped is not None and stopped.counted == 15 * 60
    message = first_reply.breach_message(replace(stopped, breached=True))
    assert "Answered after 15 min of business hours by Sam Support" in message["text"] + str(
        message["blocks"]
    )
    text = client.get("/metrics").get_data(as_text=True)
    labels = 'group="Support",target="Within an hour of business hours"'
    assert f"feedback_hub_first_reply_seconds_sum{{{labels}}} 900.0" in text


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (50 * 60, "due in 50 min"),
        (20, "due in < 1 min"),
        (-20, "overdue < 1 min"),
        (-3 * 60 - 10, "overdue 3 min"),
    ],
)
def test_watch_never_says_0_min(seconds: float, said: str) -> None:
    from workers.timers import _minutes_from

    assert _minutes_from(seconds) == said
