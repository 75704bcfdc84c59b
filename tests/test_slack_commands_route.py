"""POST /slack/commands is answered before Flask: it keeps every route's HTTP contract."""

from __future__ import annotations

import io

from flask.testing import FlaskClient
from redis import Redis

from integrations.slack import messages
from integrations.slack.testing import fixture_body, signed_headers

from .conftest import SIGNING_SECRET

# What gunicorn hands the app for a chunked upload: no length, a stream that ends.
CHUNKED = {"wsgi.input_terminated": True, "CONTENT_LENGTH": ""}


def test_other_methods_get_a_json_405(client: FlaskClient, redis: Redis) -> None:
    response = client.get("/slack/commands")
    assert response.status_code == 405
    assert response.json == {
        "error": "method_not_allowed",
        "message": "The method is not allowed for the requested URL.",
    }
    assert redis.dbsize() == 0


def test_answers_are_counted_in_metrics(client: FlaskClient) -> None:
    body = fixture_body("slash_command__with_text.txt")
    assert client.post("/slack/commands", data=body, headers=signed_headers(SIGNING_SECRET, body))
    client.post("/slack/commands", data=body, headers=signed_headers("wrong-secret", body))

    text = client.get("/metrics").get_data(as_text=True)
    assert 'feedback_hub_http_requests_total{route="/slack/commands",status="200"} 1.0' in text
    assert 'feedback_hub_http_requests_total{route="/slack/commands",status="401"} 1.0' in text


def test_a_chunked_body_is_read_and_filed(client: FlaskClient, redis: Redis) -> None:
    body = fixture_body("slash_command__with_text.txt")
    response = client.post(
        "/slack/commands",
        input_stream=io.BytesIO(body),
        headers={
            **signed_headers(SIGNING_SECRET, body),
            "Content-Type": "application/x-www-form-urlencoded",
            "Transfer-Encoding": "chunked",
        },
        environ_overrides=CHUNKED,
    )
    assert response.status_code == 200
    assert response.json == messages.receipt()
    assert redis.llen("rq:queue:tickets") == 1


def test_a_chunked_body_over_the_limit_is_a_413(client: FlaskClient, redis: Redis) -> None:
    body = b"command=%2Ffeedback&text=" + b"x" * (1024 * 1024)
    response = client.post(
        "/slack/commands",
        input_stream=io.BytesIO(body),
        headers={**signed_headers(SIGNING_SECRET, body), "Transfer-Encoding": "chunked"},
        environ_overrides=CHUNKED,
    )
    assert response.status_code == 413
    assert response.json == {
        "error": "payload_too_large",
        "message": "the request body is larger than this route accepts (1048576 bytes)",
    }
    assert redis.dbsize() == 0


def test_other_paths_still_reach_flask(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/slack/nowhere").status_code == 404
