"""`feedback-hub dev`: the hub on one machine, with no accounts needed (the README's `make run`)."""

from __future__ import annotations

import contextlib
import secrets
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from workers.procs import (
    ROOT,
    free_port,
    process_env,
    procfile_args,
    start_redis,
    stop,
    wait_for_port,
)


def say(line: str = "") -> None:
    print(f"feedback-hub dev | {line}" if line else "", flush=True)


def run_dev() -> int:
    """Start Redis (if needed), the web and worker processes; stop them all on Ctrl-C."""
    from integrations.settings import Settings, _load_dotenv

    _load_dotenv()
    env = process_env({})
    env.setdefault("PORT", "5000")
    procs: list[subprocess.Popen[bytes]] = []
    state = Path(tempfile.mkdtemp(prefix="feedback-hub-dev-"))

    if not env.get("REDIS_URL"):
        port = free_port()
        procs.append(start_redis(port, state / "redis", appendonly=True))
        env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        say(f"REDIS_URL is not set: started a private redis-server at {env['REDIS_URL']}")

    if not env.get("SLACK_SIGNING_SECRET"):
        env["SLACK_SIGNING_SECRET"] = secrets.token_hex(16)
        say("SLACK_SIGNING_SECRET is not set: using a throwaway one for local requests")

    try:
        web = subprocess.Popen(procfile_args("web", env), env=env, cwd=ROOT)
        procs.append(web)
        wait_for_port(int(env["PORT"]), timeout=20, proc=web)
        missing = Settings.from_env("cli", env).missing("worker")
        if missing:
            say(f"worker not started: it needs {', '.join(missing)} (see /readyz)")
        else:
            procs.append(subprocess.Popen(procfile_args("worker", env), env=env, cwd=ROOT))
        say()
        say(f"web     http://127.0.0.1:{env['PORT']}  (try /healthz and /readyz)")
        say(f"redis   {env['REDIS_URL']}")
        say("Ctrl-C stops everything.")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        return _wait(procs)
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in reversed(procs):
            stop(proc)


def _wait(procs: list[subprocess.Popen[bytes]]) -> int:
    while True:
        for proc in procs:
            code = proc.poll()
            if code is not None:
                say(f"a process exited with {code}: {proc.args!r}")
                return code or 1
        with contextlib.suppress(subprocess.TimeoutExpired):
            procs[0].wait(1.0)
