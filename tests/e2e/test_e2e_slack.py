"""End to end: a signed /feedback through the Procfile's gunicorn and worker, to a Zendesk
ticket in the sandbox and "Ticket #N filed" back in the Slack sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from integrations.sandbox import SlackSandbox, ZendeskSandbox
from integrations.settings import Settings
from integrations.slack import messages
from integrations.slack.api import SlackApi
from integrations.slack.payloads import MessageShortcut, parse_command, parse_interaction
from integrations.slack.reports import command_report, shortcut_report
from integrations.slack.testing import command_body, interaction_body
from tests.running_hub import RunningHub, running_hub

pytestmark = pytest.mark.e2e


@pytest.fixture
def hub(
    sandbox_env: dict[str, str], redis: Redis, repo_root: Path, tmp_path: Path
) -> Iterator[RunningHub]:
    """The Procfile's web (gunicorn) and worker processes, on the sandboxes and a clean Redis."""
    with running_hub(sandbox_env, redis, repo_root, tmp_path) as hub:
        yield hub


def the_ticket(hub: RunningHub, zendesk: ZendeskSandbox, external_id: str) -> dict[str, Any]:
    tickets = hub.eventually(
        lambda: zendesk.find_tickets(external_id=external_id), "the ticket was created"
    )
    assert len(tickets) == 1
    return tickets[0]


def test_feedback_command_becomes_a_ticket_and_the_reporter_hears_its_number(
    hub: RunningHub,
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
    sandbox_env: dict[str, str],
) -> None:
    body = command_body(
        token="gIkuvaNzQIHg97ATvDxqgjtO",
        team_id="T0SANDBOX",
        team_domain="sandbox",
        channel_id="C0GENERAL",
        channel_name="general",
        user_id="U0REPORTER",
        user_name="ada",
        command="/feedback",
        text="The export button does nothing #export\nOn the reports page, twice.",
        response_url=slack_sandbox.response_url("e2e-command"),
        trigger_id="13345224609.738474920.e2e",
        api_app_id="A0SANDBOX",
    )
    response = hub.post_signed("/slack/commands", body)
    assert response.status_code == 200
    assert response.json() == messages.receipt()  # what the person sees at once

    external_id = command_report(parse_command(body)).external_id
    ticket = the_ticket(hub, zendesk_sandbox, external_id)
    assert ticket["subject"] == "The export button does nothing #export"
    assert ticket["description"].startswith(
        "The export button does nothing #export\nOn the reports page, twice."
    )
    for fact in ("sandbox", "#general (C0GENERAL)", "@ada (U0REPORTER)"):
        assert fact in ticket["description"]
    assert {"slack", "feedback", "export"} <= set(ticket["tags"])
    requester = zendesk_sandbox.users[ticket["requester_id"]]
    assert requester["email"] == "ada@example.com"  # from users.info
    assert requester["name"] == "Ada Reporter"

    post = hub.eventually(lambda: slack_sandbox.responses, "the follow-up reached the reporter")
    assert [p["name"] for p in post] == ["e2e-command"]
    ticket_url = f"{sandbox_env['ZENDESK_URL']}/hc/requests/{ticket['id']}"
    assert post[0]["body"]["text"] == f"Ticket #{ticket['id']} filed: {ticket_url}"

    # Slack delivering the same command again: the same receipt, still one ticket.
    assert hub.post_signed("/slack/commands", body).json() == messages.receipt()
    assert len(zendesk_sandbox.find_tickets()) == 1


def test_send_to_support_shortcut_files_the_message(
    hub: RunningHub,
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
    sandbox_env: dict[str, str],
) -> None:
    # The message someone will send to support, posted in the sandbox so it has a permalink.
    text = "Checkout fails with a 500 for EU cards #checkout"
    settings = Settings.from_env("worker", sandbox_env)
    ts = SlackApi(settings).post_message("C0GENERAL", {"text": text})["ts"]
    payload = {
        "type": "message_action",
        "token": "verification_token",
        "action_ts": "1583637157.207593",
        "team": {"id": "T0SANDBOX", "domain": "sandbox"},
        "user": {"id": "U0SUPPORT", "name": "sam"},
        "channel": {"id": "C0GENERAL", "name": "general"},
        "callback_id": "send_to_support",
        "trigger_id": "111.222.e2e",
        "message_ts": ts,
        "message": {
            "type": "message",
            "text": text,
            "user": "U0REPORTER",
            "ts": ts,
            "files": [{"id": "F111", "name": "screenshot.png", "mimetype": "image/png"}],
        },
        "response_url": slack_sandbox.response_url("e2e-shortcut"),
    }
    body = interaction_body(payload)
    response = hub.post_signed("/slack/interactions", body)
    assert response.status_code == 200

    shortcut = parse_interaction(body)
    assert isinstance(shortcut, MessageShortcut)
    ticket = the_ticket(hub, zendesk_sandbox, shortcut_report(shortcut).external_id)
    assert ticket["subject"] == text
    assert "Attached files: screenshot.png" in ticket["description"]
    permalink = f"{slack_sandbox.url}/archives/C0GENERAL/p{ts.replace('.', '')}"
    assert permalink in ticket["description"]  # fetched by the worker (chat.getPermalink)
    assert {"slack", "feedback", "checkout"} <= set(ticket["tags"])
    # Requested by the person who used the shortcut, not the message's author.
    assert zendesk_sandbox.users[ticket["requester_id"]]["email"] == "sam@example.com"

    posts = hub.eventually(
        lambda: slack_sandbox.responses if len(slack_sandbox.responses) == 2 else None,
        "the receipt and the follow-up reached the response_url",
    )
    assert [p["body"]["text"] for p in posts] == [
        messages.shortcut_receipt()["text"],
        f"Ticket #{ticket['id']} filed: {settings.zendesk_url}/hc/requests/{ticket['id']}",
    ]
