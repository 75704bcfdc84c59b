"""`feedback-hub dev` (make run) with no accounts: it stands in for what is missing and says so."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.dev import spawn_dev

pytestmark = pytest.mark.e2e

DEADLINE = 60.0


class Dev:
    """A running `feedback-hub dev` and what it printed."""

    def __init__(self, proc: subprocess.Popen[bytes], output: Path, state: Path) -> None:
        self.proc = proc
        self.output = output
        self.state_file = state

    @property
    def printed(self) -> str:
        return self.output.read_text()

    def state(self) -> dict[str, str]:
        """The dev state file once it is written (the hub and worker are started by then)."""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"feedback-hub dev exited with {self.proc.returncode}:\n{self.printed}")
            if self.state_file.exists():
                data: dict[str, str] = json.loads(self.state_file.read_text())
                return data
            time.sleep(0.1)
        pytest.fail(f"feedback-hub dev did not come up within {DEADLINE}s:\n{self.printed}")

    def stop(self, sig: signal.Signals) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(30)


@pytest.fixture
def start_dev(tmp_path: Path) -> Iterator[Callable[[str], Dev]]:
    started: list[Dev] = []

    def start(path: str) -> Dev:
        proc, _, output = spawn_dev(tmp_path, path=path)
        dev = Dev(proc, output, tmp_path / "dev.json")
        started.append(dev)
        return dev

    yield start
    for dev in started:
        if dev.proc.poll() is None:
            os.killpg(dev.proc.pid, signal.SIGKILL)
            dev.proc.wait()


def ready(url: str) -> requests.Response:
    """/readyz once it answers 200, or its last answer at the deadline."""
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            # gunicorn listens before its workers have loaded the app: on a busy
            # machine the first requests wait.
            answer = requests.get(f"{url}/readyz", timeout=10)
        except requests.Timeout:
            if time.monotonic() > deadline:
                raise
            continue
        if answer.status_code == 200 or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def test_dev_starts_redis_and_the_sandboxes_and_stops_on_ctrl_c(
    start_dev: Callable[[str], Dev],
) -> None:
    dev = start_dev(os.environ["PATH"])
    state = dev.state()

    answer = ready(state["hub_url"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["checks"]["settings"] == "ok"  # the worker has sandbox credentials
    zendesk = requests.get(f"{state['zendesk_sandbox_url']}/", timeout=5)
    assert "Zendesk sandbox" in zendesk.text
    slack = requests.get(f"{state['slack_sandbox_url']}/", timeout=5)
    assert "Slack sandbox" in slack.text
    printed = dev.printed
    assert "started a private redis-server" in printed
    assert "using the Zendesk sandbox" in printed
    assert "using the Slack Web API sandbox" in printed
    assert state["zendesk_sandbox_url"] in printed
    assert 'feedback-hub simulate feedback "hello"' in printed
    # The one-hour promise, shown within minutes (docs/rules.md, response_time).
    assert "RULES_PATH is not set: rules/default.yml with a 3-minute first-reply target" in printed
    # The Slack sandbox has the channels those rules post to (the nudge and breach ones
    # only the dev rules name): the wall refuses names the workspace does not list.
    made = requests.get(f"{state['slack_sandbox_url']}/__sandbox/channels", timeout=5).json()
    for name in ("mobile-eng", "eng-oncall", "support-oncall", "support-triage", "hub-ops"):
        assert name in made["channels"], made
    # Operator alerts (dead letters) are seen on the sandbox page, not only in the log.
    assert "SLACK_OPS_CHANNEL is not set: operator alerts go to #hub-ops" in printed
    assert "Slack sandbox: created the channels" in printed
    assert "#support-escalations" in printed

    assert dev.stop(signal.SIGINT) == 0
    assert not dev.state_file.exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{state['hub_url']}/healthz", timeout=5)


def test_without_redis_server_dev_runs_in_memory_and_says_it_is_not_durable(
    start_dev: Callable[[str], Dev],
) -> None:
    # Only the virtualenv on PATH: no redis-server to find.
    dev = start_dev(str(Path(sys.executable).parent))
    state = dev.state()
    answer = ready(state["hub_url"])
    assert answer.status_code == 200, answer.text
    assert "NOTHING IS DURABLE" in dev.printed
    assert "IN-MEMORY" in dev.printed

    assert dev.stop(signal.SIGTERM) == 0
    assert not dev.state_file.exists()


def test_an_edit_to_the_default_rules_reaches_the_dev_hubs_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # make run loads a copy (rules/default.yml plus the 3-minute target): an edit to
    # rules/default.yml while it runs is copied over, as a rules change is picked up.
    from workers import devserver

    (tmp_path / "rules").mkdir()
    source = tmp_path / "rules" / "default.yml"
    source.write_text("version: 1\n")
    monkeypatch.setattr(devserver, "ROOT", tmp_path)
    monkeypatch.setattr(devserver, "RULES_MIRROR_SECONDS", 0.05)
    env: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        devserver._dev_rules(env, tmp_path, stack)
        copy = Path(env["RULES_PATH"])
        assert copy.read_text() == "version: 1\n" + devserver.DEV_TARGETS
        source.write_text("version: 1\ngroups: [Support]\n")
        deadline = time.monotonic() + 10
        while "groups: [Support]" not in copy.read_text():
            assert time.monotonic() < deadline, "the edit never reached the copy"
            time.sleep(0.05)
        assert copy.read_text().endswith(devserver.DEV_TARGETS)
