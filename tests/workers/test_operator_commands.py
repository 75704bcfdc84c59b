"""Operator commands find the hub's Redis: REDIS_URL, else the running `feedback-hub dev`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from app import cli


def test_with_make_run_running_commands_use_its_redis(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `feedback-hub dev` writes its Redis (a random port) to var/dev.json.
    state = tmp_path / "dev.json"
    state.write_text(json.dumps({"redis_url": redis_url}))
    monkeypatch.setenv("FEEDBACK_HUB_DEV_STATE", str(state))
    monkeypatch.delenv("REDIS_URL", raising=False)
    for command in (["failed", "list"], ["watch"], ["tags", "report", "--json"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 0, (command, result.output)
        assert f"using the running `feedback-hub dev` ({redis_url})" in result.stderr


def test_without_it_the_command_says_what_to_set(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["FEEDBACK_HUB_DEV_STATE"] = str(tmp_path / "none.json")
    binary = Path(sys.executable).parent / "feedback-hub"
    done = subprocess.run(
        [str(binary), "failed", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.startswith("feedback-hub: REDIS_URL is not set: expected the hub's Redis")
