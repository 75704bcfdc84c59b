"""End to end: bug reports filed through the Procfile's gunicorn and worker are counted, and
`feedback-hub tags report --json` shows them this week."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from redis import Redis

from integrations.queue.tag_counts import iso_week
from integrations.sandbox import ZendeskSandbox
from tests.running_hub import RunningHub, running_hub

pytestmark = pytest.mark.e2e

APP_KEY = {"Authorization": "Bearer mobile-key-ios-0000"}


@pytest.fixture
def hub(
    sandbox_env: dict[str, str], redis: Redis, repo_root: Path, tmp_path: Path
) -> Iterator[RunningHub]:
    with running_hub(sandbox_env, redis, repo_root, tmp_path) as hub:
        yield hub


def file(hub: RunningHub, key: str, title: str) -> int:
    report = {"title": title, "description": title, "reporter": {"email": "ana@example.com"}}
    accepted = requests.post(
        f"{hub.url}/api/v1/bug-reports",
        headers={**APP_KEY, "Idempotency-Key": key},
        json=report,
        timeout=30,
    )
    assert accepted.status_code == 202, accepted.text
    status_url = hub.url + accepted.json()["status_url"]

    def filed() -> dict[str, Any] | None:
        status: dict[str, Any] = requests.get(status_url, headers=APP_KEY, timeout=10).json()
        return status if status["status"] == "filed" else None

    return int(hub.eventually(filed, f"{key} was filed")["ticket_id"])


def test_tags_report_json_counts_reports_filed_through_the_running_hub(
    hub: RunningHub, zendesk_sandbox: ZendeskSandbox, repo_root: Path
) -> None:
    file(hub, "e2e-tags-1", "The app crashes when I open settings")
    file(hub, "e2e-tags-2", "The app crashes on launch")
    file(hub, "e2e-tags-3", "The footer colour looks odd on my tablet")

    result = subprocess.run(
        [sys.executable, "-m", "app", "tags", "report", "--json", "--weeks", "4"],
        env=hub.env,
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["weeks"][-1] == iso_week()
    assert report["reports"][-1] == 3
    assert report["untagged"][-1] == 1
    assert report["tags"]["crash"] == [0, 0, 0, 2]
    assert report["tags"]["mobile"][-1] == 3
    # Two crash reports in a first week are new, not a significant mover.
    assert "crash" in report["new"]
