"""Acknowledging `/feedback`: the hub's POST /slack/commands against a minimal Bolt app.

All apps run under the Procfile's gunicorn command with the same settings
(workers/gunicorn_conf.py; only the app target, the command's last argument,
differs), on the same private redis-server, and receive the same signed bodies:
every request is a distinct `/feedback <text>` (its own trigger_id), so every
one is verified, parsed into a Report and durably enqueued before the ephemeral
receipt goes back. The Bolt app (what a team would write instead) does the same
job with the hub's own Report and enqueue code, so the difference measured is
the framework; bolt-plain is Bolt with rq's plain enqueue, as a team would write
it. The floor is a bare app under the same gunicorn that reads the body and
answers, doing nothing else: the most any app could do on this machine.

--worker-class asgi (the default, what the Procfile runs): gunicorn's ASGI
worker, one event loop per worker process. The hub is the Procfile's target;
the Bolt apps are `slack_bolt.async_app.AsyncApp` behind Bolt's ASGI adapter
(what a team would write with Bolt on an ASGI server; its AsyncWebClient needs
aiohttp), and the floor is an ASGI function.

--worker-class gthread reproduces the earlier comparison: every app runs under
gthread (GUNICORN_CMD_ARGS="--worker-class gthread --threads $GUNICORN_THREADS",
8 by default, which gunicorn applies over the config file), the hub as the
Flask WSGI app `app:create_app()`, the Bolt apps as `App` behind Bolt's Flask
adapter, and the floor as a WSGI function.

The load comes from `wrk` (Debian's package) on loopback with a closed loop of
N connections, bounded in time, replaying pre-signed requests (Slack's v0
signature, computed by slack_sdk; valid for 5 minutes, so signed per round).
Without wrk, a Python generator (processes x threads, one keep-alive
connection each) is used and said so.

    .venv/bin/python -m bench.slack_ack_bench [--seconds 10] [--connections 32] [--rounds 3]
        [--worker-class asgi|gthread]

Afterwards the queue is checked: one job per answered request, else it counts as errors.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import importlib.util
import json
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request
from redis import Redis
from redis.exceptions import RedisError

from workers.procs import (
    ROOT,
    free_port,
    process_env,
    procfile,
    procfile_args,
    start_redis,
    stop,
    wait_for_port,
)

if TYPE_CHECKING:
    from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # Slack's documented example secret
TEXT = "The export button does nothing #export\nClicked it twice on the reports page."
# The app targets by worker class; the hub's ASGI target is the Procfile's.
BOLT_APP = "bench.slack_ack_bench:bolt_app()"
BOLT_PLAIN_APP = "bench.slack_ack_bench:bolt_plain_app()"
FLOOR_APP = "bench.slack_ack_bench:floor_app"
HUB_WSGI_APP = "app:create_app()"
BOLT_WSGI_APP = "bench.slack_ack_bench:bolt_wsgi_app()"
BOLT_PLAIN_WSGI_APP = "bench.slack_ack_bench:bolt_plain_wsgi_app()"
FLOOR_WSGI_APP = "bench.slack_ack_bench:floor_wsgi_app"
RECEIPT = json.dumps({"response_type": "ephemeral", "text": "Thanks, filing this now."}).encode()

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


# ---------------------------------------------------------------- ASGI apps (asgi worker)


def bolt_app() -> AsyncSlackRequestHandler:
    """A minimal async Bolt for Python app doing the hub's job: verify, enqueue, acknowledge.

    An ASGI app: AsyncApp behind Bolt's ASGI adapter, as served by any ASGI server.
    """
    from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from integrations.queue import connect
    from integrations.settings import Settings
    from integrations.slack import messages
    from integrations.slack.payloads import SlashCommand
    from integrations.slack.reports import command_report
    from integrations.web import Hub

    settings = Settings.from_env("web")
    assert settings.redis_url and settings.slack_signing_secret
    hub = Hub(settings=settings, redis=connect(settings.redis_url, timeout=1.0))
    # Bolt calls auth.test once per process: SLACK_API_URL points at a Slack sandbox.
    client = AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    bolt = AsyncApp(signing_secret=settings.slack_signing_secret, client=client)

    @bolt.command("/feedback")
    async def feedback(ack: AsyncAck, command: dict[str, Any]) -> None:
        report = command_report(SlashCommand.model_validate(command))
        try:
            await hub.file_report_async(report)
        except RedisError:
            await ack(**messages.could_not_file())
            return
        await ack(**messages.receipt())

    # Bolt's default path is /slack/events.
    return AsyncSlackRequestHandler(bolt, path="/slack/commands")


def bolt_plain_app() -> AsyncSlackRequestHandler:
    """The async Bolt app as a team would write it: the command as Slack sent it, into plain rq."""
    from rq import Queue
    from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from integrations.queue import TICKETS, connect
    from integrations.settings import Settings

    settings = Settings.from_env("web")
    assert settings.redis_url and settings.slack_signing_secret
    tickets = Queue(TICKETS, connection=connect(settings.redis_url, timeout=1.0))
    client = AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    bolt = AsyncApp(signing_secret=settings.slack_signing_secret, client=client)

    @bolt.command("/feedback")
    async def feedback(ack: AsyncAck, command: dict[str, Any]) -> None:
        # No idempotency, no Report, no status: rq's default enqueue of the payload,
        # off the event loop (rq is synchronous).
        try:
            await asyncio.to_thread(tickets.enqueue, "workers.intake.file_report", command)
        except RedisError:
            await ack("Sorry, that did not work. Please try again.")
            return
        await ack("Thanks, filing this now.")

    return AsyncSlackRequestHandler(bolt, path="/slack/commands")


async def floor_app(scope: Scope, receive: Receive, send: Send) -> None:
    """What gunicorn's ASGI worker alone costs: read the body, answer the receipt."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = bool(message.get("more_body", False))
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(RECEIPT)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": RECEIPT})


