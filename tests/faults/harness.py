"""The fault-injection harness: the hub's real processes, reports sent to them, and the proof.

A `Cluster` runs what production runs: redis-server (AOF on), the sandboxes
(`feedback-hub sandbox`, Zendesk and Slack over HTTP), the Procfile's web
(gunicorn) and N Procfile workers (`feedback-hub worker`). `send` posts signed
reports (Slack `/feedback` and mobile JSON) concurrently and records which were
acknowledged; `drain` waits until the queues are empty; `verdict` compares the
tickets in the Zendesk sandbox with what was acknowledged.

Acknowledged means what the sender saw: a mobile 202, or Slack's 200 with the
receipt ("could not file, please retry" is a 200 too, and is not an
acknowledgement). Each acknowledged report must be exactly one ticket, found by
its external_id: the hub sets it to "feedback-hub-" + the report's digest, which
the harness computes the way the intake does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import requests
from redis import Redis
from rq import Worker
from rq.executions import Execution
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, SCHEDULER_LOCKING_KEY_TEMPLATE

from integrations.queue import QUEUES, TICKETS, queue
from integrations.report import digest
from integrations.sandbox.signing import slack_headers
from integrations.slack import messages
from integrations.slack.payloads import parse_command
from integrations.slack.reports import command_report
from integrations.slack.testing import command_body
from workers.maintenance import lost_jobs, requeue_lost
from workers.procs import (
    ROOT,
    free_port,
    process_env,
    procfile_args,
    start_redis,
    stop,
    wait_for_port,
)

# Secrets of the runs; test_security.py uses real-looking ones of its own.
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ZENDESK_EMAIL = "agent@example.com"
ZENDESK_TOKEN = "zendesk-fault-token-0000"
SLACK_TOKEN = "xoxb-fault-token-0000"
MOBILE_KEYS = {"ios-app": "mobile-key-ios-0000", "android-app": "mobile-key-android-0000"}
# The groups the default rules route to, as a real Zendesk account would have them.
GROUPS = ("Engineering", "Billing", "Mobile", "Product", "Security", "Accounts")
# The Slack channels the default rules post to, as a real workspace would have them.
CHANNELS = ("#mobile-eng", "#eng-oncall", "#support-oncall")
# Slack users the sandbox knows (with emails): the requester is found by users.info.
SLACK_USERS = ("U0REPORTER", "U0ENGINEER", "U0SUPPORT")
# Faster rq retries than production's 10 s, 30 s, ...: the suite waits for them. The
# first is longer than any injected delay, so a request of a killed job has landed
# before the retry looks for its ticket (docs/operations.md, "Retry schedule").
TEST_RETRY_INTERVALS = "2,3,5,8"
# The external_id of a problem ticket the hub opens for a group of related reports.
PROBLEM_PREFIX = "feedback-hub-problem-"

Kind = Literal["slack", "mobile"]


@dataclass
class Sent:
    """One report as the sender saw it."""

    kind: Kind
    external_id: str
    status: int | None  # None: no answer (connection refused, timeout)
    acknowledged: bool
    token: str


@dataclass
class Verdict:
    """What the Zendesk sandbox holds compared with what was acknowledged."""

    scenario: str
    sent: int
    acknowledged: int
    refused: int
    tickets: int
    duplicates: int
    missing: int
    unexpected: int
    dead_letters: int
    throttled: int  # 429s Zendesk answered
    server_errors: int  # 5xx Zendesk answered
    extra: dict[str, Any] = field(default_factory=dict)
    # Which external_ids were missing or doubled, for the failure message.
    missing_ids: list[str] = field(default_factory=list)
    duplicate_ids: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line with every count, for `pytest -s` and assertion messages."""
        counts = (
            f"sent={self.sent} acknowledged={self.acknowledged} refused={self.refused} "
            f"tickets={self.tickets} duplicates={self.duplicates} missing={self.missing} "
            f"unexpected={self.unexpected} dead_letters={self.dead_letters} "
            f"429s={self.throttled} 5xx={self.server_errors}"
        )
        more = " ".join(f"{k}={v}" for k, v in self.extra.items())
        return f"[{self.scenario}] {counts}{' ' + more if more else ''}"

    @property
    def exactly_once(self) -> bool:
        """Every acknowledged report is exactly one ticket, and no ticket is unaccounted for."""
        return self.duplicates == 0 and self.missing == 0 and self.unexpected == 0


