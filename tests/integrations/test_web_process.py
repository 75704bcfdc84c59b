"""The Procfile's web command (gunicorn) starts, or refuses to in one line naming the variable."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
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


@pytest.mark.e2e
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


def test_processes_are_asked_to_stop_together_then_made_to(tmp_path: Path) -> None:
    # Two that note when SIGTERM came and stay, one that SIGTERM ends.
    stubborn = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: print(time.monotonic(), flush=True))\n"
        "print('up', flush=True)\n"
        "while True: time.sleep(1)\n"
    )
    polite = "import time; print('up', flush=True); time.sleep(60)"
    outputs = [tmp_path / f"{n}.out" for n in range(3)]
    procs = []
    for code, output in zip((stubborn, polite, stubborn), outputs, strict=True):
        with output.open("w") as out:
            procs.append(subprocess.Popen([sys.executable, "-c", code], stdout=out))
    deadline = time.monotonic() + 30
    while not all(o.read_text().startswith("up") for o in outputs):  # handlers are set
        assert time.monotonic() < deadline, "the processes did not start"
        time.sleep(0.05)

    # 5 s: on a loaded two-core machine a process can wait over 2 s for its turn to run
    # its SIGTERM handler (one CI run saw it killed before it had).
    stop_together(procs, timeout=5.0)

    # SIGTERM ends the polite one; the two that stay are killed.
    assert [p.returncode for p in procs] == [-signal.SIGKILL, -signal.SIGTERM, -signal.SIGKILL]
    noted = [outputs[0].read_text().split(), outputs[2].read_text().split()]
    assert all(len(lines) == 2 for lines in noted), f"SIGTERM not noted: {noted}"
    # Asked together: the last had SIGTERM without waiting out the first one's 5 s.
    asked_first, asked_last = (float(lines[1]) for lines in noted)
    assert abs(asked_last - asked_first) < 1.0


def test_worker_leaves_its_startup_objects_out_of_garbage_collection(
    env: dict[str, str], repo_root: Path
) -> None:
    # What gunicorn does in a worker: load the app, then run post_worker_init. A full
    # collection walks every tracked object with the event loop stopped; after the hook
    # it walks only what requests make.
    script = (
        "import gc, json\n"
        "from workers import gunicorn_conf\n"
        "from app import create_asgi_app\n"
        "app = create_asgi_app()\n"
        "before = len(gc.get_objects())\n"
        "gunicorn_conf.post_worker_init(None)\n"
        "print(json.dumps([before, gc.get_freeze_count(), len(gc.get_objects())]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=process_env({**env, "PORT": str(free_port())}),
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    before, frozen, tracked = json.loads(out.stdout.strip().splitlines()[-1])
    assert frozen >= before > 20_000
    assert tracked < 1_000


def _raw(port: int, data: bytes, wait: float = 10.0) -> tuple[int, str, dict[str, Any]]:
    """Send bytes as they are; the answer's status, content type and JSON body."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            head, sep, body = answer.partition(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: (\d+)", head)
            if sep and length and len(body) >= int(length.group(1)):
                break
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers["content-type"], json.loads(body)


@pytest.mark.e2e
def test_requests_gunicorn_refuses_itself_are_answered_json(
    env: dict[str, str], repo_root: Path
) -> None:
    port = free_port()
    # A short body timeout, so a stalled body is answered within the test.
    proc = start_web({**env, "PORT": str(port), "GUNICORN_CMD_ARGS": "--timeout 2"}, repo_root)
    try:
        wait_for_port(port, timeout=30, proc=proc)
        line = b"Host: hub\r\n"
        sent = {
            "bad Content-Length": b"POST /zendesk/webhook HTTP/1.1\r\n"
            + line
            + b"Content-Length: abc\r\n\r\n",
            "overlong request line": b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + line + b"\r\n",
            "control character": b"GET /healthz HTTP/1.1\r\n" + line + b"X-A: a\x01b\r\n\r\n",
            "overlong header": b"GET /healthz HTTP/1.1\r\n"
            + line
            + b"X-Big: "
            + b"a" * 20000
            + b"\r\n\r\n",
            "not HTTP": b"GARBAGE\r\n\r\n",
            "stalled body": b"POST /zendesk/webhook HTTP/1.1\r\n"
            + line
            + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
            "stalled /feedback": b"POST /slack/commands HTTP/1.1\r\n"
            + line
            + b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nt",
        }
        answers = {name: _raw(port, data) for name, data in sent.items()}
    finally:
        stop(proc)
    statuses = {name: status for name, (status, _, _) in answers.items()}
    assert statuses == {
        "bad Content-Length": 400,
        "overlong request line": 414,
        "control character": 400,
        "overlong header": 431,
        "not HTTP": 400,
        "stalled body": 408,
        "stalled /feedback": 408,
    }
    for name, (_status, content_type, body) in answers.items():
        assert content_type == "application/json", name
        assert set(body) == {"error", "message"} and body["message"], name
    assert answers["stalled body"][2]["error"] == "request_timeout"
