"""Mobile bug reports with a 200 kB screenshot: accepted per second, p99 latency, web memory.

The Procfile's web command (gunicorn, workers/gunicorn_conf.py: WEB_CONCURRENCY x
GUNICORN_THREADS) runs on a private redis-server. Every request is a multipart
report (a JSON `report` part and a real 200 kB PNG), authenticated with an app
key; each becomes its own report: checked by content, streamed into Redis,
enqueued, answered 202. The load comes from `wrk` on loopback (a closed loop of
N connections, bounded in time). A drain thread deletes stored screenshots as a
worker would after uploading them, so Redis stays small.

Memory is sampled from /proc every 50 ms during the run: the sum of RSS of the
gunicorn master and its workers (what the brief asks; shared pages counted in
each process), and the sum of PSS (shared pages split: closer to the real
footprint). Afterwards the queue must hold one job per 202.

    .venv/bin/python -m bench.mobile_bench [--seconds 10] [--connections 4,16] [--kib 200]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import requests
from redis import Redis

from integrations.queue import TICKETS, queue
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

APP_KEY = "mobile-bench-key-0000"
SCREENSHOT_BYTES = 200 * 1024
REPORT = {
    "title": "Pay button does nothing",
    "description": "After changing the address, tapping Pay does nothing.",
    "reporter": {"email": "ana@example.com", "name": "Ana Lima"},
    "app": {"id": "com.acme.shop", "version": "5.2.1", "build": "742"},
    "device": {"model": "iPhone15,2", "manufacturer": "Apple", "os": "iOS", "os_version": "17.4"},
    "category": "checkout",
    "logs": "".join(f"2024-05-02T10:14:{i:02d}Z INFO checkout step {i}\n" for i in range(60)),
}


def screenshot(size: int = SCREENSHOT_BYTES) -> bytes:
    """A real PNG of random pixels, about `size` bytes (random pixels do not compress)."""
    rng = random.Random(7)
    side = int((size / 3) ** 0.5)
    rows = b"".join(b"\x00" + rng.randbytes(side * 3) for _ in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 1))
        + chunk(b"IEND", b"")
    )


def multipart(image: bytes) -> tuple[str, bytes]:
    """(content type, body) of one report with its screenshot."""
    boundary = "bench-boundary-7f3a9c"
    parts = [
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="report"\r\n'
        "Content-Type: application/json\r\n\r\n".encode()
        + json.dumps(REPORT).encode()
        + b"\r\n",
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="files"; filename="screen.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + image
        + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    return f"multipart/form-data; boundary={boundary}", b"".join(parts)


WRK_SCRIPT = r"""
local f = io.open(os.getenv("BENCH_BODY"), "rb")
local body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.path = "/api/v1/bug-reports"
wrk.body = body
wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE")
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")

local statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '@@{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


# ---------------------------------------------------------------- memory


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                # The command may hold spaces and parentheses: the ppid follows the last ')'.
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            out.append(int(entry))
    return out


