"""The ticket-event job: rules, engineering messages and the reporter loop, driven by the
Zendesk sandbox's signed webhooks to the hub served over real HTTP in this process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from redis import Redis

from integrations.queue import enqueue_once
from integrations.queue.jobs import HANDLE_TICKET_EVENT
from integrations.queue.report_log import ReportLog
from integrations.report import ReplyContext, Report, Reporter
from integrations.sandbox import SlackSandbox, ZendeskSandbox
from integrations.sandbox.signing import slack_headers, zendesk_webhook_headers
from integrations.slack.loop import conversation, remember_reporter
from integrations.zendesk.payloads import ZendeskEvent, parse_webhook
from tests.conftest import SIGNING_SECRET
from tests.jobs import run_jobs
from workers.ticket_events import mark_own_comment

RULES = """\
groups: [Support, Mobile]
ticket_event:
  - name: Crashes to mobile engineering
    when: {all: [{event: tags_changed}, {tags: {includes: [crash]}}]}
    then:
      - notify: {channel: "#eng-mobile", text: "Crash report #{ticket_id} needs a look"}
"""


@pytest.fixture
def worker_env(
    worker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """The worker's environment with this file's rules."""
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    monkeypatch.setenv("RULES_PATH", str(rules))
    yield {**worker_env, "RULES_PATH": str(rules)}


def a_report(**reply: str) -> Report:
    return Report(
        source="slack_command",
        idempotency_key="slack:command:T0SANDBOX:U0REPORTER:C0GENERAL:1.2.3",
        reporter=Reporter(
            name="Ada Reporter", slack_team_id="T0SANDBOX", slack_user_id="U0REPORTER"
        ),
        subject="Export button does nothing",
        description="The export button does nothing.",
        reply=ReplyContext(
            team_id="T0SANDBOX", user_id="U0REPORTER", channel_id="C0GENERAL", **reply
        ),
    )


def filed(zendesk: ZendeskSandbox, redis: Redis, report: Report) -> int:
    """A ticket as file_report leaves it: in Zendesk, with its reporter remembered."""
    ticket, _ = zendesk.create_ticket(
        {
            "subject": report.subject,
            "comment": {"body": report.description},
            "requester": {"name": "Ada Reporter", "email": "ada@example.com"},
            "external_id": report.external_id,
        }
    )
    remember_reporter(redis, int(ticket["id"]), report)
    return int(ticket["id"])


def dm_texts(slack: SlackSandbox) -> list[str]:
    return [m.text for m in slack.channel_messages("D0REPORTER")]


def test_an_agent_reply_is_relayed_as_written_not_as_slack_markup(
    hub_url: str, redis: Redis, zendesk_sandbox: ZendeskSandbox, slack_sandbox: SlackSandbox
) -> None:
    ticket_id = filed(zendesk_sandbox, redis, a_report())
    zendesk_sandbox.agent_reply(ticket_id, "Try <https://evil.example|your settings> & <!channel>")
    run_jobs(redis)
    [told] = slack_sandbox.channel_messages("D0REPORTER")
    # Shown as the agent typed it: no disguised link, no channel ping.
    assert ">Try &lt;https://evil.example|your settings&gt; &amp; &lt;!channel&gt;" in told.text
    assert "<!channel>" not in told.text and "<https://evil.example" not in told.text


def test_agent_reply_reaches_the_reporter_and_their_answer_comes_back(
    hub_url: str, redis: Redis, zendesk_sandbox: ZendeskSandbox, slack_sandbox: SlackSandbox
) -> None:
    ticket_id = filed(zendesk_sandbox, redis, a_report())
    deliveries = zendesk_sandbox.agent_reply(ticket_id, "Which app version are you on?")
    # The comment, and the status change a first public reply makes (new -> open).
    assert [d.status for d in deliveries] == [200, 200]
    run_jobs(redis)

    [told] = slack_sandbox.channel_messages("D0REPORTER")
    assert "*Sandbox Agent* replied on your ticket" in told.text
    assert ">Which app version are you on?" in told.text
    assert f"{zendesk_sandbox.url}/hc/requests/{ticket_id}|#{ticket_id}" in told.text
    where = conversation(redis, ticket_id)
    assert where is not None and (where.channel, where.thread_ts) == ("D0REPORTER", told.ts)

    # The reporter answers in that thread.
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": "T0SANDBOX",
            "event_id": "Ev0REPLY1",
            "event": {
                "type": "message",
                "channel": "D0REPORTER",
                "channel_type": "im",
                "user": "U0REPORTER",
                "text": "5.2.1 on iOS &amp; it still fails",
                "ts": "1800000000.000100",
                "thread_ts": told.ts,
            },
        }
    ).encode()
    headers = slack_headers(SIGNING_SECRET, body, content_type="application/json")
    assert requests.post(f"{hub_url}/slack/events", data=body, headers=headers, timeout=5).ok
    run_jobs(redis)

    comments = zendesk_sandbox.comments[ticket_id]
    last = comments[-1]
    assert last["body"] == "5.2.1 on iOS & it still fails\n\n(sent from Slack)"
    assert last["public"] is True
    assert last["author_id"] == zendesk_sandbox.tickets[ticket_id]["requester_id"]


def test_a_relayed_reply_is_on_the_reports_console_timeline(
    hub_url: str, redis: Redis, zendesk_sandbox: ZendeskSandbox, slack_sandbox: SlackSandbox
) -> None:
    report = a_report()
    ticket_id = filed(zendesk_sandbox, redis, report)
    log = ReportLog(redis)
    log.record(report, decision=None, state="filed", event=f"ticket #{ticket_id} created")
    zendesk_sandbox.agent_note(ticket_id, "An internal note: not relayed, not on the timeline.")
    zendesk_sandbox.agent_reply(ticket_id, "Which app version are you on?")
    run_jobs(redis)

    row = log.get(report.key_digest)
    assert row is not None
    said = [(event, detail) for _, event, detail in row.timeline if event == "reply"]
    assert said == [("reply", "an agent's reply reached the reporter in Slack")]


def test_internal_notes_and_the_hubs_own_comments_are_not_relayed(
    hub_url: str, redis: Redis, zendesk_sandbox: ZendeskSandbox, slack_sandbox: SlackSandbox
) -> None:
    ticket_id = filed(zendesk_sandbox, redis, a_report())
    zendesk_sandbox.agent_note(ticket_id, "Looks like the export service; checking logs.")
    mark_own_comment(redis, ticket_id, "Posted by the hub itself")
    zendesk_sandbox.agent_reply(ticket_id, "Posted by the hub itself")
    run_jobs(redis)
    assert dm_texts(slack_sandbox) == []


def test_solving_tells_the_reporter_in_the_same_thread(
    hub_url: str, redis: Redis, zendesk_sandbox: ZendeskSandbox, slack_sandbox: SlackSandbox
) -> None:
    ticket_id = filed(zendesk_sandbox, redis, a_report())
    zendesk_sandbox.agent_reply(ticket_id, "Fixed in 5.2.2.")
    run_jobs(redis)
    zendesk_sandbox.agent_solve(ticket_id)
    run_jobs(redis)
    first, second = slack_sandbox.channel_messages("D0REPORTER")
    assert "Fixed in 5.2.2." in first.text and first.thread_ts is None
    assert "was marked solved" in second.text and second.thread_ts == first.ts


def test_a_shortcut_report_is_answered_in_its_thread(
    hub_url: str, redis: Redis, zendesk_sandbox: ZendeskSandbox, slack_sandbox: SlackSandbox
) -> None:
    # The message the shortcut was used on (the sandbox's chat.postMessage stores it).
    original = slack_sandbox._post_message({"channel": "C0GENERAL", "text": "export is broken"})
    report = a_report(message_ts=original["ts"]).model_copy(update={"source": "slack_shortcut"})
    ticket_id = filed(zendesk_sandbox, redis, report)
    zendesk_sandbox.agent_reply(ticket_id, "Looking into it.")
    run_jobs(redis)
    replies = [m for m in slack_sandbox.channel_messages("C0GENERAL") if m.thread_ts]
    assert len(replies) == 1 and replies[0].thread_ts == original["ts"]
    assert "Looking into it." in replies[0].text


def test_a_second_delivery_of_the_same_event_changes_nothing(
    hub_url: str,
    worker_env: dict[str, str],
    redis: Redis,
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    ticket_id = filed(zendesk_sandbox, redis, a_report())
    ticket = zendesk_sandbox.tickets[ticket_id]
    payload = zendesk_sandbox.ticket_event(
        "ticket.comment_added",
        ticket,
        {
            "comment": {
                "id": "555",
                "body": "We found it.",
                "is_public": True,
                "author": {"id": "10001", "name": "Sam Support", "is_staff": True},
            }
        },
    )
    body = json.dumps(payload).encode()
    for invocation in ("1", "2"):
        headers = zendesk_webhook_headers(
            worker_env["ZENDESK_WEBHOOK_SECRET"],
            body,
            webhook_id="01TEST",
            account_id=1,
            invocation_id=invocation,
        )
        answer = requests.post(f"{hub_url}/zendesk/webhook", data=body, headers=headers, timeout=5)
        assert answer.status_code == 200
    run_jobs(redis)
    assert len(dm_texts(slack_sandbox)) == 1


def test_rules_notify_engineering_and_later_events_edit_in_place(
    hub_url: str, redis: Redis, zendesk_sandbox: ZendeskSandbox, slack_sandbox: SlackSandbox
) -> None:
    ticket_id = filed(zendesk_sandbox, redis, a_report())
    zendesk_sandbox.agent_tags(ticket_id, add=["crash"])
    run_jobs(redis)
    [message] = slack_sandbox.channel_messages("#eng-mobile")[:1]
    assert message.text.startswith(f"[new] #{ticket_id} Export button does nothing")
    assert "`crash`" in json.dumps(message.blocks)

    zendesk_sandbox.agent_solve(ticket_id)
    run_jobs(redis)
    messages = slack_sandbox.channel_messages("#eng-mobile")
    top = [m for m in messages if not m.thread_ts]
    thread = [m.text for m in messages if m.thread_ts == message.ts]
    assert len(top) == 1
    assert top[0].text.startswith(f"[solved] #{ticket_id}")
    assert "Sandbox Agent" in json.dumps(top[0].blocks)  # the assignee
    assert thread == [
        f"Crash report #{ticket_id} needs a look",
        "Status: new \u2192 *solved*.",
    ]
    assert len(slack_sandbox.calls("chat.update")) >= 1
    # One top-level post in the channel, ever; the reporter was told in their DM.
    posts = [
        c.args
        for c in slack_sandbox.calls("chat.postMessage")
        if c.args["channel"] == "#eng-mobile" and not c.args.get("thread_ts")
    ]
    assert len(posts) == 1
    assert "was marked solved" in dm_texts(slack_sandbox)[-1]


def a_trigger(ticket_id: int, comment: tuple[str, int, str], **ticket: str) -> ZendeskEvent:
    """A delivery of the trigger JSON `zendesk setup --mode triggers` installs, filled in."""
    comment_id, author_id, body = comment
    data = {
        "feedback_hub": "trigger",
        "trigger": ticket.pop("trigger", "updated"),
        "ticket": {"id": str(ticket_id), "tags": "", **ticket},
        "comment": {
            "id": comment_id,
            "author_id": str(author_id),
            "author_name": "Sam Support",
            "is_public": "true",
            "body": body,
        },
    }
    event = parse_webhook(json.dumps(data).encode())
    assert isinstance(event, ZendeskEvent)
    return event


def deliver(redis: Redis, event: ZendeskEvent) -> None:
    """Queue a webhook's event as the web process does, and run the jobs it makes."""
    enqueue_once(
        redis, replace(HANDLE_TICKET_EVENT, kind="zendesk-event"), event.to_job(), key=event.key
    )
    run_jobs(redis)


