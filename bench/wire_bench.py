"""The intake's hand-written Redis encoding and zlib framing against maintained libraries.

    .venv/bin/python -m bench.wire_bench [--repeat 5]

Microseconds per call (timeit: `--repeat` runs of ~0.2 s each; the best run, and the median
for the spread) for a `/feedback` Report (feedback_body, parsed as the intake parses it):
rq's unique-enqueue EVALSHA encoded from ready values (the hub's CommandTemplate.fill and
wire.command; hiredis.pack_command; redis-py's Connection.pack_command, hiredis-backed when
hiredis is installed, and its PythonRespSerializer); the same with the per-job values made
per call (JobTemplate.enqueue_command; its fields_for + hiredis; rq's own way: zlib.compress,
utcformat, hiredis); the intake's first three commands (stage_enqueue for FILE_REPORT with
the status SET; Hub.stage_report adds a fourth since, the console's record, which this
does not time; the same three by hiredis); and the job data (rq's
serializer output) through wire.deflate, zlib.compress (rq's level 6) and level 0, for that
report and one with a ~20 KB description. Same values must give the same bytes, and every
deflate output must decompress to the data. A private redis-server answers rq's INFO while
the job template is built; nothing measured talks to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import timeit
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import hiredis
from redis import Redis
from redis.connection import Connection, PythonRespSerializer
from rq.job import Job
from rq.utils import now, utcformat

from integrations.queue import enqueue, wire
from integrations.queue.connection import queue
from integrations.queue.jobs import FILE_REPORT
from integrations.queue.status import STATUS_TTL, StatusStore
from integrations.report import Report
from integrations.slack.payloads import parse_command
from integrations.slack.reports import command_report
from integrations.slack.testing import feedback_body
from workers.procs import free_port, start_redis, stop

TEXT = "The export button does nothing #export\nClicked it twice on the reports page."
LINE = "  at com.example.reports.ExportController.handle(ExportController.kt:{n}) frame {n:05x}\n"


def best_us(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best, median) microseconds per call over `repeat` runs of ~0.2 s each."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    runs = [t / number * 1e6 for t in timer.repeat(repeat, number)]
    return min(runs), statistics.median(runs)


def reports() -> tuple[Report, Report]:
    """A `/feedback` report as the intake makes it, and the same with a ~20 KB description."""
    small = command_report(parse_command(feedback_body(1, TEXT)))
    trace = "".join(LINE.format(n=n * 7919 % 100_000) for n in range(210))
    large = small.model_copy(update={"description": f"{TEXT}\n{trace}"})
    return small, large


def main() -> int:
    """Run the cases and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per case; the best is shown")
    args = parser.parse_args()
    uname = platform.uname()
    print(f"Python {platform.python_version()} ({sys.executable}); {os.cpu_count()} CPUs")
    print(
        f"processor: {platform.processor() or '?'}; {uname.system} {uname.release} {uname.machine}"
    )
    print(f"hiredis {hiredis.__version__}; load average {os.getloadavg()[0]:.2f}")

    work = Path(tempfile.mkdtemp(prefix="wire-bench-"))
    port = free_port()
    server = start_redis(port, work / "redis")
    redis = Redis(port=port)
    try:
        template = enqueue._template(
            redis, FILE_REPORT, enqueue.DEFAULT_RETRY, enqueue.JOB_TIMEOUT, {}
        )
    finally:
        redis.close()
        stop(server)
        shutil.rmtree(work, ignore_errors=True)
    rows: list[tuple[str, str, float, float]] = []

    def case(group: str, name: str, fn: Callable[[], object]) -> None:
        rows.append((group, name, *best_us(fn, args.repeat)))

    small, large = reports()
    q = queue(Redis(), FILE_REPORT.queue)  # rq's names for its keys; never connects
    queue_key = q.key
    jid = enqueue.job_id(FILE_REPORT.kind, small.external_id)
    job_args = (small.to_job(),)
    description = f"{FILE_REPORT.name} {jid}"
    at = {name: i + 1 for i, name in enumerate(template.fields) if i % 2 == 0}

    def call_args(fields: list[Any], key: str, job: str) -> tuple[Any, ...]:
        """rq's EVALSHA call for the job (JobTemplate's call, every argument given)."""
        sha = enqueue.UNIQUE_ENQUEUE_SHA
        return ("EVALSHA", sha, 2, key, queue_key, job, "R", template.ttl, *fields)

    # One job's values, fixed, so that every encoder is given the same ones.
    values = template.values_for(job_args, description=description)
    values.update(job_key=Job.key_for(jid), job_id=jid)
    filled = list(template.fields)
    for name in enqueue.JobTemplate.PER_JOB:
        filled[at[name]] = values[name]
    fixed = call_args(filled, values["job_key"], jid)
    conn = Connection()
    python_packer = PythonRespSerializer(6000, conn.encoder.encode)
    hub_bytes = template._call.fill(values)
    encoded = {
        "wire.command": wire.command(*fixed),
        "hiredis.pack_command": hiredis.pack_command(fixed),
        "redis-py pack_command": b"".join(conn.pack_command(*fixed)),
        "redis-py PythonRespSerializer": b"".join(python_packer.pack(*fixed)),
    }
    g = "EVALSHA encoding only"
    case(g, "hub CommandTemplate.fill", lambda: template._call.fill(values))
    case(g, "wire.command", lambda: wire.command(*fixed))
    case(g, "hiredis.pack_command", lambda: hiredis.pack_command(fixed))
    case(g, "redis-py pack_command", lambda: conn.pack_command(*fixed))
    case(g, "redis-py PythonRespSerializer", lambda: python_packer.pack(*fixed))

    def hiredis_command() -> bytes:
        fields = template.fields_for(job_args, description=description)
        return hiredis.pack_command(call_args(fields, Job.key_for(jid), jid))

    def rq_way_command() -> bytes:
        fields = list(template.fields)
        dumped = template.serializer.dumps((template.func_name, None, job_args, {}))
        stamp = utcformat(now())
        fields[at["data"]] = zlib.compress(dumped)
        fields[at["description"]] = description
        fields[at["created_at"]] = fields[at["enqueued_at"]] = stamp
        return hiredis.pack_command(call_args(fields, Job.key_for(jid), jid))

    g = "EVALSHA with per-job values"
    hub_command = partial(template.enqueue_command, jid, job_args, description=description)
    case(g, "hub enqueue_command", hub_command)
    case(g, "fields_for + hiredis.pack_command", hiredis_command)
    case(g, "rq way: zlib, utcformat, hiredis", rq_way_command)

    status = StatusStore(Redis())  # never connects: mark_queued only encodes
    registration: tuple[Any, ...] = ("SADD", q.redis_queues_keys, queue_key)

    def hub_stage() -> object:
        return enqueue.stage_enqueue(
            redis, FILE_REPORT, small.to_job(), key=small.external_id,
            also=lambda commands: status.mark_queued(small.key_digest, commands),
        )  # fmt: skip

    def hiredis_stage() -> list[bytes]:
        job = enqueue.job_id(FILE_REPORT.kind, small.external_id)
        fields = template.fields_for((small.to_job(),), description=f"{FILE_REPORT.name} {job}")
        stored = json.dumps({"id": small.key_digest, "state": "queued", "updated_at": time.time(),
                             "ticket_id": None, "ticket_url": None, "reason": None})  # fmt: skip
        set_queued: tuple[Any, ...] = (
            "SET", f"hub:report:{small.key_digest}:status", stored, "NX", "EX", STATUS_TTL
        )  # fmt: skip
        return [
            hiredis.pack_command(registration),
            hiredis.pack_command(call_args(fields, Job.key_for(job), job)),
            hiredis.pack_command(set_queued),
        ]

    g = "intake's 3 commands (incl. to_job)"
    case(g, "hub stage_enqueue + mark_queued", hub_stage)
    case(g, "same 3 commands by hiredis", hiredis_stage)
    case(g, "report.to_job() alone", small.to_job)

    sizes: list[str] = []  # one line per report
    round_trips: list[bool] = []
    for label, report in (("small", small), ("large", large)):
        data = template.serializer.dumps((template.func_name, None, (report.to_job(),), {}))
        g = f"job data, {label}: {len(data)} bytes"
        ways = {
            "wire.deflate": partial(wire.deflate, data),
            "zlib.compress (level 6, rq)": partial(zlib.compress, data),
            "zlib.compress level 0": partial(zlib.compress, data, 0),
        }
        outputs = {name: way() for name, way in ways.items()}
        for name, way in ways.items():
            case(g, name, way)
        sizes.append(f"{label}: " + ", ".join(f"{n} {len(o)} B" for n, o in outputs.items()))
        round_trips += [zlib.decompress(out) == data for out in outputs.values()]

    print(f"\nEVALSHA: {len(fixed)} arguments, {len(hub_bytes)} bytes; best of {args.repeat} runs")
    print(f"{'case':40}{'best us':>10}{'median us':>11}")
    group = ""
    for g, name, best, median in rows:
        if g != group:
            print(f"-- {g}")
            group = g
        print(f"  {name:38}{best:10.2f}{median:11.2f}")
    print()
    for name, out in encoded.items():
        print(f"same bytes as the hub's, {name}: {'yes' if out == hub_bytes else 'no'}")
    print(f"zlib.decompress gives the data back, all 6: {'yes' if all(round_trips) else 'no'}")
    print("\n".join(f"sizes, {line}" for line in sizes))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
