"""The web app's own routes: health, readiness, metrics, JSON errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient
from redis import Redis
from rq.utils import utcformat

from app import create_app
from integrations.queue import TICKETS, enqueue_once, queue
from integrations.queue.jobs import FILE_REPORT
from integrations.settings import Settings
from workers.procs import free_port
from workers.worker import HubWorker


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_when_everything_is_there(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["ready"] is True
    assert response.json["checks"]["redis"] == "ok"


def test_readyz_names_missing_worker_credentials(redis_url: str) -> None:
    settings = Settings.from_env("web", {"REDIS_URL": redis_url, "SLACK_SIGNING_SECRET": "x" * 16})
    response = create_app(settings).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json is not None
    detail = response.json["checks"]["settings"]
    assert "ZENDESK_URL" in detail and "SLACK_BOT_TOKEN" in detail


def test_readyz_says_redis_is_unreachable() -> None:
    settings = Settings.from_env(
        "web",
        {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "SLACK_SIGNING_SECRET": "x" * 16},
    )
    response = create_app(settings).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["checks"]["redis"].startswith("Redis is unreachable")


def test_unknown_route_is_a_json_404(client: FlaskClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.is_json
    assert response.json is not None
    assert response.json["error"] == "not_found"
    assert response.json["message"]


def test_wrong_method_is_a_json_405(client: FlaskClient) -> None:
    response = client.post("/healthz")
    assert response.status_code == 405
    assert response.json is not None
    assert response.json["error"] == "method_not_allowed"


def test_metrics_show_queue_depths(client: FlaskClient) -> None:
    client.get("/healthz")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'feedback_hub_queue_jobs{queue="tickets"} 0.0' in text
    assert 'feedback_hub_failed_jobs{queue="tickets"} 0.0' in text
    assert 'feedback_hub_http_requests_total{route="/healthz",status="200"}' in text


def test_readyz_and_metrics_show_that_no_worker_is_taking_jobs(
    client: FlaskClient, redis: Redis
) -> None:
    job = enqueue_once(redis, FILE_REPORT, {}, key="waiting").job_id
    two_minutes_ago = datetime.now(UTC) - timedelta(minutes=2)
    redis.hset(f"rq:job:{job}", "enqueued_at", utcformat(two_minutes_ago))

    body = client.get("/readyz").json
    assert body is not None
    assert body["ready"] is True  # intake still works: the queue is durable
    assert body["workers"]["alive"] == 0
    assert body["workers"]["waiting"] == 1
    assert 119 <= body["workers"]["oldest_queued_seconds"] < 180
    text = client.get("/metrics").get_data(as_text=True)
    assert "feedback_hub_redis_up 1.0" in text
    assert "feedback_hub_workers_alive 0.0" in text
    assert 'feedback_hub_oldest_queued_job_age_seconds{queue="tickets"} 1' in text

    worker = HubWorker([queue(redis, TICKETS)], connection=redis)
    worker.register_birth()
    assert client.get("/readyz").json["workers"]["alive"] == 1  # type: ignore[index]
    assert "feedback_hub_workers_alive 1.0" in client.get("/metrics").get_data(as_text=True)


def test_metrics_say_redis_is_down_rather_than_showing_empty_queues() -> None:
    settings = Settings.from_env(
        "web",
        {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "SLACK_SIGNING_SECRET": "x" * 16},
    )
    client = create_app(settings).test_client()
    text = client.get("/metrics").get_data(as_text=True)
    assert "feedback_hub_redis_up 0.0" in text
    assert "feedback_hub_queue_jobs" not in text
    assert client.get("/readyz").json["workers"] is None  # type: ignore[index]