def test_trigger_deliveries_relay_only_what_changed(
    worker_env: dict[str, str],
    redis: Redis,
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    ticket_id = filed(zendesk_sandbox, redis, a_report())
    requester = zendesk_sandbox.tickets[ticket_id]["requester_id"]
    description = (str(ticket_id), requester, "The export button does nothing.")
    answer = ("9001", 10001, "We are on it.")
    deliveries = [
        a_trigger(
            ticket_id,
            description,
            trigger="created",
            status="New",
            requester_id=str(requester),
            updated_at="1",
        ),
        a_trigger(ticket_id, answer, status="Open", requester_id=str(requester), updated_at="2"),
        # Same latest comment, another change: the comment is not told again.
        a_trigger(ticket_id, answer, status="Pending", requester_id=str(requester), updated_at="3"),
        a_trigger(ticket_id, answer, status="Solved", requester_id=str(requester), updated_at="4"),
    ]
    for event in deliveries:
        deliver(redis, event)
    told = dm_texts(slack_sandbox)
    assert len(told) == 2
    assert ">We are on it." in told[0]
    assert "was marked solved" in told[1]


def test_a_trigger_comment_by_a_ccd_customer_is_not_supports_reply(
    worker_env: dict[str, str],
    redis: Redis,
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    # A trigger does not say who is staff. Someone who is not the requester may be a
    # customer CC'd on the ticket: Zendesk's user role decides, not "not the requester".
    ticket_id = filed(zendesk_sandbox, redis, a_report())
    requester = str(zendesk_sandbox.tickets[ticket_id]["requester_id"])
    colleague = zendesk_sandbox.add_user("Bob Customer", "bob@example.com")
    cc = a_trigger(
        ticket_id,
        ("9101", int(colleague["id"]), "Same for me, any news?"),
        status="Open",
        requester_id=requester,
        updated_at="2",
    )
    deliver(redis, cc)
    assert dm_texts(slack_sandbox) == []
    agent = a_trigger(
        ticket_id, ("9102", 10001, "We are on it."), status="Open", requester_id=requester,
        updated_at="3",
    )  # fmt: skip
    deliver(redis, agent)
    [told] = dm_texts(slack_sandbox)
    assert ">We are on it." in told


def test_simulate_answer_is_the_reporter_answering_in_slack(
    hub_url: str,
    redis: Redis,
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What `make run` offers to try the loop both ways: an agent's reply, then the answer.
    from click.testing import CliRunner

    from app import cli

    state = tmp_path / "dev.json"
    state.write_text(
        json.dumps(
            {
                "hub_url": hub_url,
                "slack_signing_secret": SIGNING_SECRET,
                "slack_sandbox_url": slack_sandbox.url,
                "zendesk_sandbox_url": zendesk_sandbox.url,
            }
        )
    )
    monkeypatch.setenv("FEEDBACK_HUB_DEV_STATE", str(state))
    ticket_id = filed(zendesk_sandbox, redis, a_report())
    early = CliRunner().invoke(cli, ["simulate", "answer", "hi", "--ticket", str(ticket_id)])
    assert early.exit_code == 1 and "no message from the hub" in early.output
    zendesk_sandbox.agent_reply(ticket_id, "Which app version are you on?")
    run_jobs(redis)

    result = CliRunner().invoke(
        cli, ["simulate", "answer", "5.2.1 & still broken", "--ticket", str(ticket_id)]
    )
    assert result.exit_code == 0, result.output
    run_jobs(redis)
    last = zendesk_sandbox.comments[ticket_id][-1]
    assert last["body"] == "5.2.1 & still broken\n\n(sent from Slack)"
    assert last["author_id"] == zendesk_sandbox.tickets[ticket_id]["requester_id"]