# ---------------------------------------------------------------- WSGI apps (gthread)


def bolt_wsgi_app() -> Flask:
    """A minimal Bolt for Python app doing the hub's job: verify, enqueue, acknowledge."""
    from slack_bolt import Ack, App
    from slack_bolt.adapter.flask import SlackRequestHandler
    from slack_sdk import WebClient

    from integrations.queue import connect
    from integrations.settings import Settings
    from integrations.slack import messages
    from integrations.slack.payloads import SlashCommand
    from integrations.slack.reports import command_report
    from integrations.web import Hub

    settings = Settings.from_env("web")
    assert settings.redis_url and settings.slack_signing_secret
    hub = Hub(settings=settings, redis=connect(settings.redis_url, timeout=1.0))
    # Bolt calls auth.test once per process: SLACK_API_URL points at a Slack sandbox.
    client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    bolt = App(
        signing_secret=settings.slack_signing_secret,
        client=client,
        token_verification_enabled=False,
    )

    @bolt.command("/feedback")
    def feedback(ack: Ack, command: dict[str, Any]) -> None:
        report = command_report(SlashCommand.model_validate(command))
        try:
            hub.file_report(report)
        except RedisError:
            ack(**messages.could_not_file())
            return
        ack(**messages.receipt())

    app = Flask("bolt_bench")
    handler = SlackRequestHandler(bolt)

    @app.post("/slack/commands")
    def commands() -> Response:
        response: Response = handler.handle(request)
        return response

    return app


def bolt_plain_wsgi_app() -> Flask:
    """The Bolt app as a team would write it: the command as Slack sent it, into plain rq."""
    from rq import Queue
    from slack_bolt import Ack, App
    from slack_bolt.adapter.flask import SlackRequestHandler
    from slack_sdk import WebClient

    from integrations.queue import TICKETS, connect
    from integrations.settings import Settings

    settings = Settings.from_env("web")
    assert settings.redis_url and settings.slack_signing_secret
    tickets = Queue(TICKETS, connection=connect(settings.redis_url, timeout=1.0))
    client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    bolt = App(
        signing_secret=settings.slack_signing_secret,
        client=client,
        token_verification_enabled=False,
    )

    @bolt.command("/feedback")
    def feedback(ack: Ack, command: dict[str, Any]) -> None:
        # No idempotency, no Report, no status: rq's default enqueue of the payload.
        try:
            tickets.enqueue("workers.intake.file_report", command)
        except RedisError:
            ack("Sorry, that did not work. Please try again.")
            return
        ack("Thanks, filing this now.")

    app = Flask("bolt_plain_bench")
    handler = SlackRequestHandler(bolt)

    @app.post("/slack/commands")
    def commands() -> Response:
        response: Response = handler.handle(request)
        return response

    return app


def floor_wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """What gunicorn alone costs: read the body, answer the receipt, do nothing else."""
    environ["wsgi.input"].read()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(RECEIPT)))]
    )
    return [RECEIPT]


# ---------------------------------------------------------------- requests