class Cluster:
    """The hub's processes on a private Redis and the sandboxes; see the module docstring."""

    def __init__(
        self,
        workdir: Path,
        *,
        workers: int = 3,
        env: dict[str, str] | None = None,
        secrets: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.worker_count = workers
        self.redis_port = free_port()
        self.redis_dir = workdir / "redis"
        self.zendesk_port = free_port()
        self.slack_port = free_port()
        self.web_port = free_port()
        s = {
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_BOT_TOKEN": SLACK_TOKEN,
            "ZENDESK_API_TOKEN": ZENDESK_TOKEN,
            "ZENDESK_WEBHOOK_SECRET": "zendesk-webhook-secret-0000",
            "MOBILE_API_KEYS": ",".join(f"{a}:{k}" for a, k in MOBILE_KEYS.items()),
            "REDIS_PASSWORD": "",
            **(secrets or {}),
        }
        self.secrets = s
        self.mobile_keys = dict(
            pair.split(":", 1) for pair in s["MOBILE_API_KEYS"].split(",") if pair
        )
        password = s["REDIS_PASSWORD"]
        auth = f":{password}@" if password else ""
        self.redis_url = f"redis://{auth}127.0.0.1:{self.redis_port}/0"
        self.env = {
            "REDIS_URL": self.redis_url,
            "SLACK_SIGNING_SECRET": s["SLACK_SIGNING_SECRET"],
            "SLACK_BOT_TOKEN": s["SLACK_BOT_TOKEN"],
            "SLACK_API_URL": f"http://127.0.0.1:{self.slack_port}/api/",
            "SLACK_OPS_CHANNEL": "C0OPS",
            "ZENDESK_URL": f"http://127.0.0.1:{self.zendesk_port}",
            "ZENDESK_EMAIL": ZENDESK_EMAIL,
            "ZENDESK_API_TOKEN": s["ZENDESK_API_TOKEN"],
            "ZENDESK_WEBHOOK_SECRET": s["ZENDESK_WEBHOOK_SECRET"],
            "MOBILE_API_KEYS": s["MOBILE_API_KEYS"],
            # The suite sends bursts from one "app"; the per-app limit is not under test here.
            "MOBILE_RATE_LIMIT": "100000",
            "HUB_RETRY_INTERVALS": TEST_RETRY_INTERVALS,
            "PORT": str(self.web_port),
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        self.redis_proc: subprocess.Popen[bytes] | None = None
        self.sandbox_proc: subprocess.Popen[str] | None = None
        self.web_proc: subprocess.Popen[str] | None = None
        self.workers: list[subprocess.Popen[str]] = []
        self.worker_starts = 0
        self.killed_pids: set[int] = set()
        self._lock = threading.Lock()
        self._redis: Redis | None = None

    # ------------------------------------------------------------ processes

    @property
    def url(self) -> str:
        """The hub's base URL."""
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def zendesk_url(self) -> str:
        """The Zendesk sandbox's base URL."""
        return self.env["ZENDESK_URL"]

    @property
    def redis(self) -> Redis:
        """A client of the cluster's Redis (reconnects after a restart)."""
        if self._redis is None:
            self._redis = Redis.from_url(self.redis_url, socket_timeout=5)
        return self._redis

    def start(self) -> Cluster:
        """Start everything and wait until each process listens (or has registered)."""
        self.start_redis()
        self.sandbox_proc = self._spawn(
            "sandbox",
            [
                "feedback-hub", "sandbox",
                "--zendesk-port", str(self.zendesk_port),
                "--slack-port", str(self.slack_port),
                "--zendesk-email", ZENDESK_EMAIL,
                "--zendesk-token", self.secrets["ZENDESK_API_TOKEN"],
                "--slack-token", self.secrets["SLACK_BOT_TOKEN"],
                *(arg for channel in CHANNELS for arg in ("--channel", channel)),
            ],
        )  # fmt: skip
        wait_for_port(self.zendesk_port, timeout=30, proc=self.sandbox_proc)
        wait_for_port(self.slack_port, timeout=30, proc=self.sandbox_proc)
        for name in GROUPS:
            self.zendesk_api("POST", "/api/v2/groups.json", {"group": {"name": name}})
        self.web_proc = self._spawn("web", procfile_args("web", self._full_env()))
        for _ in range(self.worker_count):
            self.start_worker()
        wait_for_port(self.web_port, timeout=30, proc=self.web_proc)
        self.wait_for(lambda: len(self.live_workers()) >= self.worker_count, "workers registered")
        return self

    def stop(self) -> None:
        """Stop every process (workers first, so none is left mid-job on a dead Redis)."""
        for proc in self.workers:
            self._stop_group(proc)
        for other in (self.web_proc, self.sandbox_proc):
            if other is not None:
                stop(other)
        if self.redis_proc is not None:
            stop(self.redis_proc)
        if self._redis is not None:
            self._redis.close()

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _full_env(self) -> dict[str, str]:
        return process_env(self.env)

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[str]:
        # Own session: a worker, its scheduler and its horse can be killed as one group.
        log = (self.logs / f"{name}.log").open("a")
        try:
            return subprocess.Popen(
                args,
                env=self._full_env(),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        finally:
            log.close()

    def start_redis(self) -> None:
        """Start (or restart) redis-server on the cluster's port and directory, AOF on."""
        self.redis_proc = start_redis(self.redis_port, self.redis_dir, appendonly=True)
        password = self.secrets["REDIS_PASSWORD"]
        if password:
            Redis(port=self.redis_port).config_set("requirepass", password)

    def restart_redis(self, down_for: float = 1.0) -> None:
        """Stop Redis as an operator or the platform would (SIGTERM: AOF flushed), then start it."""
        assert self.redis_proc is not None
        stop(self.redis_proc)
        time.sleep(down_for)  # the outage itself: requests meanwhile must be refused, not lost
        self.start_redis()

    def start_worker(self) -> subprocess.Popen[str]:
        """One more Procfile worker."""
        self.worker_starts += 1
        args = procfile_args("worker", self._full_env())
        proc = self._spawn(f"worker-{self.worker_starts}", args)
        self.workers.append(proc)
        return proc

    def supervise(self) -> int:
        """Restart workers that exited, as the platform restarts a dyno; returns how many."""
        restarted = 0
        for proc in list(self.workers):
            if proc.poll() is not None:
                self.workers.remove(proc)
                self.start_worker()
                restarted += 1
        return restarted

    def _stop_group(self, proc: subprocess.Popen[str]) -> None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in _children(proc.pid):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def horse_of(self, proc: subprocess.Popen[str]) -> int | None:
        """The pid of the worker's work horse (the forked child running a job), if one runs."""
        for pid in _children(proc.pid):
            # rq's horse calls setpgrp(); the scheduler child stays in the worker's group.
            with suppress(ProcessLookupError):
                if os.getpgid(pid) == pid:
                    return pid
        return None

    def kill_busy_worker(self, *, horse_only: bool) -> bool:
        """SIGKILL a worker that is mid-job: its horse alone (an OOM kill), or the whole worker
        with its scheduler and horse (a dyno killed); returns False when no worker was busy."""
        for proc in self.workers:
            horse = self.horse_of(proc)
            if proc.poll() is not None or horse is None:
                continue
            with suppress(ProcessLookupError):
                os.kill(horse, signal.SIGKILL)
            self.killed_pids.add(horse)
            if not horse_only:
                pids = [proc.pid, *_children(proc.pid)]
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                self.killed_pids.update(pids)
            return True
        return False

    def live_workers(self) -> list[Any]:
        """rq's records of the workers whose process is alive."""
        alive = {p.pid for p in self.workers if p.poll() is None}
        return [w for w in Worker.all(connection=self.redis) if w.pid in alive]

    # ------------------------------------------------------------ the sandboxes

    def zendesk_api(self, method: str, path: str, body: Any = None) -> requests.Response:
        """An authenticated call to the Zendesk sandbox, as an agent would make it."""
        response = requests.request(
            method,
            f"{self.zendesk_url}{path}",
            json=body,
            auth=(f"{ZENDESK_EMAIL}/token", self.secrets["ZENDESK_API_TOKEN"]),
            timeout=10,
        )
        response.raise_for_status()
        return response

    def faults(self, **changes: Any) -> None:
        """Change the Zendesk sandbox's injected faults (server.py Faults)."""
        response = requests.post(f"{self.zendesk_url}/__sandbox/faults", json=changes, timeout=10)
        response.raise_for_status()

    def zendesk_stats(self) -> dict[str, Any]:
        """Requests the Zendesk sandbox answered, by status and by route."""
        stats: dict[str, Any] = requests.get(
            f"{self.zendesk_url}/__sandbox/stats", timeout=10
        ).json()
        return stats

    def tickets(self) -> list[dict[str, Any]]:
        """Every ticket in the Zendesk sandbox."""
        found: list[dict[str, Any]] = requests.get(
            f"{self.zendesk_url}/__sandbox/tickets", timeout=30
        ).json()["tickets"]
        return found

    # ------------------------------------------------------------ reports

    def slack_report(self, token: str, user: str) -> tuple[bytes, str]:
        """A `/feedback` form body carrying `token`, and the external_id its ticket will have."""
        body = command_body(
            token="gIkuvaNzQIHg97ATvDxqgjtO",
            team_id="T0SANDBOX",
            team_domain="sandbox",
            channel_id="C0GENERAL",
            channel_name="general",
            user_id=user,
            user_name=user.lower(),
            command="/feedback",
            text=f"Export fails [{token}]\nThe button does nothing on the reports page.",
            response_url=f"http://127.0.0.1:{self.slack_port}/response/{token}",
            trigger_id=f"{uuid.uuid4().int % 10**12}.738474920.{token}",
            api_app_id="A0SANDBOX",
        )
        return body, command_report(parse_command(body)).external_id

    def post_slack(self, body: bytes, timeout: float = 10.0) -> requests.Response:
        """POST a signed slash command to the hub."""
        headers = slack_headers(self.secrets["SLACK_SIGNING_SECRET"], body)
        return requests.post(
            f"{self.url}/slack/commands", data=body, headers=headers, timeout=timeout
        )

    def mobile_report(self, token: str) -> dict[str, Any]:
        """A mobile bug report carrying `token`."""
        return {
            "description": f"Search never loads [{token}]",
            "reporter": {"email": "ada@example.com", "name": "Ada Reporter"},
            "app": {"id": "com.example.shop", "version": "5.2.1", "build": "742"},
            "device": {"model": "Pixel 8", "os": "Android", "os_version": "14"},
        }

    def post_mobile(
        self, report: dict[str, Any], key: str, app_id: str = "ios-app", timeout: float = 10.0
    ) -> requests.Response:
        """POST a mobile report with an Idempotency-Key."""
        headers = {
            "Authorization": f"Bearer {self.mobile_keys[app_id]}",
            "Idempotency-Key": key,
        }
        return requests.post(
            f"{self.url}/api/v1/bug-reports", json=report, headers=headers, timeout=timeout
        )

    def send_one(self, kind: Kind, n: int) -> Sent:
        """Send one report; never raises for what the hub (or the network) answered."""
        token = f"r{n}-{uuid.uuid4().hex[:8]}"
        status: int | None = None
        acknowledged = False
        if kind == "slack":
            body, external_id = self.slack_report(token, SLACK_USERS[n % len(SLACK_USERS)])
            with suppress(requests.RequestException):
                response = self.post_slack(body)
                status = response.status_code
                acknowledged = status == 200 and _json(response) == messages.receipt()
        else:
            app_id = "ios-app" if n % 2 else "android-app"
            key = str(uuid.uuid4())
            # The intake's report id: digest("mobile", "<app>:<Idempotency-Key>").
            external_id = f"feedback-hub-{digest('mobile', f'{app_id}:{key}')}"
            with suppress(requests.RequestException):
                response = self.post_mobile(self.mobile_report(token), key, app_id)
                status = response.status_code
                acknowledged = status == 202
                if acknowledged:
                    assert f"feedback-hub-{response.json()['id']}" == external_id
        return Sent(kind, external_id, status, acknowledged, token)

    def send(
        self, count: int, *, start: int = 0, concurrency: int = 8, spread: float = 0.0
    ) -> list[Sent]:
        """Send `count` reports (Slack and mobile alternating) from `concurrency` threads.

        With `spread`, the sends are paced over that many seconds (so a fault can
        land in the middle of them).
        """
        gap = spread / count if count else 0.0

        def one(n: int) -> Sent:
            if gap:
                time.sleep(max(0.0, t0 + (n - start) * gap - time.monotonic()))
            return self.send_one("slack" if n % 2 == 0 else "mobile", n)

        t0 = time.monotonic()
        with ThreadPoolExecutor(concurrency) as pool:
            return list(pool.map(one, range(start, start + count)))

    # ------------------------------------------------------------ waiting

    def wait_for(self, probe: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
        """Poll `probe` until it answers something truthy, or fail saying what and the logs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with suppress(Exception):
                found = probe()
                if found:
                    return found
            time.sleep(0.1)
        raise AssertionError(f"not within {timeout}s: {what}\n{self.log_tail()}")

    def backlog(self) -> dict[str, int]:
        """Jobs not done yet, across the hub's queues: queued, started, scheduled."""
        out: Counter[str] = Counter()
        for name in QUEUES:
            q = queue(self.redis, name)
            out["queued"] += q.count
            out["started"] += StartedJobRegistry(queue=q).count
            out["scheduled"] += ScheduledJobRegistry(queue=q).count
        return dict(out)

    def drain(self, timeout: float = 90.0, *, hands_off: bool = False) -> dict[str, int]:
        """Wait until no job is queued, running or scheduled (restarting exited workers, and
        recovering jobs of killed workers as rq's maintenance would); returns what was done.

        With `hands_off`, only wait: the workers must get there on their own.
        """
        done: Counter[str] = Counter()
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            if hands_off:
                try:
                    if not any(self.backlog().values()) and not lost_jobs(self.redis):
                        if quiet_since is not None and time.monotonic() - quiet_since > 0.5:
                            return dict(done)
                        quiet_since = quiet_since or time.monotonic()
                    else:
                        quiet_since = None
                except Exception:  # Redis restarting: wait for it
                    quiet_since = None
                time.sleep(0.2)
                continue
            done["restarted"] += self.supervise()
            try:
                left = self.backlog()
            except Exception:  # Redis restarting: the workers wait for it, and so do we
                time.sleep(0.2)
                continue
            if not any(left.values()):
                if lost_jobs(self.redis):
                    # A job rq popped and lost (workers/maintenance.py): the workers'
                    # maintenance queues it again; run here so the suite need not wait.
                    done["lost_requeued"] += len(requeue_lost(self.redis, min_age=1.0))
                    quiet_since = None
                # Twice in a row, a moment apart: a job between registries is not "done".
                elif quiet_since is not None and time.monotonic() - quiet_since > 0.5:
                    return dict(done)
                else:
                    quiet_since = quiet_since or time.monotonic()
            else:
                quiet_since = None
                if left["started"] and not left["queued"]:
                    done["recovered"] += self.recover_abandoned()
                if left["scheduled"] and self.take_over_dead_scheduler():
                    done["scheduler_failovers"] += 1
            time.sleep(0.2)
        raise AssertionError(
            f"the queues did not drain within {timeout}s: {self.backlog()}\n{self.log_tail()}"
        )

    def recover_abandoned(self) -> int:
        """Hand back jobs whose worker died mid-job, as rq's maintenance does on its own.

        rq keeps a job's entry in the started registry until its heartbeat lapses
        (the job timeout or 30 s, whichever is shorter, plus 60 s), and a worker's
        maintenance (every 10 minutes by default) then retries it. Here a lapsed
        heartbeat is simulated for the entries of workers that are no longer alive,
        and rq's own cleanup does the rest: so the suite does not wait those
        minutes, and a live worker's job is never touched. docs/operations.md
        says what production relies on instead.
        """
        alive = {p.pid for p in self.workers if p.poll() is None}
        live_names = {w.name for w in Worker.all(connection=self.redis) if w.pid in alive}
        recovered = 0
        for name in QUEUES:
            registry = StartedJobRegistry(queue=queue(self.redis, name))
            members: Iterable[Any] = self.redis.zrange(registry.key, 0, -1)
            for member in members:
                job_id, _, execution_id = _text(member).partition(":")
                try:
                    execution = Execution.fetch(execution_id, job_id, connection=self.redis)
                    owner = execution.worker_name
                except Exception:
                    owner = ""  # the execution record expired with its dead worker
                if owner in live_names:
                    continue
                self.redis.zadd(registry.key, {member: 1}, xx=True)
                recovered += 1
            registry.cleanup(timestamp=1)
        return recovered

    def take_over_dead_scheduler(self) -> bool:
        """When the worker running rq's scheduler was killed, let another take over.

        Its lock lapses after 61 s and a live worker's maintenance (every
        workers.worker.MAINTENANCE_SECONDS) takes it: simulated by releasing the
        lock and starting one more worker, which takes it as it starts.
        """
        everyone = {p.pid for p in self.workers if p.poll() is None}
        for pid in list(everyone):
            everyone.update(_children(pid))
        released = False
        for name in QUEUES:
            key = SCHEDULER_LOCKING_KEY_TEMPLATE % name
            holder = self.redis.get(key)
            if holder is None:
                released = True
                continue
            raw = self.redis.hget(SCHEDULER_KEY_TEMPLATE % _text(holder), "pid")
            pid = int(_text(raw) or 0)
            if pid == 0 or pid in everyone:
                continue  # alive, or just starting (its pid is written after the lock)
            self.redis.delete(key)
            released = True
        if released:
            self.start_worker()
            self.wait_for(
                lambda: all(self.redis.exists(SCHEDULER_LOCKING_KEY_TEMPLATE % n) for n in QUEUES),
                "a live worker took the scheduler lock",
            )
        return released

    # ------------------------------------------------------------ the proof

    def dead_letters(self) -> int:
        """Jobs in the failed registries (dead letters), across the hub's queues."""
        return sum(FailedJobRegistry(queue=queue(self.redis, n)).count for n in QUEUES)

    def ticket_dead_letters(self) -> list[str]:
        """Dead letters of the tickets queue: each is a report that is not a ticket."""
        return FailedJobRegistry(queue=queue(self.redis, TICKETS)).get_job_ids()

    def verdict(self, scenario: str, sent: list[Sent], **extra: Any) -> Verdict:
        """Count tickets per external_id against the acknowledged reports."""
        everything = self.tickets()
        # Problem tickets the hub opens for groups of related reports (one per group).
        problems = [t for t in everything if str(t.get("external_id")).startswith(PROBLEM_PREFIX)]
        tickets = [t for t in everything if t not in problems]
        per_id = Counter(t.get("external_id") for t in everything)
        acknowledged = {s.external_id for s in sent if s.acknowledged}
        known = {s.external_id for s in sent}
        stats = self.zendesk_stats()["by_status"]
        return Verdict(
            scenario=scenario,
            sent=len(sent),
            acknowledged=len(acknowledged),
            refused=len(sent) - len(acknowledged),
            tickets=len(tickets),
            duplicates=sum(n - 1 for n in per_id.values() if n > 1),
            missing=sum(1 for e in acknowledged if per_id[e] == 0),
            # A ticket for a report never sent, or without an external_id at all.
            unexpected=sum(1 for t in tickets if t.get("external_id") not in known),
            dead_letters=self.dead_letters(),
            throttled=int(stats.get("429", 0)),
            server_errors=sum(int(n) for s, n in stats.items() if s.startswith("5")),
            extra={
                # Refused (503 / "could not file") yet queued before Redis failed: the
                # sender retries, the same id dedupes; allowed, and shown.
                "problems": len(problems),
                "filed_though_refused": sum(
                    1 for s in sent if not s.acknowledged and per_id[s.external_id]
                ),
                **extra,
            },
            missing_ids=sorted(e for e in acknowledged if per_id[e] == 0),
            duplicate_ids=sorted(str(e) for e, n in per_id.items() if n > 1),
        )

    def log_tail(self, lines: int = 12) -> str:
        """The last warnings and errors of each process's log, for failure messages."""
        out = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()
            worth = [ln for ln in text if '"level": "info"' not in ln]
            out.append(f"--- {path.name}")
            out.extend(worth[-lines:])
        return "\n".join(out)

    def hub_logs(self) -> str:
        """Everything the hub's processes (web, workers) wrote, stdout and stderr.

        The sandboxes' own output is left out: a dev tool, it prints the tokens it accepts.
        """
        paths = sorted(p for p in self.logs.glob("*.log") if p.name != "sandbox.log")
        return "\n".join(p.read_text(errors="replace") for p in paths)


def assert_exactly_once(verdict: Verdict, cluster: Cluster) -> None:
    """Print the counts and fail, with them and the logs, unless each acknowledged report is
    exactly one ticket and no report of the tickets queue is a dead letter."""
    print(verdict.line())
    letters = cluster.ticket_dead_letters()
    assert verdict.exactly_once and not letters, (
        f"{verdict.line()}\nmissing: {verdict.missing_ids}\nduplicated: {verdict.duplicate_ids}"
        f"\nticket dead letters: {letters}\n{cluster.log_tail()}"
    )


@contextmanager
def running(workdir: Path, **kwargs: Any) -> Iterator[Cluster]:
    """A started Cluster, stopped afterwards whatever happens."""
    with Cluster(workdir, **kwargs) as cluster:
        yield cluster


def _children(pid: int) -> list[int]:
    """Direct children of a process (Linux /proc)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except json.JSONDecodeError:
        return None
