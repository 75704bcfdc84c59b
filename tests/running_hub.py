"""The hub as the Procfile runs it (gunicorn and `feedback-hub worker`), for end-to-end tests."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import requests
from redis import Redis
from rq.registry import StartedJobRegistry

from integrations.queue import QUEUES, queue
from integrations.slack.testing import signed_headers
from tests.conftest import SIGNING_SECRET
from workers.procs import free_port, process_env, procfile_args, stop, wait_for_port

T = TypeVar("T")


@dataclass
class RunningHub:
    """The running hub: where to send requests, its Redis, and its processes' logs."""

    url: str
    logs: Path
    redis: Redis
    env: dict[str, str]

    def log_tail(self) -> str:
        """The last lines of each process's log, for failure messages."""
        lines = []
        for path in sorted(self.logs.glob("*.log")):
            lines.append(f"--- {path.name}")
            lines.extend(path.read_text(errors="replace").splitlines()[-15:])
        return "\n".join(lines)

    def eventually(self, probe: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
        """Poll `probe` until it returns something, or fail saying what never happened."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = probe()
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"not within {timeout}s: {what}\n{self.log_tail()}")

    def healthy(self) -> bool:
        """True once a web worker answers."""
        try:
            return requests.get(f"{self.url}/healthz", timeout=2).ok
        except requests.RequestException:
            return False

    def settled(self) -> None:
        """Wait until the worker has nothing queued or running."""

        def idle() -> bool:
            return all(
                queue(self.redis, name).count == 0
                and StartedJobRegistry(queue=queue(self.redis, name)).count == 0
                for name in QUEUES
            )

        self.eventually(idle, "the worker finished its jobs")

    def post_signed(self, path: str, body: bytes) -> requests.Response:
        """POST a body signed as Slack signs it (the tests' signing secret)."""
        headers = signed_headers(SIGNING_SECRET, body)
        return requests.post(f"{self.url}{path}", data=body, headers=headers, timeout=15)


@contextmanager
def running_hub(
    env: Mapping[str, str], redis: Redis, repo_root: Path, logs: Path, *, port: int | None = None
) -> Iterator[RunningHub]:
    """Run the Procfile's web and worker processes with `env` until the block ends."""
    port = port or free_port()
    full_env = process_env({**env, "PORT": str(port), "PYTHONPATH": str(repo_root)})
    procs: list[subprocess.Popen[str]] = []
    try:
        for name in ("web", "worker"):
            with (logs / f"{name}.log").open("w") as log:
                procs.append(
                    subprocess.Popen(
                        procfile_args(name, full_env),
                        env=full_env,
                        cwd=repo_root,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                )
        wait_for_port(port, timeout=30, proc=procs[0])
        hub = RunningHub(f"http://127.0.0.1:{port}", logs, redis, full_env)
        # On a busy machine the port opens before a gunicorn worker can answer.
        hub.eventually(hub.healthy, "the web process answered /healthz")
        yield hub
    finally:
        for proc in procs:
            stop(proc)


@contextmanager
def hub_with_webhook(
    env: Mapping[str, str], redis: Redis, repo_root: Path, logs: Path
) -> Iterator[RunningHub]:
    """`feedback-hub zendesk setup` against the sandbox (which makes the webhook and says
    its signing secret), then the Procfile's web and worker with that secret."""
    port = free_port()
    base = {k: v for k, v in env.items() if k != "ZENDESK_WEBHOOK_SECRET"}
    base.update(PORT=str(port), PYTHONPATH=str(repo_root))
    setup = subprocess.run(
        ["feedback-hub", "zendesk", "setup", "--public-url", f"http://127.0.0.1:{port}"],
        env=process_env(base),
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert setup.returncode == 0, setup.stderr
    [secret] = [
        line.partition("=")[2]
        for line in setup.stdout.splitlines()
        if line.startswith("ZENDESK_WEBHOOK_SECRET=")
    ]
    with running_hub(
        {**base, "ZENDESK_WEBHOOK_SECRET": secret}, redis, repo_root, logs, port=port
    ) as hub:
        yield hub
