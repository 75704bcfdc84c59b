"""The Slack endpoints, one test per fixture in integrations/slack/fixtures (named after it).

Every request is signed with Slack's real algorithm; the answers asserted are what the
person sees in Slack, and the queued report is what the worker will file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq.job import Job
from werkzeug.test import TestResponse

from app import create_app
from integrations.asgi import HubASGI
from integrations.queue import TICKETS, queue
from integrations.queue.status import StatusStore
from integrations.report import Report
from integrations.sandbox import SlackSandbox
from integrations.settings import Settings
from integrations.slack import messages
from integrations.slack.testing import (
    FIXTURES,
    FixedClock,
    feedback_body,
    fixture_body,
    fixture_payload,
    interaction_body,
    signed_headers,
)
from integrations.slack.verify import SlackVerifier
from integrations.slack.views import intake
from tests.asgi_client import AsgiClient
from tests.conftest import SIGNING_SECRET

# A Flask app made into a client: the web process's ASGI app, or create_app's WSGI app.
Serve = Callable[[Flask], Any]


@pytest.fixture(params=["asgi", "wsgi"])
def serve(request: pytest.FixtureRequest) -> Iterator[Serve]:
    """Slash commands are answered on the web process's event loop (the Procfile's ASGI app)
    and by create_app's WSGI app, from the same steps: every slash command test runs on both."""
    clients: list[AsgiClient] = []

    def make(app: Flask) -> Any:
        if request.param == "wsgi":
            return app.test_client()
        clients.append(AsgiClient(HubASGI(app, threads=2)))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def post_command(client: Any, body: bytes, **headers: str) -> TestResponse:
    return client.post(
        "/slack/commands", data=body, headers={**signed_headers(SIGNING_SECRET, body), **headers}
    )


def post_interaction(client: FlaskClient, payload: dict[str, Any]) -> TestResponse:
    body = interaction_body(payload)
    headers = signed_headers(SIGNING_SECRET, body)
    return client.post("/slack/interactions", data=body, headers=headers)


def queued(redis: Redis, name: str = TICKETS) -> list[Job]:
    q = queue(redis, name)
    return [job for jid in q.job_ids if (job := q.fetch_job(jid)) is not None]


RECEIPT_JOB = "workers.receipts.report_received"


def queued_report(redis: Redis) -> Report:
    """The one report waiting to be filed (the shortcut's receipts wait in the same queue)."""
    jobs = [j for j in queued(redis) if j.func_name != RECEIPT_JOB]
    assert [j.func_name for j in jobs] == ["workers.intake.file_report"]
    return Report.from_job(jobs[0].args[0])


@pytest.fixture
def slack_app(env: dict[str, str], slack_sandbox: SlackSandbox, redis: Redis) -> Flask:
    """The app with SLACK_API_URL at the Slack sandbox (views.open is real HTTP)."""
    return create_app(Settings.from_env("web", {**env, "SLACK_API_URL": slack_sandbox.api_url}))


def test_every_fixture_has_its_test() -> None:
    names = {p.stem for p in FIXTURES.iterdir() if p.suffix in (".txt", ".json")}
    tests = set(re.findall(r"^def test_(\w+)\(", Path(__file__).read_text(), re.M))
    assert names - tests == set()


# ---------------------------------------------------------------- slash commands


def test_slash_command__docs_signing_example(app: Flask, serve: Serve, redis: Redis) -> None:
    # Slack's documented request, with its documented signature, at its documented time.
    intake(app).verifier = SlackVerifier(SIGNING_SECRET, clock=FixedClock(1531420618))
    body = fixture_body("slash_command__docs_signing_example.txt")
    response = serve(app).post(
        "/slack/commands",
        data=body,
        headers={
            "X-Slack-Request-Timestamp": "1531420618",
            "X-Slack-Signature": (
                "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
            ),
        },
    )
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["response_type"] == "ephemeral"
    assert "`/webhook-collect` is not a command I know" in response.json["text"]
    assert redis.dbsize() == 0


def test_slash_command__with_text(app: Flask, serve: Serve, redis: Redis) -> None:
    client = serve(app)
    body = fixture_body("slash_command__with_text.txt")
    response = post_command(client, body)
    assert response.status_code == 200
    assert response.json == messages.receipt()
    assert response.json["text"].startswith("Thanks, filing this now")

    report = queued_report(redis)
    assert report.source == "slack_command"
    assert report.subject == "The export button does nothing #export #Reports"
    assert report.description == (
        "The export button does nothing #export #Reports\n"
        "Clicked it twice on the #reports page & waited a minute."
    )
    # The channel mention <#C024BE7LR|reports> is not a hashtag.
    assert report.tags == ("slack", "feedback", "export", "reports")
    assert report.context == {
        "Workspace": "example",
        "Channel": "#test (C2147483705)",
        "Reporter": "@Steve (U2147483697)",
    }
    assert report.reporter.slack_team_id == "T0001"
    assert report.reporter.slack_user_id == "U2147483697"
    assert report.reply.model_dump(exclude_none=True) == {
        "team_id": "T0001",
        "channel_id": "C2147483705",
        "user_id": "U2147483697",
        "response_url": "https://hooks.slack.com/commands/1234/5678",
    }
    status = StatusStore(redis).get(report.key_digest)
    assert status is not None and status.state == "queued"

    # Slack delivering the same request again: same receipt, still one job.
    again = post_command(client, body)
    assert again.json == messages.receipt()
    assert len(queued(redis)) == 1


