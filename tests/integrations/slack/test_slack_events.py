"""POST /slack/events: signed, url_verification echoed, thread replies queued once per event_id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue

from integrations.queue import EVENTS
from integrations.sandbox.signing import slack_headers
from integrations.slack import messages
from integrations.slack.loop import thread_key
from integrations.slack.payloads import MessagePosted
from tests import REPO_ROOT
from tests.conftest import SIGNING_SECRET

FIXTURES = REPO_ROOT / "integrations" / "slack" / "fixtures" / "events"


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def post(client: FlaskClient, body: bytes, **headers: str) -> Any:
    signed = slack_headers(SIGNING_SECRET, body, content_type="application/json")
    return client.post("/slack/events", data=body, headers={**signed, **headers})


def queued(redis: Redis) -> list[tuple[MessagePosted, int]]:
    jobs = Queue(EVENTS, connection=redis).get_jobs()
    assert all(j.func_name == "workers.ticket_events.relay_reporter_reply" for j in jobs)
    return [(MessagePosted.from_job(j.args[0]), j.args[1]) for j in jobs]


def test_url_verification(client: FlaskClient) -> None:
    response = post(client, fixture("url_verification"))
    assert response.status_code == 200
    assert response.json == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_event_callback__message_in_thread(client: FlaskClient, redis: Redis) -> None:
    redis.set(thread_key("D0REPORTER", "1700000000.000100"), 17)
    response = post(client, fixture("event_callback__message_in_thread"))
    assert response.status_code == 200 and response.json == {"ok": True}
    [(message, ticket_id)] = queued(redis)
    assert ticket_id == 17
    assert message.user == "U0REPORTER"
    assert message.text == "It happens on iOS 17.2, version 5.2.1 of the app."


def test_event_callback__message_in_thread_retried_is_queued_once(
    client: FlaskClient, redis: Redis
) -> None:
    redis.set(thread_key("D0REPORTER", "1700000000.000100"), 17)
    body = fixture("event_callback__message_in_thread")
    assert post(client, body).status_code == 200
    # Slack's retry of the same event (it thought the first answer was too slow).
    retried = post(client, body, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "timeout"})
    assert retried.status_code == 200
    assert len(queued(redis)) == 1


def test_event_callback__message_in_thread_the_hub_never_posted_in(
    client: FlaskClient, redis: Redis
) -> None:
    assert post(client, fixture("event_callback__message_in_thread")).status_code == 200
    assert queued(redis) == []


def test_event_callback__bot_message(client: FlaskClient, redis: Redis) -> None:
    redis.set(thread_key("D0REPORTER", "1700000000.000100"), 17)
    assert post(client, fixture("event_callback__bot_message")).status_code == 200
    assert queued(redis) == []


def test_event_callback__message_top_level(client: FlaskClient, redis: Redis) -> None:
    assert post(client, fixture("event_callback__message_top_level")).status_code == 200
    assert queued(redis) == []


def test_unsigned_or_forged_events_are_refused(client: FlaskClient, redis: Redis) -> None:
    redis.set(thread_key("D0REPORTER", "1700000000.000100"), 17)
    body = fixture("event_callback__message_in_thread")
    unsigned: Any = client.post("/slack/events", data=body, content_type="application/json")
    assert unsigned.status_code == 401 and unsigned.json["error"] == "unauthorized"
    forged: Any = client.post(
        "/slack/events", data=body, headers=slack_headers("not-the-secret", body)
    )
    assert forged.status_code == 401
    assert "signature does not match" in forged.json["message"]
    assert queued(redis) == []


def test_signed_but_not_json_is_a_bad_request(client: FlaskClient) -> None:
    response = post(client, b"payload=%7B%7D")
    assert response.status_code == 400
    assert response.json["message"] == "not a Slack event: the body is not JSON"


def test_other_events_are_acknowledged(client: FlaskClient, redis: Redis) -> None:
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": "T0SANDBOX",
            "event_id": "Ev1",
            "event": {"type": "app_home_opened", "user": "U0REPORTER"},
        }
    ).encode()
    assert post(client, body).json == {"ok": True}
    assert queued(redis) == []


def test_the_app_manifest_points_at_the_hubs_routes(app: Flask, repo_root: Path) -> None:
    manifest = yaml.safe_load((repo_root / "slack-app-manifest.yml").read_text())
    client = app.test_client()
    settings = manifest["settings"]
    urls = [
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
        *(c["url"] for c in manifest["features"]["slash_commands"]),
    ]
    for url in urls:
        assert url.startswith("https://hub.example.com/")
        # Each is a route of the hub's, and a signed one: unsigned, it is refused, not missing.
        response = client.post(url.removeprefix("https://hub.example.com"))
        assert response.status_code == 401, url
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == messages.FEEDBACK_COMMAND
    [shortcut] = manifest["features"]["shortcuts"]
    assert shortcut["callback_id"] == messages.SHORTCUT_CALLBACK_ID
    assert set(settings["event_subscriptions"]["bot_events"]) == {
        "message.channels",
        "message.groups",
        "message.im",
        "reaction_added",
    }
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "im:history", "channels:history", "im:write"} <= scopes
    # The ticket emoji (reactions, whole threads in private channels too) and the wall.
    assert {"reactions:read", "groups:history", "channels:read", "groups:read"} <= scopes
    # Each scope's reason is written down for whoever installs the app.
    reasons = (repo_root / "docs" / "slack-app.md").read_text()
    assert all(f"`{scope}`" in reasons for scope in scopes)


def test_event_callback__thread_broadcast(client: FlaskClient, redis: Redis) -> None:
    # A reply sent with "Also send to #channel" is the reporter's reply too.
    redis.set(thread_key("C0SUPPORT", "1700000000.000100"), 17)
    assert post(client, fixture("event_callback__thread_broadcast")).status_code == 200
    [(message, ticket_id)] = queued(redis)
    assert ticket_id == 17
    assert message.text == "Still broken after the update, sharing with the channel too."


def test_a_join_in_the_thread_is_not_a_reply(client: FlaskClient, redis: Redis) -> None:
    redis.set(thread_key("D0REPORTER", "1700000000.000100"), 17)
    event = json.loads(fixture("event_callback__message_in_thread"))
    event["event"].update(subtype="channel_join", text="<@U0REPORTER> has joined the channel")
    assert post(client, json.dumps(event).encode()).status_code == 200
    assert queued(redis) == []


def test_an_event_with_fields_slack_added_later_is_still_taken(
    client: FlaskClient, redis: Redis
) -> None:
    # Slack adds fields to its payloads over time; the hub must not refuse them.
    data = json.loads(fixture("event_callback__message_in_thread"))
    data["is_ext_shared_channel"] = False
    data["context_enterprise_id"] = None
    data["event"]["client_msg_id_v2"] = {"opaque": [1, 2, 3]}
    data["event"]["assistant_thread"] = {"action_token": "x"}
    redis.set(thread_key("D0REPORTER", "1700000000.000100"), 17)
    response = post(client, json.dumps(data).encode())
    assert response.status_code == 200 and response.json == {"ok": True}
    [(message, ticket_id)] = queued(redis)
    assert (ticket_id, message.text) == (17, "It happens on iOS 17.2, version 5.2.1 of the app.")