def bodies(count: int) -> list[bytes]:
    """`count` distinct `/feedback` bodies, shaped like Slack's (docs' example fields)."""
    from integrations.slack.testing import feedback_body

    # Fifty people, each sending many.
    return [feedback_body(i, TEXT, user_id=f"U{2147483697 + i % 50}") for i in range(count)]


def signed(all_bodies: list[bytes]) -> list[tuple[str, str, bytes]]:
    """(timestamp, signature, body) for each body, signed now with slack_sdk."""
    from slack_sdk.signature import SignatureVerifier

    verifier = SignatureVerifier(SIGNING_SECRET)
    ts = str(int(time.time()))
    return [(ts, verifier.generate_signature(timestamp=ts, body=b) or "", b) for b in all_bodies]


# ---------------------------------------------------------------- load: wrk

WRK_SCRIPT = r"""
local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  reqs = {}
  wrapped = 0
  local n, i = 0, 0
  for line in io.lines(args[1]) do
    i = i + 1
    if (i - id) % tonumber(args[2]) == 0 then
      local ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      n = n + 1
      reqs[n] = wrk.format("POST", "/slack/commands", {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Slack-Request-Timestamp"] = ts,
        ["X-Slack-Signature"] = sig,
      }, body)
    end
  end
  nreqs = n
  pos = 0
end

function request()
  pos = pos + 1
  if pos > nreqs then
    pos = 1
    wrapped = wrapped + 1
  end
  return reqs[pos]
end

function done(summary, latency, requests)
  local wraps = 0
  for _, t in ipairs(threads) do wraps = wraps + (t:get("wrapped") or 0) end
  local e = summary.errors
  io.write(string.format(
    '@@{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"wrapped":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, wraps))
end
"""


@dataclass
class Result:
    """One measured run."""

    app: str
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    jobs: int
    # CPU seconds the app's gunicorn processes and redis-server used during the run.
    app_cpu: float
    redis_cpu: float
    note: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms(self) -> float:
        """The app's CPU per answered request: what throughput costs when the CPUs are full."""
        return self.app_cpu / max(self.requests, 1) * 1000


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its descendants, from /proc."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / _TICK
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
    except (OSError, ValueError, IndexError):
        pass
    return total


def run_wrk(
    port: int, reqs: list[tuple[str, str, bytes]], seconds: float, connections: int, work: Path
) -> dict[str, Any]:
    threads = 2
    data = work / "requests.tsv"
    with data.open("wb") as lines:
        for ts, sig, body in reqs:
            lines.write(f"{ts}\t{sig}\t".encode() + body + b"\n")
    script = work / "slack.lua"
    script.write_text(WRK_SCRIPT)
    command = [
        "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{int(seconds)}s",
        "--timeout", "5s", "-s", str(script), f"http://127.0.0.1:{port}",
        "--", str(data), str(threads),
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 120)
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("@@"))
    stats: dict[str, Any] = json.loads(line[2:])
    stats["command"] = " ".join(command)
    return stats


# ---------------------------------------------------------------- load: Python fallback


