"""End to end, the ticket emoji: the Procfile's gunicorn and worker, real Redis, both sandboxes.

A thread of three messages with a file, reacted to twice, becomes one ticket with the three
messages and the file; a later reply becomes a comment; an agent's reply comes back into the
thread, an internal note does not; an engineering card aimed at a shared channel is refused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from redis import Redis

from integrations.sandbox import SlackSandbox, ZendeskSandbox
from integrations.sandbox.signing import slack_headers
from integrations.sandbox.slack import TEAM_ID
from tests.conftest import SIGNING_SECRET
from tests.running_hub import RunningHub, hub_with_webhook

pytestmark = pytest.mark.e2e

RULES = """\
groups: [Support]
intake:
  - name: Threads filed from Slack are shown to the customer's account team
    when: {all: [{tags: {includes: [slack_reaction]}}]}
    then:
      - notify: {channel: "#acme-support", text: "New thread ticket #{ticket_id}"}
"""


@pytest.fixture
def hub(
    sandbox_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    redis: Redis,
    repo_root: Path,
    tmp_path: Path,
) -> Iterator[RunningHub]:
    """`zendesk setup` against the sandbox, then the Procfile's web and worker."""
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    env = {**sandbox_env, "RULES_PATH": str(rules), "SLACK_OPS_CHANNEL": "#hub-ops"}
    with hub_with_webhook(env, redis, repo_root, tmp_path) as hub:
        yield hub


def send_event(hub: RunningHub, event_id: str, event: dict[str, Any]) -> None:
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": TEAM_ID,
            "api_app_id": "A0SANDBOX",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": event,
        }
    ).encode()
    headers = slack_headers(SIGNING_SECRET, body, content_type="application/json")
    answer = requests.post(f"{hub.url}/slack/events", data=body, headers=headers, timeout=15)
    assert answer.status_code == 200, answer.text


def test_a_reacted_thread_becomes_one_ticket_and_stays_in_sync(
    hub: RunningHub, zendesk_sandbox: ZendeskSandbox, slack_sandbox: SlackSandbox
) -> None:
    shared = slack_sandbox.share_channel("#acme-support", "T0ACME")
    log = slack_sandbox.add_file("export.log", b"TypeError: x is undefined\n", "text/plain")
    parent = slack_sandbox.say("#support", "U0REPORTER", "Export hangs at 99%", files=[log])
    slack_sandbox.say("#support", "U0SUPPORT", "Which browser?", thread_ts=parent.ts)
    slack_sandbox.say("#support", "U0REPORTER", "Firefox 120, log attached", thread_ts=parent.ts)
    channel = parent.channel

    for n, user in enumerate(("U0SUPPORT", "U0ENGINEER")):
        send_event(
            hub,
            f"Ev0REACT{n}",
            {
                "type": "reaction_added",
                "user": user,
                "reaction": "ticket",
                "item_user": "U0REPORTER",
                "item": {"type": "message", "channel": channel, "ts": parent.ts},
                "event_ts": f"{time.time():.6f}",
            },
        )

    def announced() -> list[Any]:
        return [m for m in slack_sandbox.channel_messages(channel) if m.bot]

    [filed] = hub.eventually(announced, "the thread was told its ticket number")
    hub.settled()
    [ticket] = zendesk_sandbox.tickets.values()
    ticket_id = ticket["id"]
    assert filed.text.startswith(f"Ticket #{ticket_id} filed")
    first = zendesk_sandbox.comments[ticket_id][0]
    for text in ("Export hangs at 99%", "Which browser?", "Firefox 120, log attached"):
        assert text in first["body"]
    assert [a["file_name"] for a in first["attachments"]] == ["export.log"]

    # A later reply in the thread becomes the requester's comment.
    later = slack_sandbox.say("#support", "U0REPORTER", "It works in Chrome", thread_ts=parent.ts)
    send_event(
        hub,
        "Ev0LATER",
        {
            "type": "message",
            "channel": channel,
            "channel_type": "channel",
            "user": "U0REPORTER",
            "text": later.text,
            "ts": later.ts,
            "thread_ts": parent.ts,
        },
    )
    comment = hub.eventually(
        lambda: next(
            (c for c in zendesk_sandbox.comments[ticket_id] if "It works in Chrome" in c["body"]),
            None,
        ),
        "the later reply became a comment",
    )
    assert comment["public"] is True
    # Someone else's reply is kept for the agents as an internal note.
    other = slack_sandbox.say("#support", "U0SUPPORT", "Reproduced here", thread_ts=parent.ts)
    send_event(
        hub,
        "Ev0OTHER",
        {
            "type": "message",
            "channel": channel,
            "channel_type": "channel",
            "user": "U0SUPPORT",
            "text": other.text,
            "ts": other.ts,
            "thread_ts": parent.ts,
        },
    )
    note = hub.eventually(
        lambda: next(
            (c for c in zendesk_sandbox.comments[ticket_id] if "Reproduced here" in c["body"]),
            None,
        ),
        "the other person's reply became a note",
    )
    assert note["public"] is False

    # An agent's public reply comes back into the thread; an internal note does not.
    zendesk_sandbox.agent_note(ticket_id, "Internal: looks like the CSV worker")
    zendesk_sandbox.agent_reply(ticket_id, "We found it, a fix ships today")

    def relayed() -> list[Any]:
        return [m for m in announced() if "We found it, a fix ships today" in m.text]

    hub.eventually(relayed, "the agent's reply reached the thread")
    hub.settled()
    texts = [m.text for m in slack_sandbox.channel_messages(channel)]
    assert not any("looks like the CSV worker" in t for t in texts)
    assert len(announced()) == 2  # "Ticket #N filed" and the agent's reply: no echoes

    # The rule's engineering card for the shared channel was refused, and operators told.
    assert slack_sandbox.channel_messages(shared) == []
    alerts = [m.text for m in slack_sandbox.channel_messages("#hub-ops")]
    assert any("the wall held" in a and "#acme-support" in a for a in alerts), alerts
    assert len(zendesk_sandbox.tickets) == 1
