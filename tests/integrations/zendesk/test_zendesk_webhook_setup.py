"""`feedback-hub zendesk setup`: creates the webhook (and triggers) once, prints the secret."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

from app import cli
from integrations.sandbox import ZendeskSandbox
from integrations.zendesk.payloads import SUBSCRIPTIONS, ZendeskEvent, parse_webhook

PUBLIC = "https://hub.example.com"


@pytest.fixture
def zendesk_env(sandbox_env: dict[str, str]) -> dict[str, str]:
    return {**sandbox_env, "FEEDBACK_HUB_DOTENV": "/nonexistent/.env"}


def setup(env: dict[str, str], *args: str) -> Result:
    result = CliRunner().invoke(cli, ["zendesk", "setup", *args], env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_dry_run_changes_nothing(
    zendesk_env: dict[str, str], zendesk_sandbox: ZendeskSandbox
) -> None:
    result = setup(zendesk_env, "--public-url", PUBLIC, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would create webhook 'feedback-hub' -> https://hub.example.com/zendesk/webhook" in (
        result.output
    )
    assert "dry run: nothing was changed" in result.output
    assert zendesk_sandbox.webhooks == {}


def test_setup_creates_the_webhook_once_and_prints_its_secret(
    zendesk_env: dict[str, str], zendesk_sandbox: ZendeskSandbox
) -> None:
    first = setup(zendesk_env, "--public-url", PUBLIC + "/")
    assert first.exit_code == 0, first.output
    [hook] = zendesk_sandbox.webhooks.values()
    assert hook["endpoint"] == "https://hub.example.com/zendesk/webhook"
    assert (hook["http_method"], hook["request_format"], hook["status"]) == (
        "POST",
        "json",
        "active",
    )
    assert hook["subscriptions"] == list(SUBSCRIPTIONS)
    secret = zendesk_sandbox.webhook_secrets[hook["id"]]
    assert f"ZENDESK_WEBHOOK_SECRET={secret}" in first.output.splitlines()

    again = setup(zendesk_env, "--public-url", PUBLIC)
    assert again.exit_code == 0
    assert "nothing to create: already set up" in again.output
    assert f"ZENDESK_WEBHOOK_SECRET={secret}" in again.output.splitlines()
    assert len(zendesk_sandbox.webhooks) == 1


def test_a_webhook_with_another_endpoint_is_reported_not_changed(
    zendesk_env: dict[str, str], zendesk_sandbox: ZendeskSandbox
) -> None:
    setup(zendesk_env, "--public-url", PUBLIC)
    moved = setup(zendesk_env, "--public-url", "https://new-hub.example.com")
    assert "sends to https://hub.example.com/zendesk/webhook" in moved.output
    [hook] = zendesk_sandbox.webhooks.values()
    assert hook["endpoint"] == "https://hub.example.com/zendesk/webhook"


def test_trigger_mode_installs_triggers_whose_json_the_hub_accepts(
    zendesk_env: dict[str, str], zendesk_sandbox: ZendeskSandbox
) -> None:
    result = setup(zendesk_env, "--public-url", PUBLIC, "--mode", "triggers")
    assert result.exit_code == 0, result.output
    [hook] = zendesk_sandbox.webhooks.values()
    assert hook["subscriptions"] == ["conditional_ticket_events"]
    triggers = {t["title"]: t for t in zendesk_sandbox.triggers.values()}
    assert sorted(triggers) == ["feedback-hub: ticket created", "feedback-hub: ticket updated"]
    updated = triggers["feedback-hub: ticket updated"]
    assert updated["conditions"]["all"] == [
        {"field": "update_type", "operator": "is", "value": "Change"}
    ]
    [action] = updated["actions"]
    assert action["field"] == "notification_webhook" and action["value"][0] == hook["id"]

    # What Zendesk would send once it fills the placeholders.
    filled = action["value"][1]
    for placeholder, value in {
        "{{ticket.id}}": "12",
        "{{ticket.status}}": "Open",
        "{{ticket.tags}}": "bug ios",
        "{{ticket.latest_comment.value}}": "Thanks, looking.",
        "{{ticket.latest_comment.is_public}}": "true",
    }.items():
        filled = filled.replace(placeholder, value)
    event = parse_webhook(filled.encode())
    assert isinstance(event, ZendeskEvent)
    assert (event.ticket.id, event.ticket.status, event.ticket.tags) == (12, "open", ("bug", "ios"))
    assert event.comment is not None and event.comment.body == "Thanks, looking."
    assert json.loads(filled)["trigger"] == "updated"

    again = setup(zendesk_env, "--public-url", PUBLIC, "--mode", "triggers")
    assert "nothing to create" in again.output
    assert len(zendesk_sandbox.triggers) == 2


def test_setup_needs_zendesk_credentials(zendesk_env: dict[str, str]) -> None:
    env = {**zendesk_env, "ZENDESK_URL": ""}
    result = CliRunner().invoke(cli, ["zendesk", "setup", "--public-url", PUBLIC], env=env)
    assert isinstance(result.exception, Exception)
    assert "ZENDESK_URL is not set" in str(result.exception)


def test_public_url_must_be_a_url(zendesk_env: dict[str, str]) -> None:
    result = setup(zendesk_env, "--public-url", "hub.example.com")
    assert result.exit_code == 2
    assert "is not an http(s) URL" in result.output
