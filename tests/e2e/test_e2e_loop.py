"""End to end, the reporter loop and engineering channels: the Procfile's gunicorn and worker,
real Redis, both sandboxes, and the webhook `feedback-hub zendesk setup` creates.

The ticket is made the way file_report leaves it (in Zendesk, its reporter remembered);
from there on everything goes through the running processes over HTTP.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from redis import Redis

from integrations.queue import EVENTS, queue
from integrations.report import ReplyContext, Report, Reporter
from integrations.sandbox import SlackSandbox, ZendeskSandbox
from integrations.sandbox.signing import slack_headers, zendesk_webhook_headers
from integrations.slack.loop import remember_reporter
from tests.conftest import SIGNING_SECRET
from tests.running_hub import RunningHub, hub_with_webhook

pytestmark = pytest.mark.e2e

RULES = """\
groups: [Support]
ticket_event:
  - name: Crashes to mobile engineering
    when: {all: [{event: tags_changed}, {tags: {includes: [crash]}}]}
    then:
      - notify: {channel: "#eng-mobile", text: "Crash report #{ticket_id} needs a look"}
"""


@pytest.fixture
def hub(
    sandbox_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    redis: Redis,
    repo_root: Path,
    tmp_path: Path,
) -> Iterator[RunningHub]:
    """`zendesk setup` against the sandbox, then the Procfile's web and worker with its secret."""
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    env = {**sandbox_env, "RULES_PATH": str(rules)}
    with hub_with_webhook(env, redis, repo_root, tmp_path) as hub:
        yield hub


def filed_ticket(zendesk: ZendeskSandbox, redis: Redis) -> int:
    """A ticket as file_report leaves it: in Zendesk, with its reporter remembered."""
    report = Report(
        source="slack_command",
        idempotency_key="slack:command:T0SANDBOX:U0REPORTER:C0GENERAL:e2e-loop",
        reporter=Reporter(
            name="Ada Reporter", slack_team_id="T0SANDBOX", slack_user_id="U0REPORTER"
        ),
        subject="Export button does nothing",
        description="The export button does nothing on the reports page.",
        reply=ReplyContext(team_id="T0SANDBOX", user_id="U0REPORTER", channel_id="C0GENERAL"),
    )
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


def test_agent_reply_reaches_the_reporter_and_the_reply_comes_back(
    hub: RunningHub, zendesk_sandbox: ZendeskSandbox, slack_sandbox: SlackSandbox, redis: Redis
) -> None:
    ticket_id = filed_ticket(zendesk_sandbox, redis)

    deliveries = zendesk_sandbox.agent_reply(ticket_id, "Which app version are you on?")
    assert {d.status for d in deliveries} == {200}, hub.log_tail()
    told = hub.eventually(
        lambda: slack_sandbox.channel_messages("D0REPORTER"), "the reporter was told in a DM"
    )[0]
    assert ">Which app version are you on?" in told.text
    assert f"{zendesk_sandbox.url}/hc/requests/{ticket_id}" in told.text

    reply = json.dumps(
        {
            "type": "event_callback",
            "team_id": "T0SANDBOX",
            "api_app_id": "A0SANDBOX",
            "event_id": "Ev0E2EREPLY",
            "event_time": int(time.time()),
            "event": {
                "type": "message",
                "channel": "D0REPORTER",
                "channel_type": "im",
                "user": "U0REPORTER",
                "text": "Version 5.2.1, on iOS 17.",
                "ts": f"{time.time():.6f}",
                "thread_ts": told.ts,
            },
        }
    ).encode()
    headers = slack_headers(SIGNING_SECRET, reply, content_type="application/json")
    answer = requests.post(f"{hub.url}/slack/events", data=reply, headers=headers, timeout=15)
    assert answer.status_code == 200

    def reporter_comment() -> dict[str, object] | None:
        last = zendesk_sandbox.comments[ticket_id][-1]
        return last if last["body"].startswith("Version 5.2.1") else None

    comment = hub.eventually(reporter_comment, "the reply became a comment on the ticket")
    assert comment["public"] is True
    assert comment["author_id"] == zendesk_sandbox.tickets[ticket_id]["requester_id"]
    hub.settled()
    # The reporter's own comment is not relayed back to them.
    assert len(slack_sandbox.channel_messages("D0REPORTER")) == 1


def test_a_second_delivery_of_the_same_webhook_changes_nothing(
    hub: RunningHub, zendesk_sandbox: ZendeskSandbox, slack_sandbox: SlackSandbox, redis: Redis
) -> None:
    ticket_id = filed_ticket(zendesk_sandbox, redis)
    payload = zendesk_sandbox.ticket_event(
        "ticket.comment_added",
        zendesk_sandbox.tickets[ticket_id],
        {
            "comment": {
                "id": "77001",
                "body": "We found the cause.",
                "is_public": True,
                "author": {"id": "10001", "name": "Sam Support", "is_staff": True},
            }
        },
    )
    body = json.dumps(payload).encode()
    for invocation in ("e2e-1", "e2e-1", "e2e-2"):
        headers = zendesk_webhook_headers(
            hub.env["ZENDESK_WEBHOOK_SECRET"],
            body,
            webhook_id="01E2E",
            account_id=1,
            invocation_id=invocation,
        )
        response = requests.post(
            f"{hub.url}/zendesk/webhook", data=body, headers=headers, timeout=15
        )
        assert response.status_code == 200
    hub.eventually(
        lambda: slack_sandbox.channel_messages("D0REPORTER"), "the reporter was told once"
    )
    hub.settled()
    assert [
        m.text.count("We found the cause.") for m in slack_sandbox.channel_messages("D0REPORTER")
    ] == [1]
    assert queue(redis, EVENTS).count == 0


def test_engineering_message_is_edited_in_place_on_a_status_change(
    hub: RunningHub, zendesk_sandbox: ZendeskSandbox, slack_sandbox: SlackSandbox, redis: Redis
) -> None:
    ticket_id = filed_ticket(zendesk_sandbox, redis)
    zendesk_sandbox.agent_tags(ticket_id, add=["crash"])
    first = hub.eventually(
        lambda: slack_sandbox.channel_messages("#eng-mobile"), "engineering heard of the crash"
    )[0]
    assert first.text.startswith(f"[new] #{ticket_id} Export button does nothing")

    zendesk_sandbox.agent_solve(ticket_id)

    def edited() -> bool:
        top = [m for m in slack_sandbox.channel_messages("#eng-mobile") if not m.thread_ts]
        return len(top) == 1 and top[0].text.startswith(f"[solved] #{ticket_id}")

    hub.eventually(edited, "the message was edited to show the ticket solved")
    hub.settled()
    updates = [c for c in slack_sandbox.calls("chat.update") if c.args.get("ts") == first.ts]
    assert updates
    posts = [
        c
        for c in slack_sandbox.calls("chat.postMessage")
        if c.args.get("channel") == "#eng-mobile" and not c.args.get("thread_ts")
    ]
    assert len(posts) == 1
    thread = [
        m.text for m in slack_sandbox.channel_messages("#eng-mobile") if m.thread_ts == first.ts
    ]
    assert "Status: new \u2192 *solved*." in thread
