"""The soak: minutes of reports through the Procfile's processes while the world misbehaves.

Reports (Slack `/feedback` and mobile JSON, alternating) arrive at a steady rate
for `--seconds`, through the hub's real processes (tests/faults/harness.py: gunicorn,
`--workers` rq workers, redis-server with its append-only file, the sandboxes):

- the Zendesk sandbox answers `--error-rate` of its calls with a 500;
- halfway, Redis is stopped and started again on the same data (`--down` seconds
  away), and the workers are left alone: nothing restarts them;
- agents reply to a sample of the Slack reports, and each reply's webhook is
  delivered twice (a redelivery: the same event in a new invocation).

Then it waits for the queues to empty, without helping the workers, and prints one
JSON line: reports sent and acknowledged (202, or Slack's receipt), tickets,
duplicates, missing (acknowledged but no ticket), told_twice (a reporter told
"filed" twice, or an agent's reply relayed twice), dead letters, acknowledgement
latency p50/p99 (ms, over acknowledged reports), and from Redis being back: the
seconds until the workers file a ticket again (filing_again_seconds) and until no job
waits in a queue (queue_empty_seconds). While Redis is away the web process refuses
reports (503, or Slack's "could not file, please retry"): those are sent but not
acknowledged, and the senders retry them.

    .venv/bin/python -m bench.soak_bench [--seconds 300] [--rate 1.6] [--workers 2]

The default run is about 6 minutes. Its figures are in the README's results table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from integrations.sandbox.signing import zendesk_webhook_headers
from tests.faults.harness import Cluster, Sent


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Soak:
    """One run: the sender, the outage, the replies, the counts."""

    def __init__(self, cluster: Cluster, *, seconds: float, rate: float) -> None:
        self.cluster = cluster
        self.seconds = seconds
        self.rate = rate
        self.sent: list[Sent] = []
        self.latencies: list[float] = []
        self.lock = threading.Lock()

    def send(self) -> None:
        """Reports at `rate` a second for `seconds`, each timed from request to answer."""
        start = time.monotonic()
        total = int(self.seconds * self.rate)
        for n in range(total):
            time.sleep(max(0.0, start + n / self.rate - time.monotonic()))
            began = time.monotonic()
            sent = self.cluster.send_one("slack" if n % 2 else "mobile", n)
            took = time.monotonic() - began
            with self.lock:
                self.sent.append(sent)
                if sent.acknowledged:
                    self.latencies.append(took * 1000)

    def outage(self, at: float, down: float) -> float:
        """Restart Redis `at` seconds in (away `down` seconds); when it was back."""
        time.sleep(at)
        self.cluster.restart_redis(down_for=down)
        return time.monotonic()

    def recovery(self, back: float, timeout: float) -> tuple[float | None, float | None]:
        """Seconds from `back` until a new ticket is made (the workers file again), and
        until no job waits in a queue; None: not within `timeout`."""
        deadline = back + timeout
        before = len(self.cluster.tickets())
        resumed = empty = None
        while time.monotonic() < deadline and (resumed is None or empty is None):
            now = round(time.monotonic() - back, 1)
            if resumed is None and len(self.cluster.tickets()) > before:
                resumed = now
            with contextlib.suppress(Exception):  # Redis still coming back: look again
                if empty is None and self.cluster.backlog()["queued"] == 0:
                    empty = now
            time.sleep(0.25)
        return resumed, empty

    def replies(self, sample: int) -> tuple[int, Counter[str]]:
        """An agent's reply on up to `sample` Slack tickets, its webhook delivered twice;
        how many were sent, and how often each reply's text reached Slack."""
        tickets = {t["external_id"]: t for t in self.cluster.tickets()}
        slack = [s for s in self.sent if s.kind == "slack" and s.external_id in tickets]
        secret = self.cluster.secrets["ZENDESK_WEBHOOK_SECRET"]
        tokens = []
        for sent in slack[:sample]:
            ticket = tickets[sent.external_id]
            payload = requests.get(
                f"{self.cluster.zendesk_url}/__sandbox/tickets/{ticket['id']}"
                "/event/ticket.comment_added",
                timeout=10,
            ).json()
            token = f"reply-{uuid.uuid4().hex[:10]}"
            tokens.append(token)
            payload["event"] = {
                "comment": {
                    "id": str(900_000 + len(tokens)),
                    "body": f"We are on it ({token}).",
                    "is_public": True,
                    "author": {"id": "1", "name": "Sandbox Agent", "is_staff": True},
                    "attachments": [],
                }
            }
            raw = json.dumps(payload).encode()
            for invocation in ("1", "2"):  # Zendesk redelivers the same event
                headers = zendesk_webhook_headers(
                    secret,
                    raw,
                    webhook_id="01HSOAK",
                    account_id=1,
                    invocation_id=f"{token}-{invocation}",
                )
                requests.post(
                    f"{self.cluster.url}/zendesk/webhook", data=raw, headers=headers, timeout=10
                )
        self.cluster.drain(timeout=120, hands_off=True)
        texts = [m["text"] for m in _slack(self.cluster, "messages")["messages"]]
        relayed = Counter({t: sum(t in text for text in texts) for t in tokens})
        return len(tokens), relayed


