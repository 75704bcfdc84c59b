"""The ticket emoji at POST /slack/events, and Slack's documented thread and channel payloads."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient
from redis import Redis
from rq import Queue

from app import create_app
from integrations.queue import TICKETS
from integrations.sandbox.signing import slack_headers
from integrations.settings import Settings
from integrations.slack.api import shared_verdict
from integrations.slack.payloads import ReactionAdded, parse_event, parse_thread_page
from integrations.slack.threads import ThreadRead, transcript
from tests import REPO_ROOT
from tests.conftest import SIGNING_SECRET

FIXTURES = REPO_ROOT / "integrations" / "slack" / "fixtures"


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def post(client: FlaskClient, body: bytes) -> Any:
    signed = slack_headers(SIGNING_SECRET, body, content_type="application/json")
    return client.post("/slack/events", data=body, headers=signed)


def queued(redis: Redis) -> list[ReactionAdded]:
    jobs = Queue(TICKETS, connection=redis).get_jobs()
    assert all(j.func_name == "workers.reactions.file_reaction" for j in jobs)
    return [ReactionAdded.from_job(j.args[0]) for j in jobs]


def reacted(body: bytes, **event: Any) -> bytes:
    data = json.loads(body)
    data["event"].update(event)
    return json.dumps(data).encode()


# ---------------------------------------------------------------- reaction_added


def test_event_callback__reaction_added(client: FlaskClient, redis: Redis) -> None:
    # Slack's documented example reacts with :thumbsup:, which files nothing.
    response = post(client, fixture("events/event_callback__reaction_added"))
    assert response.status_code == 200 and response.json == {"ok": True}
    assert queued(redis) == []


def test_event_callback__reaction_added__ticket(client: FlaskClient, redis: Redis) -> None:
    response = post(client, fixture("events/event_callback__reaction_added__ticket"))
    assert response.status_code == 200 and response.json == {"ok": True}
    [event] = queued(redis)
    assert (event.item.channel, event.item.ts) == ("C123ABC456", "1360782400.498405")
    assert event.user == "U123ABC456" and event.item_user == "U222222222"


def test_a_second_reaction_by_anyone_queues_nothing_new(client: FlaskClient, redis: Redis) -> None:
    body = fixture("events/event_callback__reaction_added__ticket")
    post(client, body)
    again = reacted(body, user="U0SOMEONE", event_ts="1360782900.000001")
    again = again.replace(b"Ev123TICKET", b"Ev456TICKET")
    assert post(client, again).status_code == 200
    assert len(queued(redis)) == 1


def test_a_skin_tone_of_the_emoji_files_too(client: FlaskClient, redis: Redis) -> None:
    body = reacted(fixture("events/event_callback__reaction_added"), reaction="ticket::skin-tone-2")
    post(client, body)
    assert len(queued(redis)) == 1


def test_the_configured_emoji_and_channels_decide(env: dict[str, str], redis: Redis) -> None:
    settings = Settings.from_env(
        "web", {**env, "SLACK_TICKET_EMOJI": ":bug:", "SLACK_TICKET_CHANNELS": "C0SUPPORT"}
    )
    client = create_app(settings).test_client()
    body = fixture("events/event_callback__reaction_added")
    post(client, reacted(body, reaction="ticket"))  # not the configured emoji
    post(client, reacted(body, reaction="bug"))  # the emoji, not an allowed channel
    assert queued(redis) == []
    item = {"type": "message", "channel": "C0SUPPORT", "ts": "1360782400.498405"}
    post(client, reacted(body, reaction="bug", item=item))
    [event] = queued(redis)
    assert event.item.channel == "C0SUPPORT"


def test_a_reaction_without_its_item_is_refused_with_the_reason(client: FlaskClient) -> None:
    data = json.loads(fixture("events/event_callback__reaction_added__ticket"))
    del data["event"]["item"]
    response = post(client, json.dumps(data).encode())
    assert response.status_code == 400
    assert "item" in response.json["message"]


# ---------------------------------------------------------------- threads and channels


def test_conversations_replies__thread() -> None:
    page = parse_thread_page(json.loads(fixture("threads/conversations_replies__thread")))
    assert [m.text for m in page.messages] == [
        "island",
        "one island",
        "two island",
        "three for the land",
    ]
    assert page.messages[0].reply_count == 3
    assert page.next_cursor == "bmV4dF90czoxNDg0Njc4MjkwNTE3MDkx"
    text, left = transcript(ThreadRead(list(page.messages), total=4), {"U061F7AUR": "Ana"}, None)
    assert text.startswith("Ana, 2016-12-28 21:22 UTC:\nisland")
    assert "three for the land" in text and left == 0


def test_conversations_replies__thread_cut_at_the_stated_size() -> None:
    page = parse_thread_page(json.loads(fixture("threads/conversations_replies__thread")))
    thread = ThreadRead(list(page.messages), total=40)
    text, left = transcript(thread, {}, "https://acme.slack.com/archives/C1/p1", limit=90)
    assert "one island" in text and "two island" not in text
    assert text.endswith("(38 more messages in Slack: https://acme.slack.com/archives/C1/p1)")
    assert left == 38


def test_conversations_replies__slack_connect_file() -> None:
    page = parse_thread_page(
        json.loads(fixture("threads/conversations_replies__slack_connect_file"))
    )
    first = page.messages[0]
    assert first.author_team == "T0ACME"
    [file] = first.files
    assert file.label == "export-error.png"
    assert file.download_url == (
        "https://files.slack.com/files-pri/T0ACME-F0S43PZDF/download/export-error.png"
    )


def test_conversations_info__shared_channel() -> None:
    info = json.loads(fixture("threads/conversations_info__shared_channel"))["channel"]
    assert shared_verdict(info) == "is shared with another organization (Slack Connect)"


def test_conversations_info__internal_channel() -> None:
    info = json.loads(fixture("threads/conversations_info__internal_channel"))["channel"]
    assert shared_verdict(info) == "internal"


def test_a_parsed_reaction_is_plain_job_data() -> None:
    event = parse_event(fixture("events/event_callback__reaction_added__ticket"))
    assert isinstance(event, ReactionAdded)
    assert ReactionAdded.from_job(json.loads(json.dumps(event.to_job()))) == event
