"""`feedback-hub dev` as a person starts it, for the tests of `make run`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from workers.procs import ROOT, free_port


def spawn_dev(
    workdir: Path, *, path: str, extra: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], dict[str, str], Path]:
    """Start `feedback-hub dev` in a clean environment (no Zendesk or Slack credentials,
    no REDIS_URL, no .env; `path` is its PATH); the process, its environment and the file
    its output goes to. It runs in a session of its own, so it can be stopped as a group."""
    env = {
        "PATH": path,
        "HOME": str(workdir),
        "PORT": str(free_port()),
        "FEEDBACK_HUB_DEV_STATE": str(workdir / "dev.json"),
        "FEEDBACK_HUB_DOTENV": str(workdir / "absent.env"),
        **(extra or {}),
    }
    output = workdir / "dev.out"
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "feedback-hub"), "dev"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, env, output
