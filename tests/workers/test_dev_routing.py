"""`make run` shows routing: the sandboxes have the groups and channels the rules name, and
follow a reload."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.dev import spawn_dev
from workers.devserver import SAMPLE_BILLING
from workers.procs import ROOT

pytestmark = pytest.mark.e2e

DEADLINE = 60.0


def eventually(probe: Callable[[], Any], what: str, printed: Callable[[], str]) -> Any:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"not within {DEADLINE}s: {what}\n{printed()}")


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, str], Path]]:
    """`feedback-hub dev` with no accounts, routing with a copy of the default rules."""
    rules = tmp_path / "rules.yml"
    shutil.copy(ROOT / "rules" / "default.yml", rules)
    proc, env, output = spawn_dev(
        tmp_path, path=os.environ["PATH"], extra={"RULES_PATH": str(rules)}
    )
    try:
        yield proc, env, output
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def simulate(env: dict[str, str], text: str) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "feedback-hub"), "simulate", "feedback", text],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_make_run_files_the_sample_billing_report_into_billing_and_follows_a_rules_change(
    dev: tuple[subprocess.Popen[bytes], dict[str, str], Path],
) -> None:
    proc, env, output = dev
    state_file = Path(env["FEEDBACK_HUB_DEV_STATE"])

    def printed() -> str:
        return output.read_text(errors="replace")

    eventually(lambda: state_file.exists() or proc.poll() is not None, "dev started", printed)
    assert proc.poll() is None, printed()
    state = json.loads(state_file.read_text())
    zendesk = state["zendesk_sandbox_url"]
    assert f'feedback-hub simulate feedback "{SAMPLE_BILLING}"' in printed()
    assert "Zendesk sandbox: added what" in printed()
    assert "group Billing" in printed()
    slack = state["slack_sandbox_url"]

    def slack_channels() -> dict[str, str]:
        made: dict[str, str] = requests.get(f"{slack}/__sandbox/channels", timeout=5).json()[
            "channels"
        ]
        return made

    assert {"mobile-eng", "eng-oncall", "support-oncall"} <= set(slack_channels())

    def ticket_with(subject_part: str) -> dict[str, Any] | None:
        tickets = requests.get(f"{zendesk}/__sandbox/tickets", timeout=5).json()["tickets"]
        return next((t for t in tickets if subject_part in t["subject"]), None)

    def page_row(ticket_id: int) -> str:
        page = requests.get(f"{zendesk}/agent/tickets/{ticket_id}", timeout=5).text
        return page

    simulate(env, SAMPLE_BILLING)
    ticket = eventually(lambda: ticket_with("charged twice"), "the billing ticket", printed)
    assert "· group Billing" in page_row(ticket["id"]), page_row(ticket["id"])
    assert "billing" in ticket["tags"]

    # An admin renames the team's group in the rules: the sandbox follows, and so does routing.
    rules = Path(env["RULES_PATH"])
    text = rules.read_text()
    text = text.replace("groups: [Support,", "groups: [Payments, Support,")
    text = text.replace("      - set_group: Billing\n", "      - set_group: Payments\n")
    text = text.replace('channel: "#support-oncall"', 'channel: "#support-night"')
    rules.write_text(text)
    eventually(lambda: "group Payments" in printed(), "the sandbox got Payments", printed)
    eventually(lambda: "support-night" in slack_channels(), "Slack got #support-night", printed)
    assert "posts to: #support-night" in printed()

    simulate(env, "Refund please, the invoice is wrong")
    second = eventually(lambda: ticket_with("Refund please"), "the second ticket", printed)
    assert "· group Payments" in page_row(second["id"]), page_row(second["id"])
    assert "rules.unknown_target" not in printed()
