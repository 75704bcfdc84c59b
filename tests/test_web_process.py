"""The Procfile's web command (gunicorn) starts, or refuses to in one line naming the variable."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import requests

from workers.procs import (
    free_port,
    process_env,
    procfile_args,
    stop,
    stop_together,
    wait_for_port,
)


def start_web(env: dict[str, str], repo_root: Path) -> subprocess.Popen[str]:
    full_env = process_env(env)
    return subprocess.Popen(
        procfile_args("web", full_env),
        env=full_env,
        cwd=repo_root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_web_without_signing_secret_fails_in_one_line(env: dict[str, str], repo_root: Path) -> None:
    env = {k: v for k, v in env.items() if k != "SLACK_SIGNING_SECRET"}
    env["SLACK_SIGNING_SECRET"] = ""
    proc = start_web({**env, "PORT": str(free_port())}, repo_root)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert stderr.strip().splitlines() == [
        "feedback-hub: cannot start web: SLACK_SIGNING_SECRET is not set: expected the Slack "
        "app's signing secret (Basic Information > App Credentials)"
    ]


def test_web_with_malformed_redis_url_fails_in_one_line(
    env: dict[str, str], repo_root: Path
) -> None:
    proc = start_web({**env, "REDIS_URL": "localhost:6379", "PORT": str(free_port())}, repo_root)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert len(stderr.strip().splitlines()) == 1
    assert stderr.startswith("feedback-hub: cannot start web: REDIS_URL is malformed")


def test_web_serves_health_through_gunicorn(env: dict[str, str], repo_root: Path) -> None:
    port = free_port()
    proc = start_web({**env, "PORT": str(port)}, repo_root)
    try:
        wait_for_port(port, timeout=30, proc=proc)
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json() == {
            "status": "ok"
        }
        ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
    finally:
        stop(proc)


def test_processes_are_asked_to_stop_together_then_made_to() -> None:
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print(1, flush=True); time.sleep(60)"
    )
    polite = "import time; print(1, flush=True); time.sleep(60)"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        for code in (stubborn, polite, stubborn)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline()  # running, handler set
    stop_together(procs, timeout=1.0)
    # SIGTERM ends the polite one; the two that ignore it are killed.
    assert [p.returncode for p in procs] == [-signal.SIGKILL, -signal.SIGTERM, -signal.SIGKILL]