def test_slash_command__no_text(
    slack_app: Flask, serve: Serve, slack_sandbox: SlackSandbox, redis: Redis
) -> None:
    client = serve(slack_app)
    body = fixture_body("slash_command__no_text.txt")
    response = post_command(client, body)
    assert response.status_code == 200
    assert response.data == b""

    [call] = slack_sandbox.calls("views.open")
    assert call.ok and call.args["trigger_id"] == "13345224609.738474920.8088930838d88f008e0"
    [view] = slack_sandbox.views.values()
    assert view["callback_id"] == "feedback_modal"
    assert [b["block_id"] for b in view["blocks"]] == ["summary", "details", "category", "severity"]
    category = view["blocks"][2]["element"]["options"]
    assert [o["value"] for o in category] == [
        "bug",
        "feature_request",
        "question",
        "billing",
        "other",
    ]
    assert messages.read_modal_metadata(view["private_metadata"]) == {
        "channel_id": "C2147483705",
        "channel_name": "test",
        "team_domain": "example",
        "response_url": "https://hooks.slack.com/commands/1234/5678",
    }
    assert redis.dbsize() == 0  # nothing is filed until the form is submitted

    # The same trigger again: Slack refuses it, and the person is told what to do instead.
    second = post_command(client, body)
    assert second.json == messages.could_not_open_form()


def test_slash_command__help(app: Flask, serve: Serve, redis: Redis) -> None:
    response = post_command(serve(app), fixture_body("slash_command__help.txt"))
    assert response.status_code == 200
    assert response.json == messages.usage()
    assert "/feedback the export button does nothing" in response.json["text"]
    assert redis.dbsize() == 0


def test_form_cannot_open_when_slack_is_unreachable(
    env: dict[str, str], serve: Serve, redis: Redis
) -> None:
    settings = Settings.from_env("web", {**env, "SLACK_API_URL": "http://127.0.0.1:9/api/"})
    client = serve(create_app(settings))
    response = post_command(client, fixture_body("slash_command__no_text.txt"))
    assert response.status_code == 200
    assert response.json is not None
    assert "could not open the feedback form" in response.json["text"]


# ---------------------------------------------------------------- the feedback form


def test_view_submission__feedback_modal(client: FlaskClient, redis: Redis) -> None:
    payload = fixture_payload("view_submission__feedback_modal.json")
    response = post_interaction(client, payload)
    assert response.status_code == 200
    assert response.json == {"response_action": "update", "view": messages.modal_receipt()}

    report = queued_report(redis)
    assert report.source == "slack_modal"
    assert report.subject == "Invoices PDF shows last month's total"
    assert report.description.startswith("Invoices PDF shows last month's total\n\nOpened invoice")
    assert report.tags == (
        "slack",
        "feedback",
        "category_billing",
        "severity_high",
        "invoices",
    )
    assert (report.fields.category, report.fields.severity) == ("billing", "high")
    assert report.context == {
        "Workspace": "workspace-domain",
        "Channel": "#test (C2147483705)",
        "Reporter": "@primary-owner (W111)",
        "Category": "Billing",
        "Severity": "High",
    }
    # Where the receipt goes: the channel and response_url the form was opened from.
    assert report.reply.channel_id == "C2147483705"
    assert report.reply.user_id == "W111"
    assert report.reply.response_url == "https://hooks.slack.com/commands/1234/5678"

    # Submit pressed twice: one report.
    post_interaction(client, payload)
    assert len(queued(redis)) == 1


def test_view_submission__summary_empty(client: FlaskClient, redis: Redis) -> None:
    response = post_interaction(client, fixture_payload("view_submission__summary_empty.json"))
    assert response.status_code == 200
    assert response.json == {
        "response_action": "errors",
        "errors": {"summary": messages.SUMMARY_EMPTY, "category": messages.CATEGORY_MISSING},
    }
    assert redis.dbsize() == 0


def test_form_summary_too_long_is_an_inline_error(client: FlaskClient, redis: Redis) -> None:
    payload = fixture_payload("view_submission__feedback_modal.json")
    payload["view"]["state"]["values"]["summary"]["summary"]["value"] = "word " * 40
    response = post_interaction(client, payload)
    assert response.json == {
        "response_action": "errors",
        "errors": {"summary": messages.SUMMARY_TOO_LONG},
    }
    assert redis.dbsize() == 0


