"""Every signed route refuses forged and expired signatures and oversized bodies; a full run
with real-looking secrets leaves none of them in the processes' logs."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient

from integrations.sandbox.signing import slack_headers, zendesk_timestamp, zendesk_webhook_headers
from integrations.slack.testing import command_body, interaction_body

from ..conftest import SIGNING_SECRET
from .harness import PROBLEM_PREFIX, Cluster

WEBHOOK_SECRET = "zendesk-webhook-secret-0000"  # tests/conftest.py env
MOBILE_KEY = "mobile-key-ios-0000"
MiB = 1024 * 1024

COMMAND = command_body(
    team_id="T0SANDBOX",
    channel_id="C0GENERAL",
    user_id="U0REPORTER",
    command="/feedback",
    text="Export fails",
    response_url="https://hooks.slack.com/commands/T0/1/x",
    trigger_id="1.2.3",
)
INTERACTION = interaction_body({"type": "block_actions", "actions": []})
EVENT = json.dumps({"type": "url_verification", "challenge": "c"}).encode()
TICKET_EVENT = json.dumps(
    {"type": "zen:event-type:ticket.status_changed", "id": "e1", "subject": "zen:ticket:1"}
).encode()

SLACK_ROUTES = [
    ("/slack/commands", COMMAND, "application/x-www-form-urlencoded"),
    ("/slack/interactions", INTERACTION, "application/x-www-form-urlencoded"),
    ("/slack/events", EVENT, "application/json"),
]


@pytest.mark.parametrize(("path", "body", "content_type"), SLACK_ROUTES)
def test_slack_routes_refuse_a_forged_signature(
    client: FlaskClient, path: str, body: bytes, content_type: str
) -> None:
    headers = slack_headers("0" * 32, body, content_type=content_type)
    response = client.post(path, data=body, headers=headers)
    assert response.status_code == 401
    assert response.json == {
        "error": "unauthorized",
        "message": "the Slack signature does not match this request",
    }


@pytest.mark.parametrize(("path", "body", "content_type"), SLACK_ROUTES)
def test_slack_routes_refuse_an_expired_signature(
    client: FlaskClient, path: str, body: bytes, content_type: str
) -> None:
    # Correctly signed, six minutes ago: a replay.
    stale = str(int(time.time()) - 360)
    headers = slack_headers(SIGNING_SECRET, body, timestamp=stale, content_type=content_type)
    response = client.post(path, data=body, headers=headers)
    assert response.status_code == 401
    assert "more than 5 minutes" in response.get_json()["message"]


@pytest.mark.parametrize(("path", "body", "content_type"), SLACK_ROUTES)
def test_slack_routes_refuse_oversized_bodies(
    client: FlaskClient, path: str, body: bytes, content_type: str
) -> None:
    big = body + b"&pad=" + b"x" * (MiB + 1)
    headers = slack_headers(SIGNING_SECRET, big, content_type=content_type)
    response = client.post(path, data=big, headers=headers)
    assert response.status_code == 413
    assert response.get_json()["error"] == "payload_too_large"


def test_zendesk_webhook_refuses_a_forged_signature(client: FlaskClient) -> None:
    headers = zendesk_webhook_headers("not-the-secret", TICKET_EVENT, webhook_id="w", account_id=1)
    response = client.post("/zendesk/webhook", data=TICKET_EVENT, headers=headers)
    assert response.status_code == 401
    assert "does not match" in response.get_json()["message"]


def test_zendesk_webhook_refuses_an_expired_signature(client: FlaskClient) -> None:
    stale = zendesk_timestamp(time.time() - 600)
    headers = zendesk_webhook_headers(
        WEBHOOK_SECRET, TICKET_EVENT, webhook_id="w", account_id=1, timestamp=stale
    )
    response = client.post("/zendesk/webhook", data=TICKET_EVENT, headers=headers)
    assert response.status_code == 401
    assert "more than 300 seconds" in response.get_json()["message"]


def test_zendesk_webhook_refuses_an_oversized_body(client: FlaskClient) -> None:
    big = TICKET_EVENT[:-1] + b', "pad": "' + b"x" * (MiB + 1) + b'"}'
    headers = zendesk_webhook_headers(WEBHOOK_SECRET, big, webhook_id="w", account_id=1)
    response = client.post("/zendesk/webhook", data=big, headers=headers)
    assert response.status_code == 413


@pytest.mark.parametrize("authorization", ["Bearer not-a-key", "Basic bW9iaWxl", ""])
def test_bug_reports_refuse_a_wrong_key(client: FlaskClient, authorization: str) -> None:
    response = client.post(
        "/api/v1/bug-reports",
        json={"description": "Search never loads"},
        headers={"Authorization": authorization} if authorization else {},
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_bug_reports_refuse_oversized_bodies(client: FlaskClient) -> None:
    auth = {"Authorization": f"Bearer {MOBILE_KEY}"}
    report = {"description": "x" * (MiB + 1)}
    assert client.post("/api/v1/bug-reports", json=report, headers=auth).status_code == 413

    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="report"\r\n\r\n'
        '{"description": "Search never loads"}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="v.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    body = head + b"\0" * (26 * MiB) + f"\r\n--{boundary}--\r\n".encode()
    response = client.post(
        "/api/v1/bug-reports",
        data=body,
        headers={**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413


# ---------------------------------------------------------------- logs of a full run

REAL_LOOKING = {
    "SLACK_SIGNING_SECRET": "3f9c2b7e8a1d4c6b9e0f1a2b3c4d5e6f",
    "SLACK_BOT_TOKEN": "xoxb-2318540712403-5471230098761-Vb3k9QzXy7LmN2pR4sT6uW8a",
    "ZENDESK_API_TOKEN": "Qm7xT2vK9pL4wR8nZ3cF6hJ1yB5dG0sA2eU7iO9k",
    "ZENDESK_WEBHOOK_SECRET": "dGhpcyBpcyBub3QgYSByZWFsIHNlY3JldCBidXQgbG9va3MgbGlrZSBvbmU",
    "MOBILE_API_KEYS": (
        "ios-app:mk_live_8Hq2Zr5Tx9Wc3Vb7Nm1Lk4Jp,android-app:mk_live_6Fd0Gs8Ha2Jk4Ll7"
    ),
    "REDIS_PASSWORD": "r3d1s-Pa55w0rd-9c8b7a6f",
}


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_logs_of_a_full_run_contain_no_secret(tmp_path: Path) -> None:
    with Cluster(tmp_path, workers=2, secrets=REAL_LOOKING) as cluster:
        sent = cluster.send(6)
        assert all(s.acknowledged for s in sent), [s.status for s in sent]
        cluster.drain(timeout=60)

        # One dead letter: Zendesk refuses a ticket (422), the report goes to dead letters
        # with its reason, and an operator is alerted in Slack.
        cluster.faults(error_rate=1.0, error_status=422)
        refused = cluster.send_one("mobile", 99)
        assert refused.acknowledged
        cluster.wait_for(cluster.ticket_dead_letters, "the report became a dead letter")
        cluster.faults(error_rate=0.0)
        cluster.drain(timeout=60)

        # Forged and wrong credentials on the way in are logged as refusals.
        body, _ = cluster.slack_report("forged", "U0REPORTER")
        forged = slack_headers("f" * 32, body)
        requests.post(f"{cluster.url}/slack/commands", data=body, headers=forged, timeout=10)
        wrong = {"Authorization": "Bearer mk_live_wrong", "Idempotency-Key": str(uuid.uuid4())}
        requests.post(f"{cluster.url}/api/v1/bug-reports", json={}, headers=wrong, timeout=10)

        tickets = cluster.tickets()
        logs = cluster.hub_logs()

    # The six reports' tickets (problem tickets the hub opens for related ones aside).
    reports = [t for t in tickets if not str(t.get("external_id")).startswith(PROBLEM_PREFIX)]
    assert len(reports) == 6
    assert "job.dead_letter" in logs
    secrets = [
        *(v for k, v in REAL_LOOKING.items() if k != "MOBILE_API_KEYS"),
        *(pair.split(":", 1)[1] for pair in REAL_LOOKING["MOBILE_API_KEYS"].split(",")),
    ]
    leaked = [s[:8] + "..." for s in secrets if s in logs]
    assert not leaked, f"secrets in the logs: {leaked}"
