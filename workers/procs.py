"""Starting the hub's processes locally: a private redis-server, and the Procfile's commands.

Used by `feedback-hub dev`, the end-to-end tests and the benchmarks, so all three
run exactly what production runs.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, timeout: float = 15.0, proc: subprocess.Popen[Any] | None = None
) -> None:
    """Block until something accepts connections on 127.0.0.1:port, or raise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout}s")


def start_redis(
    port: int,
    directory: Path,
    *,
    appendonly: bool = False,
    quiet: bool = True,
    own_session: bool = False,
) -> subprocess.Popen[bytes]:
    """Start a private redis-server on 127.0.0.1:port keeping its files in `directory`.

    `own_session`: out of the terminal's process group, so a Ctrl-C reaches the processes
    that write to it, and it is stopped after them (`feedback-hub dev`).
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
    directory.mkdir(parents=True, exist_ok=True)
    args = [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(directory),
        "--save", "",
        "--appendonly", "yes" if appendonly else "no",
        "--appendfsync", "everysec",
        # rq keys must never be evicted: see README, production notes.
        "--maxmemory-policy", "noeviction",
    ]  # fmt: skip
    out = subprocess.DEVNULL if quiet else None
    proc = subprocess.Popen(args, stdout=out, stderr=out, start_new_session=own_session)
    wait_for_port(port, proc=proc)
    return proc


def procfile(path: Path = ROOT / "Procfile") -> dict[str, str]:
    """The process types of the Procfile: name -> command line."""
    out = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.lstrip().startswith("#"):
            out[name.strip()] = command.strip()
    return out


def procfile_args(name: str, env: Mapping[str, str]) -> list[str]:
    """A Procfile command as argv, with $VARIABLES expanded from `env` (as a shell would)."""
    command = procfile()[name]
    expanded = os.path.expandvars(command) if env is os.environ else _expand(command, env)
    return shlex.split(expanded)


def process_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This environment plus `extra`, with this Python's bin folder first on PATH.

    The Procfile names console scripts (gunicorn, feedback-hub); run from the
    virtualenv without activating it, they must still resolve to its installs.
    """
    env = {**os.environ, **extra}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    return env


def _expand(command: str, env: Mapping[str, str]) -> str:
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        return os.path.expandvars(command)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def stop(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Stop a process politely (SIGTERM), then firmly, and close its pipes."""
    stop_together([proc], timeout)


def stop_together(procs: list[subprocess.Popen[Any]], timeout: float = 10.0) -> None:
    """Stop processes politely (SIGTERM to all at once), those still running after
    `timeout` firmly, and close their pipes: a slow one costs its own wait, not the sum."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
