"""Every report that got a 2xx becomes exactly one ticket, whatever Zendesk, Redis or a worker does.

Each scenario runs the real processes (tests/faults/harness.py), injects one kind
of fault while reports arrive, waits for the queues to drain, and compares the
tickets in the Zendesk sandbox with the acknowledged reports. The counts are
printed on one line per scenario (`pytest -s tests/faults`).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from integrations.sandbox.signing import zendesk_webhook_headers
from integrations.slack import messages

from .harness import Cluster, Sent, assert_exactly_once

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """The hub with three workers, on a fresh Redis and fresh sandboxes."""
    with Cluster(tmp_path, workers=3) as running:
        yield running


def test_zendesk_answering_500_to_30_percent_of_calls(cluster: Cluster) -> None:
    cluster.faults(error_rate=0.3, error_status=500)
    sent = cluster.send(40)
    drained = cluster.drain(timeout=120)

    verdict = cluster.verdict("500s at 30%", sent, **drained)
    assert_exactly_once(verdict, cluster)
    assert verdict.acknowledged == 40, verdict.line()  # Zendesk's trouble is not the sender's
    assert verdict.server_errors >= 5, verdict.line()  # the fault was really met


def test_429_storms_with_retry_after(cluster: Cluster) -> None:
    first = cluster.send(10)
    # A storm: every call is refused with Retry-After while it lasts (Zendesk's
    # account-wide throttling), then the limit lifts.
    cluster.faults(rate_limit=0)
    storm = cluster.send(30, start=10, spread=3.0)
    time.sleep(3.0)  # the storm's length, after the last report arrived
    cluster.faults(rate_limit=None)
    drained = cluster.drain(timeout=120)

    verdict = cluster.verdict("429 storm", first + storm, **drained)
    assert_exactly_once(verdict, cluster)
    assert verdict.acknowledged == 40, verdict.line()
    assert verdict.throttled >= 1, verdict.line()


def test_zendesk_down_for_a_stretch_then_back(cluster: Cluster) -> None:
    first = cluster.send(10)
    cluster.faults(down=True)
    during = cluster.send(30, start=10, spread=3.0)
    time.sleep(4.0)  # the outage goes on after the last report
    cluster.faults(down=False)
    drained = cluster.drain(timeout=120)

    verdict = cluster.verdict("Zendesk down", first + during, **drained)
    assert_exactly_once(verdict, cluster)
    assert verdict.acknowledged == 40, verdict.line()
    assert verdict.server_errors >= 3, verdict.line()


def test_workers_sigkilled_mid_job_again_and_again(cluster: Cluster) -> None:
    # Each Zendesk call takes a while, so a kill lands while a create is in flight:
    # the request may still reach Zendesk after its worker is gone.
    cluster.faults(delay=0.6)
    sent: list[Sent] = []
    sender = threading.Thread(target=lambda: sent.extend(cluster.send(40, spread=8.0)))
    sender.start()
    kills = {"horse": 0, "worker": 0}
    deadline = time.monotonic() + 30
    while sum(kills.values()) < 8 and time.monotonic() < deadline:
        # Alternately the job's process alone (an OOM kill) and the whole worker (a
        # dyno stopped with SIGKILL): its scheduler and horse die with it.
        horse_only = kills["horse"] <= kills["worker"]
        if cluster.kill_busy_worker(horse_only=horse_only):
            kills["horse" if horse_only else "worker"] += 1
            cluster.supervise()  # the platform starts a new dyno
            time.sleep(0.7)
        else:
            time.sleep(0.05)
    sender.join()
    cluster.faults(delay=0.0)
    drained = cluster.drain(timeout=150)

    verdict = cluster.verdict("SIGKILL mid-job", sent, **kills, **drained)
    assert_exactly_once(verdict, cluster)
    assert verdict.acknowledged == 40, verdict.line()
    assert kills["horse"] >= 3 and kills["worker"] >= 3, verdict.line()


def test_redis_restarted_while_reports_arrive(cluster: Cluster) -> None:
    sent: list[Sent] = []
    sender = threading.Thread(target=lambda: sent.extend(cluster.send(60, spread=6.0)))
    sender.start()
    time.sleep(2.0)
    cluster.restart_redis(down_for=1.5)
    sender.join()
    drained = cluster.drain(timeout=150)

    verdict = cluster.verdict("Redis restart", sent, **drained)
    assert_exactly_once(verdict, cluster)
    # Some reports met the outage and were refused (503 / "could not file"), not dropped.
    assert 0 < verdict.refused < verdict.sent, verdict.line()
    refusals = {s.status for s in sent if not s.acknowledged}
    assert refusals <= {503, 200, None}, refusals


def test_duplicate_deliveries_have_one_effect(cluster: Cluster) -> None:
    # The same Slack payload twice: the same receipt, one report.
    body, slack_id = cluster.slack_report("dup-slack", "U0REPORTER")
    answers = [cluster.post_slack(body) for _ in range(2)]
    assert [(a.status_code, a.json()) for a in answers] == [(200, messages.receipt())] * 2

    # The same Idempotency-Key twice: the same report id, the second marked as replayed.
    key = str(uuid.uuid4())
    report = cluster.mobile_report("dup-mobile")
    first, second = (cluster.post_mobile(report, key) for _ in range(2))
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["id"] == second.json()["id"]
    assert second.headers.get("Idempotent-Replayed") == "true"
    mobile_id = f"feedback-hub-{first.json()['id']}"

    cluster.drain(timeout=60)
    sent = [
        Sent("slack", slack_id, 200, True, "dup-slack"),
        Sent("mobile", mobile_id, 202, True, "dup-mobile"),
    ]
    tickets = cluster.tickets()
    assert sorted(t["external_id"] for t in tickets) == sorted([slack_id, mobile_id])

    # The same Zendesk webhook delivery twice (same invocation), then Zendesk sending
    # the same event again in a new invocation: one job, one effect.
    ticket = next(t for t in tickets if t["external_id"] == slack_id)
    payload = requests.get(
        f"{cluster.zendesk_url}/__sandbox/tickets/{ticket['id']}/event/ticket.status_changed",
        timeout=10,
    ).json()
    payload["event"] = {"current": "SOLVED", "previous": "NEW"}
    raw = json.dumps(payload).encode()
    secret = cluster.secrets["ZENDESK_WEBHOOK_SECRET"]

    def deliver(invocation: str) -> dict[str, object]:
        headers = zendesk_webhook_headers(
            secret, raw, webhook_id="01HWEBHOOK", account_id=1, invocation_id=invocation
        )
        response = requests.post(
            f"{cluster.url}/zendesk/webhook", data=raw, headers=headers, timeout=10
        )
        assert response.status_code == 200, response.text
        answer: dict[str, object] = response.json()
        return answer

    assert deliver("1001")["queued"] is True
    assert deliver("1001").get("duplicate") is True
    assert deliver("1002")["queued"] is False
    cluster.drain(timeout=60)
    event_jobs = [k for k in cluster.redis.keys("rq:job:zendesk-event-*") if b":" not in k[7:]]
    assert len(event_jobs) == 1, event_jobs

    verdict = cluster.verdict("duplicates", sent, webhook_jobs=len(event_jobs))
    assert_exactly_once(verdict, cluster)
    assert verdict.tickets == 2, verdict.line()
