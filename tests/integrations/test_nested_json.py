"""A signed body that nests too deeply is a 400 naming what is wrong, on every JSON route."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from redis import Redis

from integrations.sandbox.signing import zendesk_webhook_headers
from integrations.slack.testing import signed_headers
from tests.conftest import SIGNING_SECRET

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ("/slack/interactions", "not a Slack interaction: payload nests too deeply to be read"),
        ("/slack/events", "not a Slack event: the body nests too deeply to be read"),
        ("/zendesk/webhook", "the webhook body nests too deeply to be read"),
    ],
)
def test_deeply_nested_json_is_a_400_not_a_500(
    client: FlaskClient, redis: Redis, env: dict[str, str], route: str, message: str
) -> None:
    if route == "/slack/interactions":
        body = f"payload={quote(DEEP)}".encode()
        headers = signed_headers(SIGNING_SECRET, body)
    elif route == "/slack/events":
        body = DEEP.encode()
        headers = {**signed_headers(SIGNING_SECRET, body), "Content-Type": "application/json"}
    else:
        body = DEEP.encode()
        secret = env["ZENDESK_WEBHOOK_SECRET"]
        headers = zendesk_webhook_headers(secret, body, webhook_id="01GK8E6BKW", account_id=1)
    response = client.post(route, data=body, headers=headers)
    assert response.status_code == 400
    assert response.json is not None and response.json["message"] == message
    assert redis.dbsize() == 0
