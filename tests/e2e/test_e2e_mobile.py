"""End to end: an app's bug report with a screenshot and a log, through the Procfile's gunicorn
and worker, becomes a Zendesk ticket (in the sandbox) with both files attached."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from redis import Redis

from integrations.sandbox import ZendeskSandbox
from tests.integrations.mobile.test_mobile_api import png
from tests.running_hub import RunningHub, running_hub

pytestmark = pytest.mark.e2e

APP_KEY = {"Authorization": "Bearer mobile-key-ios-0000"}


@pytest.fixture
def hub(
    sandbox_env: dict[str, str], redis: Redis, repo_root: Path, tmp_path: Path
) -> Iterator[RunningHub]:
    """The Procfile's web (gunicorn) and worker processes, on the sandboxes and a clean Redis."""
    with running_hub(sandbox_env, redis, repo_root, tmp_path) as hub:
        yield hub


def post_report(
    hub: RunningHub, report: dict[str, Any], files: list[tuple[str, bytes, str]]
) -> Any:
    return requests.post(
        f"{hub.url}/api/v1/bug-reports",
        headers={**APP_KEY, "Idempotency-Key": "e2e-report-0001"},
        data={"report": json.dumps(report)},
        files=[("files", (name, content, ctype)) for name, content, ctype in files],
        timeout=30,
    )


def zendesk_get(zendesk: ZendeskSandbox, env: dict[str, str], path: str) -> Any:
    auth = (f"{env['ZENDESK_EMAIL']}/token", env["ZENDESK_API_TOKEN"])
    response = requests.get(f"{zendesk.url}{path}", auth=auth, timeout=10)
    response.raise_for_status()
    return response


def test_report_with_screenshot_and_log_becomes_a_ticket_with_both_attached(
    hub: RunningHub, zendesk_sandbox: ZendeskSandbox, sandbox_env: dict[str, str], redis: Redis
) -> None:
    screenshot = png(width=64, height=48)
    log = "".join(f"2024-05-02T10:14:{i:02d}Z INFO checkout step {i}\n" for i in range(40))
    report = {
        "title": "Pay button does nothing",
        "description": "After changing the address, tapping Pay does nothing.",
        "reporter": {"email": "ana@example.com", "name": "Ana Lima"},
        "app": {"id": "com.acme.shop", "version": "5.2.1", "build": "742"},
        "device": {
            "model": "iPhone15,2",
            "manufacturer": "Apple",
            "os": "iOS",
            "os_version": "17.4",
        },
        "category": "checkout",
    }
    files = [("screen.png", screenshot, "image/png"), ("app.log", log.encode(), "text/plain")]

    accepted = post_report(hub, report, files)
    assert accepted.status_code == 202, accepted.text
    status_url = hub.url + accepted.json()["status_url"]

    def filed() -> dict[str, Any] | None:
        status: dict[str, Any] = requests.get(status_url, headers=APP_KEY, timeout=10).json()
        return status if status["status"] == "filed" else None

    status = hub.eventually(filed, "the status endpoint said filed")
    ticket_id = status["ticket_id"]

    ticket = zendesk_get(zendesk_sandbox, sandbox_env, f"/api/v2/tickets/{ticket_id}.json").json()
    ticket = ticket["ticket"]
    assert ticket["subject"] == "Pay button does nothing"
    for tag in ("mobile", "bug_report", "platform_ios", "app_5_2", "category_checkout"):
        assert tag in ticket["tags"]
    comments = zendesk_get(
        zendesk_sandbox, sandbox_env, f"/api/v2/tickets/{ticket_id}/comments.json"
    ).json()["comments"]
    first = comments[0]
    # The readable block under the description: labels aligned, one fact a line.
    facts = dict(
        (label.strip(), value)
        for label, _, value in (line.partition(" : ") for line in first["body"].splitlines())
        if value
    )
    assert facts["Device"] == "Apple iPhone15,2"
    assert facts["Version"] == "5.2.1 (build 742)"
    assert facts["OS"] == "iOS 17.4"
    assert facts["Reporter"] == "Ana Lima <ana@example.com>"
    attached = {a["file_name"]: a for a in first["attachments"]}
    assert set(attached) == {"screen.png", "app.log"}
    assert attached["screen.png"]["content_type"] == "image/png"
    assert attached["app.log"]["content_type"].startswith("text/plain")
    shot_bytes = requests.get(attached["screen.png"]["content_url"], timeout=10).content
    log_bytes = requests.get(attached["app.log"]["content_url"], timeout=10).content
    assert shot_bytes == screenshot
    assert log_bytes == log.encode()

    # The worker deleted the bytes it uploaded.
    hub.eventually(lambda: not redis.keys("hub:attachment:*"), "the stored files were deleted")

    # The app's offline queue sends it again: the same report, still one ticket.
    again = post_report(hub, report, files)
    assert again.status_code == 202
    assert again.json()["id"] == accepted.json()["id"]
    assert (again.json()["status"], again.json()["ticket_id"]) == ("filed", ticket_id)
    assert len(zendesk_sandbox.find_tickets(external_id=ticket["external_id"])) == 1
