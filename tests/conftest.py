"""Shared fixtures: a real redis-server, settings, and the app."""

from __future__ import annotations

import gc
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from werkzeug.serving import make_server

from app import create_app
from integrations.sandbox import SlackSandbox, ZendeskSandbox
from integrations.settings import Settings
from tests import REPO_ROOT
from workers.procs import free_port, start_redis, stop

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # Slack's documented example secret


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_URL when set (a throwaway database: tests flush it), else a private redis-server."""
    if url := os.environ.get("REDIS_URL"):
        yield url
        return
    port = free_port()
    proc = start_redis(port, tmp_path_factory.mktemp("redis"))
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(proc)


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    """A clean Redis database for one test."""
    client = Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def env(redis_url: str) -> dict[str, str]:
    """A complete environment for every process type."""
    return {
        "REDIS_URL": redis_url,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": "xoxb-test-token-0000",
        "ZENDESK_URL": "http://127.0.0.1:9",
        "ZENDESK_EMAIL": "agent@example.com",
        "ZENDESK_API_TOKEN": "zendesk-test-token-0000",
        "ZENDESK_WEBHOOK_SECRET": "zendesk-webhook-secret-0000",
        "MOBILE_API_KEYS": "ios-app:mobile-key-ios-0000,android-app:mobile-key-android-0000",
    }


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return Settings.from_env("worker", env)


@pytest.fixture
def app(settings: Settings, redis: Redis) -> Flask:
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(autouse=True)
def _collect_apps() -> Iterator[None]:
    """Free the Redis sockets of apps a test built, now rather than at a random later GC.

    An app's Hub and its readiness checks refer to each other, so only the
    cycle collector frees them; left to chance it does so inside another test,
    whose warnings-as-errors then fail on the unclosed socket.
    """
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


# ---------------------------------------------------------------- sandboxes (integrations/sandbox)
# Real HTTP servers on free ports: the real zenpy and slack_sdk clients talk to them.


@pytest.fixture
def zendesk_sandbox(env: dict[str, str]) -> Iterator[ZendeskSandbox]:
    """A fresh Zendesk sandbox accepting env's ZENDESK_EMAIL / ZENDESK_API_TOKEN."""
    sandbox = ZendeskSandbox(email=env["ZENDESK_EMAIL"], token=env["ZENDESK_API_TOKEN"])
    sandbox.start()
    yield sandbox
    sandbox.stop()


# The test workspace's channels. As in Slack, a channel exists before the hub posts to it:
# a post to a name not listed here is channel_not_found (and the wall refuses it first).
WORKSPACE_CHANNELS = (
    # rules/default.yml posts to these.
    "#mobile-eng",
    "#eng-oncall",
    "#support-oncall",
    # The tests' own rules, settings (SLACK_OPS_CHANNEL, DIGEST_CHANNEL) and posts.
    "#eng",
    "#eng-billing",
    "#eng-escalations",
    "#eng-mobile",
    "#eng-web",
    "#hub-ops",
    "#product-trends",
    "#support",
    "#support-escalations",
    "#support-ops",
    "#support-triage",
)


@pytest.fixture
def slack_sandbox(env: dict[str, str]) -> Iterator[SlackSandbox]:
    """A fresh Slack Web API sandbox accepting env's SLACK_BOT_TOKEN, with WORKSPACE_CHANNELS."""
    sandbox = SlackSandbox(token=env["SLACK_BOT_TOKEN"], channels=WORKSPACE_CHANNELS)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def sandbox_env(
    env: dict[str, str], zendesk_sandbox: ZendeskSandbox, slack_sandbox: SlackSandbox
) -> dict[str, str]:
    """`env` with ZENDESK_URL and SLACK_API_URL pointing at the sandboxes."""
    return {**env, "ZENDESK_URL": zendesk_sandbox.url, "SLACK_API_URL": slack_sandbox.api_url}


@pytest.fixture
def worker_env(
    sandbox_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, redis: Redis
) -> Iterator[dict[str, str]]:
    """The worker's environment, pointing at the sandboxes: jobs read it themselves."""
    for name, value in sandbox_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SLACK_OPS_CHANNEL", raising=False)
    yield sandbox_env


@pytest.fixture
def groups(zendesk_sandbox: ZendeskSandbox) -> dict[str, int]:
    """The groups rules/default.yml routes to, as an admin would have set them up."""
    names = ["Engineering", "Billing", "Mobile", "Product", "Accounts", "Security"]
    return {name: int(zendesk_sandbox.add_group(name)["id"]) for name in names}


@pytest.fixture
def hub_url(worker_env: dict[str, str], zendesk_sandbox: ZendeskSandbox) -> Iterator[str]:
    """The hub's web app on a real port; the Zendesk sandbox's webhook targets it."""
    server = make_server(
        "127.0.0.1", 0, create_app(Settings.from_env("web", worker_env)), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    zendesk_sandbox.set_webhook_target(
        f"{url}/zendesk/webhook", worker_env["ZENDESK_WEBHOOK_SECRET"]
    )
    yield url
    server.shutdown()
    thread.join(5)
