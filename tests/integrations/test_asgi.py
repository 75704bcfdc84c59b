"""The web process's ASGI app (Procfile: app:create_asgi_app()): /slack/commands on the event
loop with its writes shared, every other route in Flask, and the HTTP contract kept."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from redis import Redis

from app import create_asgi_app
from integrations.asgi import HubASGI
from integrations.queue import TICKETS, queue, wire
from integrations.report import Report
from integrations.settings import ConfigError, Settings
from integrations.slack import messages
from integrations.slack.testing import (
    feedback_body,
    fixture_body,
    fixture_payload,
    interaction_body,
    signed_headers,
)
from tests.asgi_client import AsgiClient
from tests.conftest import SIGNING_SECRET


@pytest.fixture
def asgi(app: Flask) -> Iterator[AsgiClient]:
    client = AsgiClient(HubASGI(app, threads=4))
    yield client
    client.close()


def _command(n: int) -> bytes:
    return feedback_body(n, f"The export button does nothing ({n}) #export")


def _post(client: AsgiClient, body: bytes, **kwargs: Any) -> Any:
    return client.post(
        "/slack/commands", data=body, headers=signed_headers(SIGNING_SECRET, body), **kwargs
    )


def test_concurrent_commands_share_round_trips_and_every_one_is_queued(
    asgi: AsgiClient, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips: list[int] = []
    real = wire.round_trip_async

    async def counted(client: Any, commands: Any) -> list[Any]:
        trips.append(commands.count)
        # Hold each trip a moment, as a busy Redis does: the requests arriving meanwhile wait.
        await asyncio.sleep(0.02)
        return await real(client, commands)

    monkeypatch.setattr(wire, "round_trip_async", counted)
    for script in wire.SCRIPTS.values():
        redis.script_load(script)  # no NOSCRIPT round trip to count
    bodies = [_command(n) for n in range(24)]
    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(lambda b: _post(asgi, b), bodies))

    assert [a.status_code for a in answers] == [200] * 24
    assert all(a.json == messages.receipt() for a in answers)
    assert queue(redis, TICKETS).count == 24
    # Each report is four commands (registration, rq's script, the status, the console's
    # record), sent together.
    assert sum(trips) == 24 * 4
    assert len(trips) < 24


def test_a_restarted_redis_without_scripts_still_files(asgi: AsgiClient, redis: Redis) -> None:
    assert _post(asgi, _command(1)).json == messages.receipt()
    redis.script_flush()
    assert _post(asgi, _command(2)).json == messages.receipt()
    assert queue(redis, TICKETS).count == 2


def test_a_dropped_redis_connection_is_retried(asgi: AsgiClient, redis: Redis) -> None:
    assert _post(asgi, _command(1)).json == messages.receipt()
    # Redis closes the hub's pooled connection (a restart, an idle timeout, a failover).
    killed = redis.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1
    assert _post(asgi, _command(2)).json == messages.receipt()
    assert queue(redis, TICKETS).count == 2


def test_other_methods_get_a_json_405(asgi: AsgiClient, redis: Redis) -> None:
    response = asgi.get("/slack/commands")
    assert response is not None and response.status_code == 405
    assert response.json == {
        "error": "method_not_allowed",
        "message": "The method is not allowed for the requested URL.",
    }
    assert redis.dbsize() == 0


def test_a_bad_signature_is_a_401_and_nothing_is_queued(asgi: AsgiClient, redis: Redis) -> None:
    body = _command(1)
    response = asgi.post("/slack/commands", data=body, headers=signed_headers("wrong", body))
    assert response is not None and response.status_code == 401
    assert response.json["error"] == "unauthorized"
    assert redis.dbsize() == 0


def test_a_declared_length_over_the_limit_is_a_413_before_reading(
    asgi: AsgiClient, redis: Redis
) -> None:
    response = asgi.post(
        "/slack/commands", chunks=[b"command=%2Ffeedback"], headers={"Content-Length": "2000000"}
    )
    assert response is not None and response.status_code == 413
    assert response.json == {
        "error": "payload_too_large",
        "message": "the request body is larger than this route accepts (1048576 bytes)",
    }
    assert redis.dbsize() == 0


def test_a_chunked_body_is_read_and_one_over_the_limit_is_a_413(
    asgi: AsgiClient, redis: Redis
) -> None:
    body = _command(1)
    headers = signed_headers(SIGNING_SECRET, body)
    filed = asgi.post("/slack/commands", chunks=[body[:50], body[50:]], headers=headers)
    assert filed is not None and filed.json == messages.receipt()

    big = b"command=%2Ffeedback&text=" + b"x" * (1024 * 1024)
    refused = asgi.post(
        "/slack/commands",
        chunks=[big[:600_000], big[600_000:]],
        headers=signed_headers(SIGNING_SECRET, big),
    )
    assert refused is not None and refused.status_code == 413
    assert queue(redis, TICKETS).count == 1


def test_a_malformed_length_is_a_400(asgi: AsgiClient, redis: Redis) -> None:
    response = asgi.post("/slack/commands", chunks=[b""], headers={"Content-Length": "ten"})
    assert response is not None and response.status_code == 400
    assert response.json["message"] == "Content-Length is not a number"


def test_a_body_that_stops_is_a_408_and_nothing_is_queued(asgi: AsgiClient, redis: Redis) -> None:
    # gunicorn says "disconnect" both when the client went away and when its body stopped
    # arriving for gunicorn's timeout; the client still there reads the 408 (a gone one
    # is not written to), on both kinds of route.
    for path in ("/slack/commands", "/zendesk/webhook"):
        response = asgi.post(path, disconnect=True)
        assert response is not None and response.status_code == 408
        assert response.json["error"] == "request_timeout"
    assert redis.dbsize() == 0


def test_ssl_check_is_answered_empty(asgi: AsgiClient, redis: Redis) -> None:
    response = asgi.post("/slack/commands", data=b"ssl_check=1&token=x")
    assert response is not None and response.status_code == 200 and response.data == b""
    assert redis.dbsize() == 0


def test_other_routes_are_flasks(asgi: AsgiClient) -> None:
    health = asgi.get("/healthz")
    assert health is not None and health.json == {"status": "ok"}
    missing = asgi.get("/slack/nowhere")
    assert missing is not None and missing.status_code == 404
    assert missing.json["error"] == "not_found"


def test_a_chunked_body_reaches_a_flask_route(asgi: AsgiClient, redis: Redis) -> None:
    # A body without a length reaches Flask whole, with its length.
    body = interaction_body(fixture_payload("message_action__send_to_support.json"))
    response = asgi.post(
        "/slack/interactions",
        chunks=[body[:100], body[100:]],
        headers=signed_headers(SIGNING_SECRET, body),
    )
    assert response is not None and response.status_code == 200
    # The shortcut's report, and its receipt ahead of it.
    assert [job.func_name for job in queue(redis, TICKETS).jobs] == [
        "workers.receipts.report_received",
        "workers.intake.file_report",
    ]


def _counted(client: AsgiClient, route: str, status: int) -> float:
    """This process's count of answers by route and status, as /metrics shows it."""
    response = client.get("/metrics")
    assert response is not None and response.status_code == 200
    line = f'feedback_hub_http_requests_total{{route="{route}",status="{status}"}} '
    text = response.data.decode()
    return float(text.split(line)[1].split()[0]) if line in text else 0.0