def _slack(cluster: Cluster, what: str) -> dict[str, Any]:
    url = cluster.env["SLACK_API_URL"].removesuffix("/api/")
    answer: dict[str, Any] = requests.get(f"{url}/__sandbox/{what}", timeout=10).json()
    return answer


def _told_twice(cluster: Cluster) -> int:
    """Reporters told "Ticket #N filed" more than once for the same ticket."""
    said = [json.dumps(r) for r in _slack(cluster, "responses").get("responses", [])]
    said += [m["text"] for m in _slack(cluster, "messages")["messages"]]
    filed = Counter(
        word for text in said for word in text.split() if word.startswith("#") and "filed" in text
    )
    return sum(1 for n in filed.values() if n > 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--rate", type=float, default=1.6, help="reports a second")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--error-rate", type=float, default=0.2)
    parser.add_argument("--down", type=float, default=4.0, help="seconds Redis is away")
    parser.add_argument("--replies", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, Cluster(Path(tmp), workers=args.workers) as c:
        workers = [p.pid for p in c.workers]
        c.faults(error_rate=args.error_rate, error_status=500)
        soak = Soak(c, seconds=args.seconds, rate=args.rate)
        sender = threading.Thread(target=soak.send)
        sender.start()
        back = soak.outage(args.seconds / 2, args.down)
        resumed, empty = soak.recovery(back, timeout=args.seconds)
        sender.join()
        drained = c.drain(timeout=900, hands_off=True)
        c.faults(error_rate=0.0)
        replies, relayed = soak.replies(args.replies)
        verdict = c.verdict("soak", soak.sent, **drained)
        alive = [pid for pid, p in zip(workers, c.workers, strict=True) if p.poll() is None]
        print(
            json.dumps(
                {
                    "seconds": args.seconds,
                    "workers": args.workers,
                    "zendesk_error_rate": args.error_rate,
                    "redis_down_seconds": args.down,
                    "sent": verdict.sent,
                    "acknowledged": verdict.acknowledged,
                    "tickets": verdict.tickets,
                    "duplicates": verdict.duplicates,
                    "missing": verdict.missing,
                    "told_twice": _told_twice(c) + sum(1 for n in relayed.values() if n > 1),
                    "replies": replies,
                    "replies_relayed_once": sum(1 for n in relayed.values() if n == 1),
                    "dead_letters": verdict.dead_letters,
                    "zendesk_5xx": verdict.server_errors,
                    "ack_p50_ms": round(statistics.median(soak.latencies), 1)
                    if soak.latencies
                    else None,
                    "ack_p99_ms": round(_percentile(soak.latencies, 0.99), 1),
                    "filing_again_seconds": resumed,
                    "queue_empty_seconds": empty,
                    "workers_restarted": len(workers) - len(alive),
                }
            )
        )


if __name__ == "__main__":
    main()
