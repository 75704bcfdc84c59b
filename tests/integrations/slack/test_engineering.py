"""Engineering channels: one message per issue, edited in place, threaded; the Acknowledge button.

Contract tests: the real slack_sdk and zenpy clients against the sandboxes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import urlencode

import pytest
from redis import Redis

from app import create_app
from integrations.queue import enqueue_once
from integrations.queue.jobs import NOTIFY_ENGINEERING
from integrations.report import Report, ReportFields
from integrations.sandbox import SlackSandbox, ZendeskSandbox
from integrations.sandbox.signing import slack_headers
from integrations.sandbox.slack import Message
from integrations.settings import Settings
from integrations.slack.api import SlackApi
from integrations.slack.cards import (
    ACKNOWLEDGE_ACTION,
    SAME_ISSUE_ACTION,
    Card,
    Suggestion,
    card_message,
)
from integrations.slack.engineering import EngineeringChannels
from integrations.zendesk.gateway import Ticket
from tests.conftest import SIGNING_SECRET
from tests.jobs import run_jobs


@pytest.fixture
def worker_env(
    worker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """The worker's environment, with no rules file (no rule notifies here)."""
    monkeypatch.setenv("RULES_PATH", "/nonexistent/rules.yml")
    yield worker_env


@pytest.fixture
def eng(worker_env: dict[str, str], redis: Redis) -> EngineeringChannels:
    return EngineeringChannels(
        SlackApi(Settings.from_env("worker", worker_env), redis=redis), redis
    )


def a_card(**changes: object) -> Card:
    base: dict[str, object] = {
        "issue_id": 42,
        "subject": "Export button does nothing",
        "url": "https://acme.zendesk.com/agent/tickets/42",
        "status": "new",
        "priority": "high",
        "tags": ("bug", "export"),
        "platform": "ios",
        "app_version": "5.2.1",
    }
    return Card(**{**base, **changes})  # type: ignore[arg-type]


def top_level(slack: SlackSandbox, channel: str) -> list[str]:
    return [m.ts for m in slack.channel_messages(channel) if not m.thread_ts]


def block_text(blocks: list[dict[str, object]]) -> str:
    return json.dumps(blocks)


def test_message_shows_what_engineering_needs() -> None:
    message = card_message(a_card(reporters=3))
    text = block_text(message["blocks"])
    assert "#42 Export button does nothing" in text
    assert "https://acme.zendesk.com/agent/tickets/42" in text
    for shown in ("high", "`bug`, `export`", "ios 5.2.1", "*Reporters*\\n3", "unassigned"):
        assert shown in text, shown
    buttons = message["blocks"][-1]["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Acknowledge", "Open in Zendesk"]
    assert buttons[0]["action_id"] == ACKNOWLEDGE_ACTION and buttons[0]["value"] == "42"
    assert buttons[1]["url"] == "https://acme.zendesk.com/agent/tickets/42"
    assert message["text"] == "[new] #42 Export button does nothing (high, 3 reporters)"


def test_first_notify_posts_later_ones_edit_in_place(
    eng: EngineeringChannels, slack_sandbox: SlackSandbox
) -> None:
    first = eng.notify("#eng-mobile", a_card())
    again = eng.notify("#eng-mobile", a_card(status="open", reporters=2))
    assert again == first
    assert len(slack_sandbox.calls("chat.postMessage")) == 1
    assert len(slack_sandbox.calls("chat.update")) == 1
    [message] = slack_sandbox.channel_messages("#eng-mobile")
    assert message.text.startswith("[open] #42") and "2 reporters" in message.text
    assert message.history == ["[new] #42 Export button does nothing (high, 1 reporter)"]


def test_a_retried_job_edits_instead_of_posting_again(
    worker_env: dict[str, str], redis: Redis, slack_sandbox: SlackSandbox
) -> None:
    settings = Settings.from_env("worker", worker_env)
    EngineeringChannels(SlackApi(settings, redis=redis), redis).notify("#eng", a_card())
    # A new process (the retry) knows only what Redis knows.
    EngineeringChannels(SlackApi(settings, redis=redis), redis).notify("#eng", a_card())
    assert len(top_level(slack_sandbox, "#eng")) == 1
    assert len(slack_sandbox.calls("chat.postMessage")) == 1


def test_each_channel_gets_its_own_message(
    eng: EngineeringChannels, slack_sandbox: SlackSandbox
) -> None:
    eng.notify("#eng-mobile", a_card())
    eng.notify("#eng-escalations", a_card())
    assert eng.refresh(a_card(status="solved")) == 2
    for channel in ("#eng-mobile", "#eng-escalations"):
        [message] = slack_sandbox.channel_messages(channel)
        assert message.text.startswith("[solved]")


def test_thread_replies_are_posted_once_per_key(
    eng: EngineeringChannels, slack_sandbox: SlackSandbox
) -> None:
    posted = eng.notify("#eng", a_card())
    assert eng.thread(42, "Status: open \u2192 *solved*.", once_key="event-1") == 1
    assert eng.thread(42, "Status: open \u2192 *solved*.", once_key="event-1") == 0
    replies = [m for m in slack_sandbox.channel_messages("#eng") if m.thread_ts == posted.ts]
    assert [m.text for m in replies] == ["Status: open \u2192 *solved*."]


