"""The web app's own routes: health, readiness, metrics, JSON errors."""

from __future__ import annotations

from flask.testing import FlaskClient

from app import create_app
from integrations.settings import Settings
from workers.procs import free_port


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
