"""`feedback-hub simulate` sends requests a hub can verify with the real algorithms."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from click.testing import CliRunner
from flask import Flask, request
from slack_sdk.signature import SignatureVerifier
from werkzeug.serving import make_server

from app import cli
from integrations.sandbox import SlackSandbox, ZendeskSandbox
from tests import REPO_ROOT

Received = list[tuple[str, dict[str, str], bytes]]


@pytest.fixture
def hub() -> Iterator[tuple[str, Received]]:
    """A stand-in hub that records what it is sent."""
    app = Flask("hub")
    received: Received = []

    @app.post("/<path:path>")
    def record(path: str) -> dict[str, Any]:
        received.append((request.path, dict(request.headers), request.get_data()))
        return {"ok": True}

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05))
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()
    thread.join()


@pytest.fixture
def state(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    hub: tuple[str, Received],
    slack_sandbox: SlackSandbox,
    zendesk_sandbox: ZendeskSandbox,
) -> dict[str, Any]:
    """The state file `feedback-hub dev` would write."""
    data = {
        "hub_url": hub[0],
        "slack_signing_secret": "slack-secret-1",
        "zendesk_webhook_secret": "zendesk-secret-1",
        "mobile_app_id": "dev-app",
        "mobile_api_key": "dev-key-1",
        "slack_sandbox_url": slack_sandbox.url,
        "zendesk_sandbox_url": zendesk_sandbox.url,
        "zendesk_account_id": zendesk_sandbox.account_id,
    }
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(data))
    monkeypatch.setenv("FEEDBACK_HUB_DEV_STATE", str(path))
    return data


def simulate(*args: str) -> str:
    result = CliRunner().invoke(cli, ["simulate", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_feedback_is_a_signed_slash_command_answering_to_the_slack_sandbox(
    state: dict[str, Any], hub: tuple[str, Received]
) -> None:
    output = simulate("feedback", "the export button does nothing")
    assert "/slack/commands -> 200" in output
    [(path, headers, body)] = hub[1]
    assert path == "/slack/commands"
    assert SignatureVerifier("slack-secret-1").is_valid_request(body, headers)
    assert not SignatureVerifier("another-secret").is_valid_request(body, headers)
    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    assert form["command"] == "/feedback"
    assert form["text"] == "the export button does nothing"
    assert form["response_url"].startswith(f"{state['slack_sandbox_url']}/response/")


def test_bug_report_carries_the_app_key(
    state: dict[str, Any], hub: tuple[str, Received], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"description": "Crash on launch"}))
    screenshot = tmp_path / "screen.png"
    screenshot.write_bytes(b"\x89PNG fake")

    simulate("bug-report", str(report))
    simulate("bug-report", str(report), "--attach", str(screenshot))
    (_, json_headers, json_body), (_, multi_headers, multi_body) = hub[1]
    assert json_headers["Authorization"] == "Bearer dev-key-1"
    assert json.loads(json_body) == {"description": "Crash on launch"}
    assert multi_headers["Content-Type"].startswith("multipart/form-data")
    assert b'name="report"' in multi_body
    assert b'filename="screen.png"' in multi_body


def test_bug_report_with_a_crash_stack_sends_it_as_the_reports_crash(
    state: dict[str, Any], hub: tuple[str, Received]
) -> None:
    stack = REPO_ROOT / "integrations" / "mobile" / "fixtures" / "crash__ios_swift_build_740.txt"
    simulate("bug-report", "--crash", str(stack))
    [(_, _, body)] = hub[1]
    sent = json.loads(body)
    assert sent["crash"] == {"stack": stack.read_text()}
    assert sent["description"] == "The checkout button does nothing after I add a coupon."
    # A stack given as the report is not a JSON traceback: the command says what to do.
    wrong = CliRunner().invoke(cli, ["simulate", "bug-report", str(stack)])
    assert wrong.exit_code == 1
    assert "is not a JSON report" in wrong.output and "--crash FILE" in wrong.output


def test_a_refused_simulation_is_a_failed_command(
    state: dict[str, Any], zendesk_sandbox: ZendeskSandbox
) -> None:
    result = CliRunner().invoke(cli, ["simulate", "reply", "hello", "--ticket", "999"])
    assert "-> 404" in result.output
    assert result.exit_code == 1
    # The installed command too (its entry point runs click outside standalone mode).
    binary = Path(sys.executable).parent / "feedback-hub"
    done = subprocess.run(
        [str(binary), "simulate", "reply", "hello", "--ticket", "999"],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )  # fmt: skip
    assert "-> 404" in done.stdout and done.returncode == 1


def test_zendesk_event_is_signed_as_zendesk_signs_with_the_tickets_fields(
    state: dict[str, Any], hub: tuple[str, Received], zendesk_sandbox: ZendeskSandbox
) -> None:
    ticket, _ = zendesk_sandbox.create_ticket(
        {"subject": "Export", "comment": {"body": "broken"}, "tags": ["bug"]}
    )
    simulate("zendesk-event", "status_changed", "--ticket", str(ticket["id"]))
    [(path, headers, body)] = hub[1]
    assert path == "/zendesk/webhook"
    timestamp = headers["X-Zendesk-Webhook-Signature-Timestamp"]
    expected = hmac.new(b"zendesk-secret-1", timestamp.encode() + body, hashlib.sha256).digest()
    assert headers["X-Zendesk-Webhook-Signature"] == base64.b64encode(expected).decode()
    payload = json.loads(body)
    assert payload["type"] == "zen:event-type:ticket.status_changed"
    assert payload["detail"]["tags"] == ["bug"]
    assert payload["event"] == {"current": "SOLVED", "previous": "OPEN"}


def test_reply_acts_as_an_agent_in_the_sandbox(
    state: dict[str, Any], hub: tuple[str, Received], zendesk_sandbox: ZendeskSandbox
) -> None:
    ticket, _ = zendesk_sandbox.create_ticket({"comment": {"body": "broken"}})
    zendesk_sandbox.set_webhook_target(f"{state['hub_url']}/zendesk/webhook", "zendesk-secret-1")
    simulate("reply", "Fixed, thanks!", "--ticket", str(ticket["id"]), "--solve")
    assert zendesk_sandbox.tickets[ticket["id"]]["status"] == "solved"
    types = [json.loads(body)["type"] for _, _, body in hub[1]]
    assert types == ["zen:event-type:ticket.comment_added", "zen:event-type:ticket.status_changed"]


def test_reaction_posts_a_thread_in_the_sandbox_then_a_signed_reaction(
    state: dict[str, Any], hub: tuple[str, Received], slack_sandbox: SlackSandbox, tmp_path: Path
) -> None:
    screenshot = tmp_path / "screen.png"
    screenshot.write_bytes(b"\x89PNG fake")
    output = simulate(
        "reaction", "Export hangs", "--reply", "Which browser?", "--attach", str(screenshot)
    )
    assert "/slack/events -> 200" in output
    [(path, headers, body)] = hub[1]
    assert path == "/slack/events"
    assert SignatureVerifier("slack-secret-1").is_valid_request(body, headers)
    event = json.loads(body)["event"]
    assert event["type"] == "reaction_added" and event["reaction"] == "ticket"
    thread = slack_sandbox.channel_messages(event["item"]["channel"])
    assert [m.text for m in thread] == ["Export hangs", "Which browser?"]
    assert thread[0].ts == event["item"]["ts"]
    assert thread[0].files[0]["name"] == "screen.png"


def test_reaction_in_a_slack_connect_channel(
    state: dict[str, Any], hub: tuple[str, Received], slack_sandbox: SlackSandbox
) -> None:
    simulate("reaction", "Invoice VAT wrong", "--external-team", "T0ACME", "--author", "W0KIM")
    event = json.loads(hub[1][0][2])["event"]
    channel = event["item"]["channel"]
    assert slack_sandbox.shared[channel] == ["T0SANDBOX", "T0ACME"]
    assert slack_sandbox.users["W0KIM"]["team_id"] == "T0ACME"
    assert slack_sandbox.channel_messages(channel)[0].team == "T0ACME"


def test_without_a_running_hub_simulate_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FEEDBACK_HUB_DEV_STATE", str(tmp_path / "absent.json"))
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "x" * 16)
    result = CliRunner().invoke(cli, ["simulate", "--hub", "http://127.0.0.1:9", "feedback", "hi"])
    assert result.exit_code != 0
    assert "is the hub running" in result.output
