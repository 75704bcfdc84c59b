"""`make run` installs what running needs; `make test`, `unit` and `lint` add the test tools."""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests import REPO_ROOT


def planned(target: str, venv: Path) -> list[str]:
    """The commands `make TARGET` would run on a machine with no virtualenv yet."""
    # Under `make test` this runs inside make: without its variables, and without the
    # "Entering directory" lines a nested make prints.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    done = subprocess.run(
        ["make", "--dry-run", "--always-make", "--no-print-directory", f"VENV={venv}", target],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def installs(commands: list[str]) -> list[str]:
    return [c.split(" -e ", 1)[1] for c in commands if "pip install" in c and " -e " in c]


def test_make_run_installs_the_hub_without_the_test_tools(tmp_path: Path) -> None:
    commands = planned("run", tmp_path / "venv")
    assert installs(commands) == ["'.[dev]'"]
    assert commands[-1].endswith("/bin/feedback-hub dev")
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    # What `dev` adds is the in-memory Redis, not a test runner or a linter.
    assert not {"pytest", "ruff", "mypy"} & {d.split(">")[0].split("[")[0] for d in extras["dev"]}


@pytest.mark.parametrize("target", ["test", "unit", "lint"])
def test_the_test_targets_install_the_test_tools(target: str, tmp_path: Path) -> None:
    assert installs(planned(target, tmp_path / "venv")) == ["'.[dev,test]'"]
