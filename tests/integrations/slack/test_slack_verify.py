"""Requests Slack did not sign (or signed too long ago) get 401 JSON, and nothing is queued."""

from __future__ import annotations

import time

import pytest
from flask.testing import FlaskClient
from redis import Redis

from integrations.slack.testing import (
    command_body,
    fixture_body,
    fixture_payload,
    interaction_body,
    signed_headers,
)
from tests.conftest import SIGNING_SECRET

ROUTES = ("/slack/commands", "/slack/interactions")


def body_for(route: str) -> bytes:
    if route == "/slack/commands":
        return fixture_body("slash_command__with_text.txt")
    return interaction_body(fixture_payload("message_action__send_to_support.json"))


def assert_unauthorized(response: object, redis: Redis, message: str) -> None:
    assert response.status_code == 401  # type: ignore[attr-defined]
    assert response.json == {"error": "unauthorized", "message": message}  # type: ignore[attr-defined]
    assert redis.dbsize() == 0  # nothing queued, nothing recorded


@pytest.mark.parametrize("route", ROUTES)
def test_wrong_secret(client: FlaskClient, redis: Redis, route: str) -> None:
    body = body_for(route)
    headers = signed_headers("not-the-apps-signing-secret", body)
    assert_unauthorized(
        client.post(route, data=body, headers=headers),
        redis,
        "the Slack signature does not match this request",
    )


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("missing", ["X-Slack-Signature", "X-Slack-Request-Timestamp"])
def test_missing_header(client: FlaskClient, redis: Redis, route: str, missing: str) -> None:
    body = body_for(route)
    headers = signed_headers(SIGNING_SECRET, body)
    del headers[missing]
    assert_unauthorized(
        client.post(route, data=body, headers=headers),
        redis,
        "missing X-Slack-Signature or X-Slack-Request-Timestamp",
    )


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("offset", [-301, -3600, 301])
def test_stale_or_future_timestamp(
    client: FlaskClient, redis: Redis, route: str, offset: int
) -> None:
    # Correctly signed, but outside the five-minute window: a replay.
    body = body_for(route)
    headers = signed_headers(SIGNING_SECRET, body, timestamp=int(time.time()) + offset)
    assert_unauthorized(
        client.post(route, data=body, headers=headers),
        redis,
        "the request timestamp is more than 5 minutes from now",
    )


def test_timestamp_at_the_edge_of_the_window_is_accepted(client: FlaskClient, redis: Redis) -> None:
    body = body_for("/slack/commands")
    headers = signed_headers(SIGNING_SECRET, body, timestamp=int(time.time()) - 290)
    assert client.post("/slack/commands", data=body, headers=headers).status_code == 200


def test_tampered_body(client: FlaskClient, redis: Redis) -> None:
    body = body_for("/slack/commands")
    headers = signed_headers(SIGNING_SECRET, body)
    forged = body.replace(b"U2147483697", b"U0SOMEBODY")
    assert_unauthorized(
        client.post("/slack/commands", data=forged, headers=headers),
        redis,
        "the Slack signature does not match this request",
    )


def test_timestamp_that_is_not_a_number(client: FlaskClient, redis: Redis) -> None:
    body = body_for("/slack/commands")
    headers = {**signed_headers(SIGNING_SECRET, body), "X-Slack-Request-Timestamp": "yesterday"}
    assert_unauthorized(
        client.post("/slack/commands", data=body, headers=headers),
        redis,
        "X-Slack-Request-Timestamp is not a Unix time",
    )


def test_body_that_is_not_utf8(client: FlaskClient, redis: Redis) -> None:
    body = b"text=\xff\xfe"
    headers = {
        "X-Slack-Request-Timestamp": str(int(time.time())),
        "X-Slack-Signature": "v0=" + "0" * 64,
    }
    assert_unauthorized(
        client.post("/slack/commands", data=body, headers=headers),
        redis,
        "the Slack signature does not match this request",
    )


# ---------------------------------------------------------------- signed but unparseable: 400


@pytest.mark.parametrize(
    ("route", "body", "message"),
    [
        (
            "/slack/commands",
            command_body(text="no command, team or user"),
            "not a Slack slash command: command: field required",
        ),
        (
            "/slack/interactions",
            b"payload=%7Bnot+json",
            "not a Slack interaction: payload is not JSON",
        ),
        (
            "/slack/interactions",
            command_body(command="/feedback"),
            "not a Slack interaction: the form has no payload field",
        ),
        (
            "/slack/interactions",
            interaction_body({"type": "message_action", "callback_id": "send_to_support"}),
            "not a Slack message_action payload: team_id: input should be a valid string",
        ),
    ],
)
def test_signed_but_unparseable(
    client: FlaskClient, redis: Redis, route: str, body: bytes, message: str
) -> None:
    response = client.post(route, data=body, headers=signed_headers(SIGNING_SECRET, body))
    assert response.status_code == 400
    assert response.json == {"error": "bad_request", "message": message}
    assert redis.dbsize() == 0


def test_ssl_check_is_acknowledged_and_ignored(client: FlaskClient, redis: Redis) -> None:
    response = client.post("/slack/commands", data=b"ssl_check=1&token=gIkuvaNzQIHg97ATvDxqgjtO")
    assert response.status_code == 200
    assert response.data == b""
    assert redis.dbsize() == 0


@pytest.mark.parametrize("route", [*ROUTES, "/slack/events"])
@pytest.mark.parametrize("timestamp", ["9" * 400, "9" * 5000, "1e10", "-", " 12"])
def test_a_malformed_timestamp_is_a_401_not_a_500(
    client: FlaskClient, redis: Redis, route: str, timestamp: str
) -> None:
    # A 400-digit timestamp once raised OverflowError before the signature was checked.
    body = body_for(route) if route != "/slack/events" else b'{"type": "url_verification"}'
    headers = {**signed_headers(SIGNING_SECRET, body), "X-Slack-Request-Timestamp": timestamp}
    assert_unauthorized(
        client.post(route, data=body, headers=headers),
        redis,
        "X-Slack-Request-Timestamp is not a Unix time",
    )
