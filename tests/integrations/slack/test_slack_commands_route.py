"""POST /slack/commands is answered before Flask: it keeps every route's HTTP contract."""

from __future__ import annotations

import io

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from integrations.slack import messages
from integrations.slack.testing import fixture_body, signed_headers
from tests.conftest import SIGNING_SECRET

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
    ok, refused = _answered(client, "200"), _answered(client, "401")
    client.post("/slack/commands", data=body, headers=signed_headers(SIGNING_SECRET, body))
    client.post("/slack/commands", data=body, headers=signed_headers("wrong-secret", body))

    # The counter lives as long as the process: what changes is what this test sent.
    assert _answered(client, "200") == ok + 1
    assert _answered(client, "401") == refused + 1


def _answered(client: FlaskClient, status: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "feedback_hub_http_requests_total" and sample.labels == {
                "route": "/slack/commands",
                "status": status,
            }:
                return sample.value
    return 0.0


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