def _py_worker(
    port: int, reqs: list[tuple[str, str, bytes]], deadline: float, threads: int, out: Any
) -> None:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def loop(mine: list[tuple[str, str, bytes]]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        i = 0
        while time.monotonic() < deadline and mine:
            ts, sig, body = mine[i % len(mine)]
            i += 1
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": sig,
            }
            start = time.perf_counter()
            try:
                conn.request("POST", "/slack/commands", body, headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            took = time.perf_counter() - start
            with lock:
                latencies.append(took)
                errors[0] += not ok

    workers = [threading.Thread(target=loop, args=(reqs[t::threads],)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put((latencies, errors[0]))


def run_python(
    port: int, reqs: list[tuple[str, str, bytes]], seconds: float, connections: int
) -> dict[str, Any]:
    procs_n = min(4, connections)
    per = connections // procs_n
    queue: Any = multiprocessing.Queue()
    start = time.monotonic()
    deadline = start + seconds
    procs = [
        multiprocessing.Process(
            target=_py_worker, args=(port, reqs[p::procs_n], deadline, per, queue)
        )
        for p in range(procs_n)
    ]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    latencies = sorted(x for lat, _ in results for x in lat)
    q = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "duration_us": int((time.monotonic() - start) * 1e6),
        "status": sum(e for _, e in results),
        "p50_us": int(q[49] * 1e6),
        "p99_us": int(q[98] * 1e6),
        "wrapped": 0,
        "command": f"python load generator: {procs_n} processes x {per} threads",
    }


# ---------------------------------------------------------------- the run


def measure(
    name: str,
    target: str,
    env: dict[str, str],
    redis: Redis,
    redis_pid: int,
    pool: list[bytes],
    args: argparse.Namespace,
    work: Path,
) -> Result:
    redis.flushall()
    port = free_port()
    full = process_env({**env, "PORT": str(port), "PYTHONPATH": str(ROOT)})
    argv = procfile_args("web", full)
    argv[-1] = target
    with (work / f"{name}.log").open("w") as log:
        proc = subprocess.Popen(argv, env=full, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=60, proc=proc)
        load = run_wrk if shutil.which("wrk") and not args.python_load else None
        # Warm-up: imports, Bolt's auth.test, connection pools; then a clean queue.
        warm = signed(bodies(200))
        if load:
            load(port, warm, 2.0, args.connections, work)
        else:
            run_python(port, warm, 2, args.connections)
        # Requests still in the app when the warm-up's load stopped are enqueued after it:
        # wait for them, or their jobs would count against the measured round.
        settle(redis)
        redis.flushall()
        reqs = signed(pool)
        cpu0, redis0 = cpu_seconds(proc.pid), cpu_seconds(redis_pid)
        stats = (
            load(port, reqs, args.seconds, args.connections, work)
            if load
            else run_python(port, reqs, args.seconds, args.connections)
        )
        app_cpu, redis_cpu = cpu_seconds(proc.pid) - cpu0, cpu_seconds(redis_pid) - redis0
    finally:
        stop(proc)
    from integrations.queue import TICKETS, queue

    jobs = queue(redis, TICKETS).count
    answered = int(stats["requests"])
    kinds = {k: int(stats.get(k, 0)) for k in ("connect", "read", "write", "status", "timeout")}
    errors = sum(kinds.values())
    note = ", ".join(f"{n} {kind}" for kind, n in kinds.items() if n)
    # Every answered request must be a queued job (the pool is large enough not to repeat).
    if name == "floor":
        pass  # queues nothing by design
    elif not stats.get("wrapped") and not answered <= jobs <= answered + args.connections:
        note = f"{note}; queued {jobs} jobs for {answered} answers".lstrip("; ")
        errors += abs(jobs - answered)
    if stats.get("wrapped") and name != "floor":
        note = "request pool wrapped: repeats were deduplicated; use a larger --pool"
    # One line per load command, whatever port each app got.
    args.commands.add(re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", stats["command"]))
    return Result(
        name, answered, stats["duration_us"] / 1e6, errors, stats["p50_us"] / 1000,
        stats["p99_us"] / 1000, jobs, app_cpu, redis_cpu, note,
    )  # fmt: skip


def settle(redis: Redis, quiet_s: float = 0.3, timeout_s: float = 10.0) -> None:
    """Wait until the tickets queue has stopped growing."""
    from integrations.queue import TICKETS, queue

    deadline = time.monotonic() + timeout_s
    count = queue(redis, TICKETS).count
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        count, before = queue(redis, TICKETS).count, count
        if count == before:
            return


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per app, alternating")
    parser.add_argument(
        "--pool",
        type=int,
        default=None,
        help="distinct signed requests (default: 15,000 per second of load, so none repeats)",
    )
    parser.add_argument("--python-load", action="store_true", help="do not use wrk")
    parser.add_argument(
        "--apps", default="hub,bolt,bolt-plain,floor", help="comma-separated: which apps to run"
    )
    parser.add_argument(
        "--worker-class",
        choices=("asgi", "gthread"),
        default="asgi",
        help="asgi: the Procfile's ASGI apps; gthread: every app as WSGI under gthread",
    )
    args = parser.parse_args()
    if args.pool is None:
        args.pool = max(20_000, int(args.seconds * 15_000))
    wanted = args.apps.split(",")
    needed = ["slack_bolt"] + (["aiohttp"] if args.worker_class == "asgi" else [])
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if {"bolt", "bolt-plain"} & set(wanted) and missing:
        parser.error(
            f"the Bolt apps need {', '.join(missing)}: .venv/bin/pip install -e '.[bench]'"
        )
    if not shutil.which("wrk") and not args.python_load:
        print("wrk not found (apt-get install wrk): the Python load generator", file=sys.stderr)
    args.commands = set()
    args.load_before = _loadavg()

    from integrations.sandbox import SlackSandbox

    work = Path(tempfile.mkdtemp(prefix="slack-ack-bench-"))
    redis_port = free_port()
    redis_proc = start_redis(redis_port, work / "redis")
    slack = SlackSandbox(token=None)
    slack.start()
    redis = Redis(port=redis_port)
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": "xoxb-bench-0000",
        "SLACK_API_URL": slack.api_url,
    }
    for name in ("WEB_CONCURRENCY", "GUNICORN_THREADS"):
        if name in os.environ:
            env[name] = os.environ[name]
    workers = env.get("WEB_CONCURRENCY", "2")
    threads = env.get("GUNICORN_THREADS", "8")
    if args.worker_class == "gthread":
        # gunicorn applies GUNICORN_CMD_ARGS over the config file's settings.
        env["GUNICORN_CMD_ARGS"] = f"--worker-class gthread --threads {threads}"
        apps = (
            ("hub", HUB_WSGI_APP),
            ("bolt", BOLT_WSGI_APP),
            ("bolt-plain", BOLT_PLAIN_WSGI_APP),
            ("floor", FLOOR_WSGI_APP),
        )
    else:
        apps = (
            ("hub", procfile_args("web", {**env, "PORT": "0"})[-1]),
            ("bolt", BOLT_APP),
            ("bolt-plain", BOLT_PLAIN_APP),
            ("floor", FLOOR_APP),
        )
    pool = bodies(args.pool)
    results: list[Result] = []
    try:
        for _ in range(args.rounds):
            for name, target in apps:
                if name not in wanted:
                    continue
                results.append(measure(name, target, env, redis, redis_proc.pid, pool, args, work))
                r = results[-1]
                print(
                    f"  {r.app:10} {r.rps:8.0f} req/s  p50 {r.p50_ms:6.2f} ms  "
                    f"p99 {r.p99_ms:6.2f} ms  errors {r.errors}  cpu {r.cpu_ms:.2f} ms/req  "
                    f"{r.note}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        slack.stop()
        stop(redis_proc)
        redis.close()

    print(f"\nPOST /slack/commands through gunicorn ({procfile()['web']})")
    if args.worker_class == "gthread":
        server = f"{workers} workers x {threads} threads (gthread)"
    else:
        server = f"{workers} workers, asgi worker (one event loop each)"
    print(
        f"gunicorn: {server}; {args.connections} connections, "
        f"{args.seconds:.0f} s x {args.rounds} rounds each; {os.cpu_count()} CPUs"
    )
    print(f"load: {'; '.join(sorted(args.commands))}")
    print(f"load average before / after: {args.load_before} / {_loadavg()}\n")
    print(
        f"{'app':11}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'requests':>10}"
        f"{'app CPU ms/req':>16}{'redis CPU ms/req':>18}"
    )
    medians = {}
    for name in ("hub", "bolt", "bolt-plain", "floor"):
        mine = [r for r in results if r.app == name]
        if not mine:
            continue
        best = sorted(mine, key=lambda r: r.rps)[len(mine) // 2]  # the median round
        medians[name] = best
        errors = sum(r.errors for r in mine)
        print(
            f"{name:11}{best.rps:9.0f}{best.p50_ms:9.2f}{best.p99_ms:9.2f}"
            f"{errors:8d}{sum(r.requests for r in mine):10d}{best.cpu_ms:16.2f}"
            f"{best.redis_cpu / max(best.requests, 1) * 1000:18.3f}"
        )
    print(
        "floor: the same gunicorn answering without verifying or queueing anything, "
        "the ceiling for any app here"
    )
    print()
    for other, what in (
        ("bolt", "Bolt with the hub's own Report and enqueue code: the frameworks alone"),
        ("bolt-plain", "Bolt + plain rq enqueue of the payload, as a team would write it"),
    ):
        if "hub" not in medians or other not in medians:
            continue
        ratio = medians["hub"].rps / medians[other].rps
        cpu_ratio = medians[other].cpu_ms / medians["hub"].cpu_ms
        print(
            f"hub / {other}: throughput {ratio:.2f}x, CPU per request {cpu_ratio:.2f}x less "
            f"(median rounds; {what})"
        )
        # Each round runs the apps one after the other, minutes apart at most: its own
        # ratio is the least touched by the machine's speed drifting between rounds.
        paired = [
            hub.rps / them.rps
            for hub, them in zip(
                [r for r in results if r.app == "hub"],
                [r for r in results if r.app == other],
                strict=False,
            )
        ]
        print(
            f"  round by round: {' '.join(f'{x:.2f}x' for x in paired)} "
            f"(median {statistics.median(paired):.2f}x)"
        )
    command = ["python", "-m", "bench.slack_ack_bench", *sys.argv[1:]]
    print(f"command: {' '.join(command)}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