def test_metrics_count_the_commands_answered_on_the_loop(asgi: AsgiClient) -> None:
    before = _counted(asgi, "/slack/commands", 200)
    _post(asgi, fixture_body("slash_command__help.txt"))
    assert _counted(asgi, "/slack/commands", 200) == before + 1


def test_metrics_count_what_the_bridge_answers_before_flask(asgi: AsgiClient) -> None:
    route = "/api/v1/bug-reports"
    before = _counted(asgi, route, 413), _counted(asgi, "unmatched", 413)
    limit = asgi.app.wsgi.max_body
    too_large = {"Content-Length": str(limit + 1)}
    for path in (route, "/nowhere"):
        response = asgi.post(path, chunks=[b"x"], headers=too_large)
        assert response is not None and response.status_code == 413
    assert (_counted(asgi, route, 413), _counted(asgi, "unmatched", 413)) == (
        before[0] + 1,
        before[1] + 1,
    )


def test_a_bug_between_the_loop_and_flask_is_a_json_500_counted(
    asgi: AsgiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = "/api/v1/bug-reports/<report_id>"
    before = _counted(asgi, route, 500)
    app = asgi.app.wsgi.app

    def broken(environ: dict[str, Any], start_response: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(asgi.app.wsgi, "app", broken)
    response = asgi.get("/api/v1/bug-reports/abc")
    monkeypatch.setattr(asgi.app.wsgi, "app", app)
    assert response is not None and response.status_code == 500
    assert response.json == {"error": "internal", "message": "internal error; it has been logged"}
    assert _counted(asgi, route, 500) == before + 1


def test_lifespan_starts_and_shuts_down(app: Flask) -> None:
    client = AsgiClient(HubASGI(app, threads=2))
    assert _post(client, _command(1)).status_code == 200
    client.close()
    assert client.lifespan_sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_the_procfile_app_reads_its_thread_count(env: dict[str, str]) -> None:
    app = create_asgi_app(Settings.from_env("web", {**env, "GUNICORN_THREADS": "3"}))
    # The pool that runs Flask's routes: at most this many of them at once.
    assert app.wsgi.executor._max_workers == 3
    with pytest.raises(ConfigError, match="GUNICORN_THREADS is malformed"):
        Settings.from_env("web", {**env, "GUNICORN_THREADS": "many"})


def test_a_form_body_with_every_character_encoded_files_the_same_text(
    asgi: AsgiClient, redis: Redis
) -> None:
    body = _command(7).replace(b"does+nothing", quote("does nothing", safe="").encode())
    assert b"does%20nothing" in body
    assert _post(asgi, body).json == messages.receipt()
    [job] = queue(redis, TICKETS).jobs
    report = Report.from_job(job.args[0])
    assert report.subject == "The export button does nothing (7) #export"


def test_a_flask_route_gets_the_query_and_headers(asgi: AsgiClient, redis: Redis) -> None:
    # The mobile status route: its id in the path, its app key in a header.
    refused = asgi.get("/api/v1/bug-reports/nope", headers={"Authorization": "Bearer wrong"})
    assert refused is not None and refused.status_code == 401
    key = {"Authorization": "Bearer mobile-key-ios-0000"}
    unknown = asgi.get("/api/v1/bug-reports/nope", headers=key)
    assert unknown is not None and unknown.status_code == 404
    assert unknown.json["error"] == "not_found"


def test_a_body_larger_than_any_route_takes_is_refused_as_it_arrives(
    asgi: AsgiClient, redis: Redis
) -> None:
    limit = asgi.app.wsgi.max_body
    declared = asgi.post(
        "/api/v1/bug-reports", chunks=[b"x"], headers={"Content-Length": str(limit + 1)}
    )
    assert declared is not None and declared.status_code == 413
    assert declared.json["error"] == "payload_too_large"
    piece = b"x" * (1024 * 1024)
    sent = asgi.post("/api/v1/bug-reports", chunks=[piece] * (limit // len(piece) + 1))
    assert sent is not None and sent.status_code == 413
    assert redis.dbsize() == 0


def test_only_the_mobile_routes_take_bodies_over_a_mebibyte(asgi: AsgiClient) -> None:
    # Anyone may send to /zendesk/webhook or /slack/events unsigned: a body larger than
    # those routes ever take is refused as it arrives, not kept on disk until Flask says so.
    limit = asgi.app.wsgi.other_paths_body
    assert limit == 1024 * 1024 < asgi.app.wsgi.max_body
    for path in ("/zendesk/webhook", "/slack/events", "/admin/rules/try"):
        declared = asgi.post(path, chunks=[b"x"], headers={"Content-Length": str(limit + 1)})
        assert declared is not None and declared.status_code == 413, path
        assert declared.json["message"] == (
            f"the request body is larger than this route accepts ({limit} bytes)"
        )
    piece = b"x" * (256 * 1024)
    sent = asgi.post("/zendesk/webhook", chunks=[piece] * 5)
    assert sent is not None and sent.status_code == 413


def test_a_flask_route_body_that_stops_is_a_408_before_flask_runs(asgi: AsgiClient) -> None:
    response = asgi.post("/slack/interactions", disconnect=True)
    assert response is not None and response.status_code == 408
    assert response.json["message"].startswith("the request body did not arrive in full")


def test_a_reply_slower_than_the_timeout_is_retried_and_files_once(
    asgi: AsgiClient, redis: Redis
) -> None:
    assert _post(asgi, _command(1)).json == messages.receipt()  # a pooled connection
    # Redis holds writes for longer than the web process's 1 s bound on a trip: the trip
    # times out, the connection is dropped, and the retry (after the pause) files it.
    Redis(connection_pool=redis.connection_pool).execute_command("CLIENT", "PAUSE", 1300, "WRITE")
    answer = _post(asgi, _command(2))
    assert answer is not None and answer.json == messages.receipt()
    assert queue(redis, TICKETS).count == 2  # once each, the retried one included


@pytest.mark.parametrize("where", ["/slack/commands", "/healthz"])
def test_a_bug_in_a_route_is_the_same_json_500_logged_and_counted(
    asgi: AsgiClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    # /slack/commands answered on the loop, and a Flask route behind the bridge.
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    if where == "/slack/commands":
        monkeypatch.setattr(asgi.app.commands, "_start", broken)
    else:
        monkeypatch.setitem(asgi.app.flask.view_functions, "healthz", broken)
    before = _counted(asgi, where, 500)
    with caplog.at_level("ERROR"):
        response = _post(asgi, _command(1)) if where == "/slack/commands" else asgi.get("/healthz")
    assert response is not None and response.status_code == 500
    assert response.json == {"error": "internal", "message": "internal error; it has been logged"}
    assert _counted(asgi, where, 500) == before + 1
    logged = [r.fields for r in caplog.records if r.getMessage() == "http.internal_error"]  # type: ignore[attr-defined]
    assert logged == [{"path": where, "error": "RuntimeError"}]
