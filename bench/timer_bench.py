"""First-reply timers: how late nudges and breaches come out with 10,000 open timers, and memory.

    .venv/bin/python bench/timer_bench.py [--timers 10000] [--due 300] [--window S] [--workers 2]

A private redis-server (append-only file on, as in production) holds `--timers` open timers;
`--due` of them, each with a ticket in the Zendesk sandbox, have their nudge and breach
due within the next `--window` seconds (spread evenly); the others are due hours later, so
the due set the tick reads holds twice `--timers` entries. The default window is the pace
at which that many open one-hour timers come due in production (10,000 open: 2.8 reports
a second, each a nudge and a breach); a shorter one is a stress test. The Procfile's
worker processes (`feedback-hub worker`, their scheduler ticking the timers) run against the
Zendesk and Slack sandboxes, served by this process. Lateness is when a nudge or breach
was claimed (the moment the hub decided and started posting, stored in the timer) minus
when it was due; for breaches also when the Slack sandbox received the message. Memory is
Redis's used_memory before and after the timers were started.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from integrations.queue.timers import Timer, TimerStore  # noqa: E402
from integrations.sandbox import SlackSandbox, ZendeskSandbox  # noqa: E402
from workers.procs import free_port, process_env, procfile_args, start_redis, stop  # noqa: E402
from workers.timers import ensure_tick, run_tick  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def describe(name: str, values: list[float]) -> str:
    return (
        f"{name}: n={len(values)} p50 {percentile(values, 50):.2f} s, p95 "
        f"{percentile(values, 95):.2f} s, p99 {percentile(values, 99):.2f} s, "
        f"max {max(values):.2f} s"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timers", type=int, default=10_000)
    parser.add_argument("--due", type=int, default=300)
    parser.add_argument("--window", type=float, default=None)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.window is None:
        # n open one-hour timers: n reports an hour come due, each a nudge and a breach.
        args.window = args.due * 3600 / args.timers

    workdir = Path(tempfile.mkdtemp(prefix="timer-bench-"))
    port = free_port()
    server = start_redis(port, workdir / "redis", appendonly=True)
    zendesk = ZendeskSandbox(email="bench@example.com", token="bench-token")
    # The channels the targets below post to, as the workspace would have them.
    slack = SlackSandbox(token="xoxb-bench", channels=("#support-triage", "#support-escalations"))
    zendesk.start()
    slack.start()
    workers: list[subprocess.Popen[bytes]] = []
    try:
        redis = Redis(port=port)
        store = TimerStore(redis)
        before = int(redis.info("memory")["used_memory"])
        now = time.time()
        start = now + 20  # time for the workers to start
        due_tickets: list[int] = []
        for i in range(args.due):
            ticket, _ = zendesk.create_ticket(
                {
                    "subject": f"Bench report {i}",
                    "comment": {"body": f"Report {i} from the bench."},
                    "requester": {"name": "Bench Reporter", "email": "reporter@example.com"},
                }
            )
            due_tickets.append(int(ticket["id"]))
        began = time.perf_counter()
        for i in range(args.timers):
            if i < args.due:
                ticket_id = due_tickets[i]
                breach = start + args.window * (i + 1) / args.due
            else:
                ticket_id = 1_000_000 + i
                breach = now + 3600 + i % 3600
            store.start(
                Timer(
                    ticket_id=ticket_id,
                    subject=f"Bench report {i}: the export button does nothing",
                    group="Support",
                    target="Everything else within an hour",
                    seconds=3600,
                    accepted=breach - 3600,
                    # Nudge and breach both inside the window, 5 s apart.
                    nudge_at=breach - 5 if i < args.due else breach - 900,
                    breach_at=breach,
                    nudge_channel="#support-triage",
                    breach_channel="#support-escalations",
                    breach_tags=("response_overdue",),
                    url=f"{zendesk.url}/agent/tickets/{ticket_id}",
                    requester_id=None,
                )
            )
        start_seconds = time.perf_counter() - began
        after = int(redis.info("memory")["used_memory"])
        print(
            f"{args.timers} open timers started in {start_seconds:.2f} s; Redis used_memory "
            f"{before / 1e6:.1f} -> {after / 1e6:.1f} MB: "
            f"{(after - before) / args.timers:.0f} bytes per timer"
        )
        # The tick's own cost with nothing due yet, then with one due: a range read.
        t0 = time.perf_counter()
        for _ in range(100):
            run_tick(redis, clock=lambda: now)
        per_tick = (time.perf_counter() - t0) * 10
        print(f"tick with {2 * args.timers} due entries, none due: {per_tick:.2f} ms")
        redis.delete("hub:timers:ticking")
        for job in redis.keys("rq:*"):
            redis.delete(job)

        env = process_env(
            {
                "REDIS_URL": f"redis://127.0.0.1:{port}/0",
                "ZENDESK_URL": zendesk.url,
                "ZENDESK_EMAIL": "bench@example.com",
                "ZENDESK_API_TOKEN": "bench-token",
                "SLACK_BOT_TOKEN": "xoxb-bench",
                "SLACK_API_URL": slack.api_url,
                "PYTHONPATH": str(ROOT),
                "LOG_LEVEL": "WARNING",
            }
        )
        logs = (workdir / "worker.log").open("w")
        for _ in range(args.workers):
            workers.append(
                subprocess.Popen(
                    procfile_args("worker", env), env=env, cwd=ROOT, stdout=logs, stderr=logs
                )
            )
        ensure_tick(redis)
        deadline = start + args.window + 120
        while time.time() < deadline:
            done = sum(
                1
                for t in due_tickets
                if redis.hget(f"hub:timer:{t}", "breached")
                and redis.hget(f"hub:timer:{t}", "nudged")
            )
            if done == args.due and len(slack.channel_messages("#support-escalations")) >= args.due:
                break
            time.sleep(0.5)
        nudge_late: list[float] = []
        breach_late: list[float] = []
        for t in due_tickets:
            timer = store.get(t)
            raw = redis.hgetall(f"hub:timer:{t}")
            if timer is None:
                continue
            nudged = raw.get(b"nudged")
            breached = raw.get(b"breached")
            if nudged and timer.nudge_at is not None:
                nudge_late.append(float(nudged) - timer.nudge_at)
            if breached:
                breach_late.append(float(breached) - timer.breach_at)
        posted = {}
        for call in slack.calls("chat.postMessage"):
            if "escalations" in str(call.args.get("channel")):
                for t in due_tickets:
                    if f"tickets/{t}|" in str(call.args):
                        posted[t] = call.at
        breach_at = {t: timer.breach_at for t in due_tickets if (timer := store.get(t))}
        arrived = [posted[t] - breach_at[t] for t in due_tickets if t in posted and t in breach_at]
        rate = 2 * args.due / args.window
        print(
            f"{args.due} timers due over {args.window:.0f} s ({rate:.1f} nudges and breaches "
            f"a second), {args.workers} workers:"
        )
        print("  " + describe("nudge lateness (claimed - due)", nudge_late))
        print("  " + describe("breach lateness (claimed - due)", breach_late))
        if arrived:
            print("  " + describe("breach message at Slack - due", arrived))
        missing = args.due - len(breach_late)
        print(f"  not breached by the deadline: {missing}")
    finally:
        for proc in workers:
            stop(proc)
        zendesk.stop()
        slack.stop()
        stop(server)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
