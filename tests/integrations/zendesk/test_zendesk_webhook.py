"""POST /zendesk/webhook: Zendesk's signature, one test per fixture, duplicates and refusals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue

from app import create_app
from integrations.queue import EVENTS
from integrations.sandbox.signing import zendesk_timestamp, zendesk_webhook_headers
from integrations.settings import Settings
from integrations.zendesk.payloads import ZendeskEvent, parse_webhook
from tests import REPO_ROOT

FIXTURES = REPO_ROOT / "integrations" / "zendesk" / "fixtures"


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def signed(
    secret: str, body: bytes, *, timestamp: str | None = None, invocation: str = "9000001"
) -> dict[str, str]:
    return zendesk_webhook_headers(
        secret,
        body,
        webhook_id="01GK8E6BKWMJZD2T8Y5AXJQMG5",
        account_id=22129848,
        timestamp=timestamp,
        invocation_id=invocation,
    )


@pytest.fixture
def secret(env: dict[str, str]) -> str:
    return env["ZENDESK_WEBHOOK_SECRET"]


def queued_events(redis: Redis) -> list[ZendeskEvent]:
    jobs = Queue(EVENTS, connection=redis).get_jobs()
    assert all(j.func_name == "workers.ticket_events.handle_ticket_event" for j in jobs)
    return [ZendeskEvent.from_job(j.args[0]) for j in jobs]


def post(client: FlaskClient, body: bytes, headers: dict[str, str]) -> Any:
    return client.post("/zendesk/webhook", data=body, headers=headers)


# ---------------------------------------------------------------- one test per fixture


def test_ticket_event__comment_added(client: FlaskClient, redis: Redis, secret: str) -> None:
    body = fixture("ticket_event__comment_added")
    response = post(client, body, signed(secret, body))
    assert response.status_code == 200
    assert response.json == {"ok": True, "queued": True, "ticket": 5158}
    [event] = queued_events(redis)
    assert event.kind == "comment_added"
    assert event.ticket.id == 5158
    assert event.ticket.status == "open" and event.ticket.priority == "high"
    assert event.ticket.requester_id == 8447388091111
    assert event.comment is not None
    assert event.comment.body == "We are investigating this issue and will update you shortly."
    assert event.comment.public and event.comment.author_is_staff
    assert event.comment.author_name == "Support Agent"


def test_ticket_event__status_changed(client: FlaskClient, redis: Redis, secret: str) -> None:
    body = fixture("ticket_event__status_changed")
    assert post(client, body, signed(secret, body)).status_code == 200
    [event] = queued_events(redis)
    assert (event.kind, event.previous, event.current) == ("status_changed", "open", "solved")
    assert event.ticket.status == "solved"


def test_ticket_event__tags_changed(client: FlaskClient, redis: Redis, secret: str) -> None:
    body = fixture("ticket_event__tags_changed")
    assert post(client, body, signed(secret, body)).status_code == 200
    [event] = queued_events(redis)
    assert event.kind == "tags_changed"
    assert event.tags_added == ("crash",) and event.tags_removed == ("needs_info",)
    assert event.ticket.tags == ("bug", "ios", "login", "crash")


def test_ticket_event__priority_changed(client: FlaskClient, redis: Redis, secret: str) -> None:
    body = fixture("ticket_event__priority_changed")
    assert post(client, body, signed(secret, body)).status_code == 200
    [event] = queued_events(redis)
    assert (event.kind, event.previous, event.current) == ("priority_changed", "normal", "urgent")


def test_ticket_event__agent_assignment_changed(
    client: FlaskClient, redis: Redis, secret: str
) -> None:
    body = fixture("ticket_event__agent_assignment_changed")
    assert post(client, body, signed(secret, body)).status_code == 200
    [event] = queued_events(redis)
    assert event.kind == "assignee_changed"
    assert (event.previous, event.current) == (None, "8447388090495")
    assert event.ticket.assignee_id == 8447388090495


def test_trigger__ticket_updated(client: FlaskClient, redis: Redis, secret: str) -> None:
    body = fixture("trigger__ticket_updated")
    assert post(client, body, signed(secret, body)).status_code == 200
    [event] = queued_events(redis)
    assert event.source == "trigger" and event.kind == "updated"
    assert event.ticket.status == "pending" and event.ticket.priority == "high"
    assert event.ticket.tags == ("bug", "ios", "login")
    assert event.ticket.group_name == "Mobile" and event.ticket.assignee_name == "Support Agent"
    assert event.comment is not None and event.comment.public
    assert event.comment.body == "Could you tell us which iOS version you are on?"


def test_user_event__created_is_acknowledged_and_ignored(
    client: FlaskClient, redis: Redis, secret: str
) -> None:
    body = fixture("user_event__created")
    response = post(client, body, signed(secret, body))
    assert response.status_code == 200
    assert response.json == {"ok": True, "ignored": "user.created"}
    assert queued_events(redis) == []


# ---------------------------------------------------------------- duplicates


def test_second_delivery_of_an_invocation_changes_nothing(
    client: FlaskClient, redis: Redis, secret: str
) -> None:
    body = fixture("ticket_event__comment_added")
    headers = signed(secret, body, invocation="777")
    assert post(client, body, headers).json["queued"] is True
    again = post(client, body, headers)
    assert again.status_code == 200 and again.json == {"ok": True, "duplicate": True}
    assert len(queued_events(redis)) == 1


def test_same_event_in_a_new_invocation_is_queued_once(
    client: FlaskClient, redis: Redis, secret: str
) -> None:
    body = fixture("ticket_event__status_changed")
    assert post(client, body, signed(secret, body, invocation="1")).json["queued"] is True
    second = post(client, body, signed(secret, body, invocation="2"))
    assert second.status_code == 200 and second.json["queued"] is False
    assert len(queued_events(redis)) == 1


# ---------------------------------------------------------------- refusals


def refused(response: Any, words: str) -> None:
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized"
    assert words in response.json["message"]


def test_wrong_secret_is_refused(client: FlaskClient, redis: Redis) -> None:
    body = fixture("ticket_event__comment_added")
    refused(post(client, body, signed("not-the-secret", body)), "signature does not match")
    assert queued_events(redis) == []


def test_hex_digest_instead_of_base64_is_refused(
    client: FlaskClient, redis: Redis, secret: str
) -> None:
    body = fixture("ticket_event__comment_added")
    headers = signed(secret, body)
    stamp = headers["X-Zendesk-Webhook-Signature-Timestamp"]
    mac = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256)
    headers["X-Zendesk-Webhook-Signature"] = mac.hexdigest()
    refused(post(client, body, headers), "signature does not match")
    # The same digest in base64 is what Zendesk sends, and passes.
    headers["X-Zendesk-Webhook-Signature"] = base64.b64encode(mac.digest()).decode()
    assert post(client, body, headers).status_code == 200


def test_stale_timestamp_is_refused(client: FlaskClient, redis: Redis, secret: str) -> None:
    body = fixture("ticket_event__comment_added")
    stale = zendesk_timestamp(time.time() - 301)
    refused(post(client, body, signed(secret, body, timestamp=stale)), "more than 300 seconds")
    future = zendesk_timestamp(time.time() + 301)
    refused(post(client, body, signed(secret, body, timestamp=future)), "more than 300 seconds")
    assert queued_events(redis) == []


@pytest.mark.parametrize(
    "header", ["X-Zendesk-Webhook-Signature", "X-Zendesk-Webhook-Signature-Timestamp"]
)
def test_missing_header_is_refused(
    client: FlaskClient, redis: Redis, secret: str, header: str
) -> None:
    body = fixture("ticket_event__comment_added")
    headers = signed(secret, body)
    del headers[header]
    refused(post(client, body, headers), "missing")


def test_changed_body_is_refused(client: FlaskClient, secret: str) -> None:
    body = fixture("ticket_event__comment_added")
    headers = signed(secret, body)
    refused(post(client, body.replace(b"shortly", b"never"), headers), "does not match")


def test_window_is_configurable(env: dict[str, str], redis: Redis, secret: str) -> None:
    app = create_app(Settings.from_env("web", {**env, "ZENDESK_WEBHOOK_WINDOW_SECONDS": "30"}))
    body = fixture("ticket_event__comment_added")
    minute_old = zendesk_timestamp(time.time() - 60)
    response = post(app.test_client(), body, signed(secret, body, timestamp=minute_old))
    refused(response, "more than 30 seconds")


def test_without_a_secret_the_hub_says_so(env: dict[str, str], redis: Redis) -> None:
    settings = Settings.from_env(
        "web", {k: v for k, v in env.items() if k != "ZENDESK_WEBHOOK_SECRET"}
    )
    app: Flask = create_app(settings)
    body = fixture("ticket_event__comment_added")
    response = post(app.test_client(), body, signed("anything", body))
    assert response.status_code == 503
    assert response.json["error"] == "not_configured"
    assert "ZENDESK_WEBHOOK_SECRET is not set" in response.json["message"]


def test_signed_garbage_is_a_bad_request(client: FlaskClient, secret: str) -> None:
    body = json.dumps({"hello": "world"}).encode()
    response = post(client, body, signed(secret, body))
    assert response.status_code == 400
    assert "neither a Zendesk event" in response.json["message"]


def test_sandbox_payloads_parse_like_the_fixtures() -> None:
    # The sandbox builds its events from the same schema; the parser reads both alike.
    for path in sorted(FIXTURES.glob("ticket_event__*.json")):
        event = parse_webhook(path.read_bytes())
        assert isinstance(event, ZendeskEvent), path.name
        assert event.ticket.id == 5158


def test_a_webhook_with_fields_zendesk_added_later_is_still_taken(
    client: FlaskClient, redis: Redis, secret: str
) -> None:
    # Zendesk adds fields to its event payloads over time; the hub must not refuse them.
    data = json.loads(fixture("ticket_event__comment_added"))
    data["zendesk_event_version"] = "2099-01-01"
    data["detail"]["sentiment"] = {"score": 0.2}
    data["event"]["comment"]["ai_summary"] = "a newer field"
    body = json.dumps(data).encode()
    response = post(client, body, signed(secret, body))
    assert response.status_code == 200
    assert response.json == {"ok": True, "queued": True, "ticket": 5158}
    [event] = queued_events(redis)
    assert event.comment is not None
    assert event.comment.body == "We are investigating this issue and will update you shortly."


@pytest.mark.parametrize(
    ("is_public", "public"),
    [(True, True), ("true", True), (False, False), ("false", False), ("", False), (None, False)],
)
def test_only_a_comment_zendesk_says_is_public_is_public(
    is_public: object, public: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # An internal note must never reach the reporter: "false" as a string, an empty
    # placeholder or no flag at all are internal, and the unreadable ones are logged.
    data = json.loads(fixture("ticket_event__comment_added"))
    if is_public is None:
        del data["event"]["comment"]["is_public"]
    else:
        data["event"]["comment"]["is_public"] = is_public
    with caplog.at_level(logging.WARNING, logger="integrations.zendesk.payloads"):
        event = parse_webhook(json.dumps(data).encode())
    assert isinstance(event, ZendeskEvent) and event.comment is not None
    assert event.comment.public is public
    unknown = [r for r in caplog.records if r.getMessage() == "zendesk.comment.visibility_unknown"]
    assert len(unknown) == (1 if is_public in ("", None) else 0)