def test_notify_engineering_job_counts_reporters(
    worker_env: dict[str, str], redis: Redis, slack_sandbox: SlackSandbox
) -> None:
    card = a_card().to_json()
    # Ticket 43 notified twice (two deliveries): still one reporter.
    for n, ticket_id in enumerate((42, 43, 43)):
        enqueue_once(
            redis,
            replace(NOTIFY_ENGINEERING, kind="t-eng"),
            card,
            ["#eng"],
            ticket_id,
            key=f"42:{ticket_id}:{n}",
        )
    run_jobs(redis)
    [message] = slack_sandbox.channel_messages("#eng")
    assert "2 reporters" in message.text
    assert len(slack_sandbox.calls("chat.postMessage")) == 1


def press_acknowledge(client: object, issue_id: int, user: str, name: str) -> int:
    payload = {
        "type": "block_actions",
        "team": {"id": "T0SANDBOX", "domain": "sandbox"},
        "user": {"id": user, "username": name, "name": name, "team_id": "T0SANDBOX"},
        "api_app_id": "A0SANDBOX",
        "trigger_id": "1234.5678.abcd",
        "container": {"type": "message", "message_ts": "1.000001", "channel_id": "C0ENG"},
        "channel": {"id": "C0ENG", "name": "eng"},
        "response_url": "https://hooks.slack.com/actions/T0SANDBOX/1/abc",
        "actions": [
            {
                "type": "button",
                "action_id": ACKNOWLEDGE_ACTION,
                "block_id": f"eng:{issue_id}",
                "value": str(issue_id),
                "action_ts": "1700000000.000100",
                "text": {"type": "plain_text", "text": "Acknowledge"},
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    response = client.post(  # type: ignore[attr-defined]
        "/slack/interactions", data=body, headers=slack_headers(SIGNING_SECRET, body)
    )
    return int(response.status_code)


def test_acknowledge_notes_and_tags_the_ticket_and_shows_who(
    worker_env: dict[str, str],
    redis: Redis,
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
    eng: EngineeringChannels,
) -> None:
    ticket, _ = zendesk_sandbox.create_ticket({"subject": "Export broken", "comment": "It is."})
    eng.notify("#eng", a_card(issue_id=ticket["id"]))
    client = create_app(Settings.from_env("web", worker_env)).test_client()

    assert press_acknowledge(client, ticket["id"], "U0ENGINEER", "grace") == 200
    assert press_acknowledge(client, ticket["id"], "U0ENGINEER", "grace") == 200
    run_jobs(redis)

    stored = zendesk_sandbox.tickets[ticket["id"]]
    assert "eng_acknowledged" in stored["tags"]
    notes = [c for c in zendesk_sandbox.comments[ticket["id"]] if not c["public"]]
    assert [n["body"] for n in notes] == ["Acknowledged by grace in Slack (engineering)."]
    [message] = top_level_messages(slack_sandbox, "#eng")
    assert "Acknowledged by <@U0ENGINEER>" in block_text(message.blocks)
    buttons = [b["text"]["text"] for b in message.blocks[-1]["elements"]]
    assert buttons == ["Open in Zendesk"]


def top_level_messages(slack: SlackSandbox, channel: str) -> list[Message]:
    return [m for m in slack.channel_messages(channel) if not m.thread_ts]


def test_a_filed_report_makes_a_card() -> None:
    report = Report(
        source="mobile",
        idempotency_key="k1",
        subject="Crash on launch",
        description="It crashes.",
        tags=("crash",),
        fields=ReportFields(platform="android", app_version="3.1.0"),
    )
    ticket = Ticket(
        id=7, url="https://acme.zendesk.com/agent/tickets/7", status="new", tags=("crash",)
    )
    card = Card.for_report(report, ticket, priority="urgent", reason='rule 2 "Crashes"')
    text = block_text(card_message(card)["blocks"])
    assert "#7 Crash on launch" in text and "android 3.1.0" in text and "urgent" in text
    assert 'rule 2 \\"Crashes\\"' in text


def test_suggestions_show_escaped_with_their_buttons_and_a_merged_card_says_where() -> None:
    suggestion = Suggestion(7, "<!channel> *export* & co", "https://acme.zendesk.com/t/7", "x")
    text = block_text(card_message(a_card(suggestions=(suggestion,)))["blocks"])
    assert "Possibly the same as <https://acme.zendesk.com/t/7|#7>: &lt;!channel&gt;" in text
    assert "<!channel>" not in text
    assert f'"action_id": "{SAME_ISSUE_ACTION}"' in text and '"value": "42:7"' in text
    merged = card_message(a_card(merged_into=9, merged_url="https://z/9", merged_by="<@U1>"))
    assert merged["text"] == "#42 merged into #9"
    assert "was merged into <https://z/9|#9> by <@U1>." in block_text(merged["blocks"])
    assert '"value": "42"' in block_text(merged["blocks"])  # Split out again