def _kib(path: str, field: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemorySampler(threading.Thread):
    """Peak RSS and PSS sums of a process and its children, sampled every `interval` s."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_rss = 0
        self.peak_pss = 0
        self.processes = 0
        self.halt = threading.Event()

    def sample(self) -> tuple[int, int, int]:
        """(RSS sum KiB, PSS sum KiB, process count) right now."""
        pids = [self.pid, *_children(self.pid)]
        rss = sum(_kib(f"/proc/{p}/status", "VmRSS:") for p in pids)
        pss = sum(_kib(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids)
        return rss, pss, len(pids)

    def run(self) -> None:
        while not self.halt.is_set():
            rss, pss, n = self.sample()
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self.processes = max(self.processes, n)
            self.halt.wait(self.interval)


class Drain(threading.Thread):
    """Deletes stored attachments, as the worker does once it has uploaded them."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(daemon=True)
        self.redis = redis
        self.halt = threading.Event()
        self.deleted = 0

    def run(self) -> None:
        while not self.halt.wait(0.5):
            keys = list(self.redis.scan_iter("hub:attachment:*", count=1000))
            if keys:
                self.deleted += int(self.redis.unlink(*keys))


# ---------------------------------------------------------------- one run


@dataclass
class Result:
    """One measured run."""

    connections: int
    requests: int
    accepted: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    idle_rss_mib: float
    peak_rss_mib: float
    peak_pss_mib: float
    processes: int


def run_wrk(url: str, seconds: int, connections: int, body: Path, ctype: str) -> dict[str, int]:
    """Run wrk and return its summary line."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    env = {
        **os.environ,
        "BENCH_BODY": str(body),
        "BENCH_CONTENT_TYPE": ctype,
        "BENCH_KEY": APP_KEY,
    }
    threads = min(2, connections)
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    args += ["--timeout", "10s", "-s", script.name, url]
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    line = next(x for x in out.splitlines() if x.startswith("@@"))
    summary: dict[str, int] = json.loads(line[2:])
    return summary


def measure(
    url: str, redis: Redis, web_pid: int, seconds: int, connections: int, body: Path, ctype: str
) -> Result:
    """One bounded wrk run against the running web process."""
    redis.flushdb()
    sampler = MemorySampler(web_pid)
    idle_rss, _, _ = sampler.sample()
    drain = Drain(redis)
    sampler.start()
    drain.start()
    try:
        summary = run_wrk(url, seconds, connections, body, ctype)
    finally:
        sampler.halt.set()
        drain.halt.set()
        sampler.join()
        drain.join()
    jobs = queue(redis, TICKETS).count
    non_2xx = summary["status"]
    answered_202 = summary["requests"] - non_2xx
    socket_errors = summary["connect"] + summary["read"] + summary["write"] + summary["timeout"]
    # Every 202 must be a job in Redis (a few more jobs are requests wrk stopped
    # waiting for at the end of the run); anything else counts as an error.
    errors = non_2xx + socket_errors + max(0, answered_202 - jobs)
    if errors:
        print(
            f"errors at {connections} connections: non-2xx {non_2xx}, socket {socket_errors}, "
            f"202 without a job {max(0, answered_202 - jobs)}",
            file=sys.stderr,
        )
    return Result(
        connections=connections,
        requests=summary["requests"],
        accepted=min(answered_202, jobs),
        seconds=summary["duration_us"] / 1e6,
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        max_ms=summary["max_us"] / 1000,
        errors=errors,
        idle_rss_mib=idle_rss / 1024,
        peak_rss_mib=sampler.peak_rss / 1024,
        peak_pss_mib=sampler.peak_pss / 1024,
        processes=sampler.processes,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", default="4,16")
    parser.add_argument("--kib", type=int, default=200, help="screenshot size (KiB)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2

    image = screenshot(args.kib * 1024)
    ctype, body = multipart(image)
    work = Path(tempfile.mkdtemp(prefix="mobile-bench-"))
    body_path = work / "body.bin"
    body_path.write_bytes(body)

    redis_port, web_port = free_port(), free_port()
    redis_proc = start_redis(redis_port, work / "redis")
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = process_env(
        {
            "REDIS_URL": redis_url,
            "PORT": str(web_port),
            "SLACK_SIGNING_SECRET": "bench-signing-secret",
            "MOBILE_API_KEYS": f"bench-app:{APP_KEY}",
            # The per-app limit would cap the run at 60 a minute; this measures the web process.
            "MOBILE_RATE_LIMIT": "100000000",
            "PYTHONPATH": str(ROOT),
        }
    )
    log = (work / "web.log").open("w")
    web = subprocess.Popen(
        procfile_args("web", env), env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    redis = Redis.from_url(redis_url)
    results = []
    try:
        wait_for_port(web_port, timeout=60, proc=web)
        url = f"http://127.0.0.1:{web_port}"
        warm = requests.post(
            f"{url}/api/v1/bug-reports",
            data=body,
            headers={"Content-Type": ctype, "Authorization": f"Bearer {APP_KEY}"},
            timeout=30,
        )
        assert warm.status_code == 202, warm.text
        for connections in (int(c) for c in args.connections.split(",")):
            results.append(
                measure(url, redis, web.pid, args.seconds, connections, body_path, ctype)
            )
    finally:
        stop(web)
        log.close()
        redis.close()
        stop(redis_proc)
        shutil.rmtree(work, ignore_errors=True)

    concurrency = os.environ.get("WEB_CONCURRENCY", "2")
    threads = os.environ.get("GUNICORN_THREADS", "8")
    print(
        f"POST /api/v1/bug-reports, multipart: report JSON ({len(json.dumps(REPORT))} B) + "
        f"PNG screenshot ({len(image) / 1024:.0f} KiB); web: {procfile()['web']} "
        f"(WEB_CONCURRENCY={concurrency}, GUNICORN_THREADS={threads}); {os.cpu_count()} CPUs; "
        f"load: wrk on loopback, {args.seconds} s per row"
    )
    header = (
        f"{'conns':>5} {'requests':>8} {'accepted/s':>10} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7} {'errors':>6} {'idle RSS':>9} {'peak RSS':>9} {'peak PSS':>9} {'procs':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.connections:>5} {r.requests:>8} {r.accepted / r.seconds:>10.1f} "
            f"{r.p50_ms:>7.1f} {r.p99_ms:>7.1f} {r.max_ms:>7.1f} {r.errors:>6} "
            f"{r.idle_rss_mib:>7.1f}Mi {r.peak_rss_mib:>7.1f}Mi {r.peak_pss_mib:>7.1f}Mi "
            f"{r.processes:>5}"
        )
    print("RSS/PSS: gunicorn master + workers, summed; sampled every 50 ms from /proc.")
    print(f"command: .venv/bin/python -m bench.mobile_bench {' '.join(sys.argv[1:])}".rstrip())
    return 0 if all(r.errors == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