# ---------------------------------------------------------------- the shortcut


def test_message_action__send_to_support(client: FlaskClient, redis: Redis) -> None:
    response = post_interaction(client, fixture_payload("message_action__send_to_support.json"))
    assert response.status_code == 200
    assert response.data == b""

    report = queued_report(redis)
    assert report.source == "slack_shortcut"
    assert report.subject == "@W222 test"
    assert report.reporter.slack_user_id == "W111"  # who used the shortcut asks
    assert report.context == {
        "Workspace": "test-test",
        "Channel": "#dev (C111)",
        "Reporter": "@test-test (W111)",
        "Message author": "W111",
    }
    assert report.reply.message_ts == "1583636382.000300"
    assert report.reply.response_url == "https://hooks.slack.com/app/T111/111/xxx"
    # The receipt goes out from a worker, through the response_url: the first job taken.
    receipt, filing = queued(redis)
    assert (receipt.func_name, filing.func_name) == (RECEIPT_JOB, "workers.intake.file_report")
    assert receipt.args[1] is False


def test_the_shortcut_receipt_goes_ahead_of_waiting_reports(
    client: FlaskClient, redis: Redis
) -> None:
    # Reports already waiting for a worker (Zendesk busy): the person who used the
    # shortcut is told by the next free worker, not after the backlog is filed.
    for n in range(3):
        assert post_command(client, feedback_body(n, f"waiting report {n}")).json == (
            messages.receipt()
        )
    post_interaction(client, fixture_payload("message_action__send_to_support.json"))
    jobs = queued(redis)
    assert [j.func_name for j in jobs] == [RECEIPT_JOB] + ["workers.intake.file_report"] * 4
    assert Report.from_job(jobs[-1].args[0]).source == "slack_shortcut"


def test_message_action__with_file_in_thread(client: FlaskClient, redis: Redis) -> None:
    payload = fixture_payload("message_action__with_file_in_thread.json")
    assert post_interaction(client, payload).status_code == 200

    report = queued_report(redis)
    assert report.subject == "Hi there! Export crashes with this file #export"
    assert report.description.endswith("\n\nAttached files: file.png")
    assert report.context["Files"] == "file.png"
    assert report.tags == ("slack", "feedback", "export")
    assert report.reply.thread_ts == "1652227600.000100"
    assert report.reply.message_ts == "1652227646.593159"

    # The same person sends the same message again: one report, and they are told so.
    payload["trigger_id"] = "111.222.zzz"
    post_interaction(client, payload)
    assert queued_report(redis).source == "slack_shortcut"
    # Each receipt went to the front when it was queued: the later one ("already sent") first.
    assert [j.args[1] for j in queued(redis) if j.func_name == RECEIPT_JOB] == [True, False]


def test_message_action__other_shortcut(client: FlaskClient, redis: Redis) -> None:
    response = post_interaction(client, fixture_payload("message_action__other_shortcut.json"))
    assert response.status_code == 200
    assert response.data == b""
    assert redis.dbsize() == 0


# ---------------------------------------------------------------- Redis down at intake


@pytest.fixture
def redis_down_client(env: dict[str, str]) -> Iterator[FlaskClient]:
    from workers.procs import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"
    yield create_app(Settings.from_env("web", {**env, "REDIS_URL": dead})).test_client()


def test_redis_down_command_says_could_not_file(env: dict[str, str], serve: Serve) -> None:
    from workers.procs import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"
    client = serve(create_app(Settings.from_env("web", {**env, "REDIS_URL": dead})))
    response = post_command(client, fixture_body("slash_command__with_text.txt"))
    assert response.status_code == 200
    assert response.json == messages.could_not_file()
    assert "Please try again" in response.json["text"]


def test_redis_down_form_stays_open_with_the_reason(redis_down_client: FlaskClient) -> None:
    response = post_interaction(
        redis_down_client, fixture_payload("view_submission__feedback_modal.json")
    )
    assert response.status_code == 200
    assert response.json == {
        "response_action": "errors",
        "errors": {"summary": messages.FORM_NOT_FILED},
    }


def test_redis_down_shortcut_shows_a_notice(
    env: dict[str, str], slack_sandbox: SlackSandbox
) -> None:
    from workers.procs import free_port

    settings = Settings.from_env(
        "web",
        {
            **env,
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "SLACK_API_URL": slack_sandbox.api_url,
        },
    )
    client = create_app(settings).test_client()
    response = post_interaction(client, fixture_payload("message_action__send_to_support.json"))
    assert response.status_code == 200
    [view] = slack_sandbox.views.values()
    assert json.dumps(view["blocks"]).count("could not file this") == 1
