"""End to end: the one-hour promise with a one-minute target, through the Procfile's gunicorn and
worker (its scheduler ticks the timers), the Zendesk sandbox's signed webhooks and the Slack
sandbox. Three reports run at once in one hub, so the test lasts about one target:

- no reply: a nudge in the triage channel, then a breach message and the ticket's tag;
- an agent's public reply before the nudge: neither;
- only an internal note: the clock runs on, nudge and breach as if nothing happened.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from redis import Redis

from integrations.sandbox import SlackSandbox, ZendeskSandbox
from tests.running_hub import RunningHub, running_hub

pytestmark = pytest.mark.e2e

APP_KEY = {"Authorization": "Bearer mobile-key-ios-0000"}
RULES = """\
intake:
  - name: Everything is tagged
    then: [{add_tags: [first_reply_e2e]}]
response_time:
  - name: Within a minute
    first_reply: 1m
    nudge: {at: 50%, channel: "#support-triage"}
    breach: {channel: "#support-escalations", add_tags: [response_overdue]}
"""


@pytest.fixture
def hub(
    sandbox_env: dict[str, str],
    redis: Redis,
    repo_root: Path,
    tmp_path: Path,
    zendesk_sandbox: ZendeskSandbox,
) -> Iterator[RunningHub]:
    """The Procfile's processes with a one-minute target; Zendesk's webhooks go to the hub."""
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {**sandbox_env, "RULES_PATH": str(rules)}
    with running_hub(env, redis, repo_root, logs) as hub:
        zendesk_sandbox.set_webhook_target(
            f"{hub.url}/zendesk/webhook", sandbox_env["ZENDESK_WEBHOOK_SECRET"]
        )
        yield hub


def report(hub: RunningHub, title: str) -> int:
    """Send a mobile report; return its ticket id once filed."""
    body = {
        "title": title,
        "description": f"{title}, since the update.",
        "reporter": {"email": "ana@example.com", "name": "Ana Lima"},
    }
    headers = {**APP_KEY, "Idempotency-Key": "e2e-" + title.replace(" ", "-")}
    accepted = requests.post(
        f"{hub.url}/api/v1/bug-reports", json=body, headers=headers, timeout=30
    )
    assert accepted.status_code == 202, accepted.text
    status_url = hub.url + accepted.json()["status_url"]

    def filed() -> int | None:
        status: dict[str, Any] = requests.get(status_url, headers=APP_KEY, timeout=10).json()
        return int(status["ticket_id"]) if status["status"] == "filed" else None

    return hub.eventually(filed, f"{title!r} was filed")


def every_text(slack: SlackSandbox, channel: str) -> str:
    """Everything the hub ever posted or edited in a channel (every version of every message)."""
    wanted = slack.channel_id(channel)
    return "\n".join(
        str(call.args)
        for call in slack.calls()
        if call.method in ("chat.postMessage", "chat.update")
        and slack.channel_id(str(call.args.get("channel") or "")) == wanted
    )


def mentions(text: str, ticket: int) -> bool:
    return re.search(rf"#{ticket}\b", text) is not None


def test_no_reply_nudges_then_breaches_a_reply_stops_it_and_a_note_does_not(
    hub: RunningHub, zendesk_sandbox: ZendeskSandbox, slack_sandbox: SlackSandbox
) -> None:
    silent = report(hub, "Export button does nothing")
    answered = report(hub, "Invoices are missing")
    noted = report(hub, "Sync is stuck")
    zendesk_sandbox.agent_reply(answered, "Which app version are you on?")
    zendesk_sandbox.agent_note(noted, "Looks like the sync service; checking logs.")

    def breached() -> bool:
        tags = [zendesk_sandbox.tickets[t]["tags"] for t in (silent, noted)]
        return all("response_overdue" in t for t in tags) and (
            len(slack_sandbox.channel_messages("#support-escalations")) >= 2
        )

    hub.eventually(breached, "both unanswered reports breached", timeout=150)
    hub.settled()

    triage = every_text(slack_sandbox, "#support-triage")
    escalations = every_text(slack_sandbox, "#support-escalations")
    for ticket in (silent, noted):
        # Nudged first (the one message, edited), then breached.
        assert mentions(triage, ticket)
        assert mentions(escalations, ticket)
    assert "No first reply within the target: Within a minute" in escalations
    assert len(slack_sandbox.channel_messages("#support-triage")) == 1
    assert len(slack_sandbox.channel_messages("#support-escalations")) == 2
    # The answered report: never nudged, never breached, never tagged.
    assert not mentions(triage, answered)
    assert not mentions(escalations, answered)
    assert "response_overdue" not in zendesk_sandbox.tickets[answered]["tags"]
    # Nobody who reported heard of any of it.
    assert not slack_sandbox.calls("conversations.open")

    metrics = requests.get(f"{hub.url}/metrics", timeout=10).text
    assert 'feedback_hub_first_reply_breaches_total{group="-",target="Within a minute"} 2.0' in (
        metrics
    )
    assert 'feedback_hub_first_reply_seconds_count{group="-",target="Within a minute"} 1.0' in (
        metrics
    )
    assert "feedback_hub_open_timers 2.0" in metrics  # breached, still waiting for an answer
