"""POST /slack/commands: verify, parse, enqueue, answer, in front of Flask.

`/feedback <text>` files a report, `/feedback` opens the form, anything else gets the usage.
This is the hub's busiest route and the one with a deadline: Slack shows the person
`operation_timeout` when the answer takes more than 3 s, and under load every request
waits for the ones before it. Flask's per-request machinery (request and app contexts,
URL matching, response objects) cost this route more than verifying, parsing and
queueing the report did (bench/slack_ack_bench.py), so it is answered here, before
Flask, from the same pieces the blueprint uses.

The web process runs it on gunicorn's event loop (`SlashCommands.asgi`, see
integrations/asgi.py): a report waits for Redis without holding a thread, and the
reports that arrive meanwhile share its round trip. The same steps also serve as a WSGI
app (`SlashCommands.__call__`), for create_app's Flask app and any WSGI host. Either way
the answers keep every route's contract: JSON, errors as {"error": code, "message":
text}, bodies over the app's limit refused with 413, counted in /metrics.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from integrations import logs
from integrations.errors import HubError, Rejected, error_payload, internal_error
from integrations.http_body import (
    BODY_TIMEOUT,
    Disconnected,
    Receive,
    Scope,
    Send,
    check_length,
    receive_body,
    request_headers,
)
from integrations.queue import Enqueued
from integrations.report import Report
from integrations.slack import messages, reports
from integrations.slack.payloads import SlashCommand, parse_command
from integrations.slack.views import SlackIntake, intake
from integrations.web import HTTP_REQUESTS, Hub

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

PATH = "/slack/commands"
# The answer to almost every request, encoded once.
_RECEIPT = json.dumps(messages.receipt()).encode()

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
# A status and a JSON payload: a dict, or one already encoded; None is an empty 200.
Answer = tuple[int, dict[str, Any] | bytes | None]


@dataclass(frozen=True)
class _Filing:
    """A verified `/feedback <text>` and its report, to be queued."""

    command: SlashCommand
    report: Report


@dataclass(frozen=True)
class _OpenForm:
    """A verified `/feedback` with no text: the form is opened (a Slack Web API call)."""

    command: SlashCommand


class SlashCommands:
    """POST /slack/commands; as a WSGI app, every other path goes on to `downstream`."""

    def __init__(self, app: Flask, downstream: WSGIApp) -> None:
        self.app = app
        self.downstream = downstream
        self.hub: Hub = app.extensions["feedback_hub"]
        self.max_body: int = app.config["MAX_CONTENT_LENGTH"]
        self.too_large = (
            f"the request body is larger than this route accepts ({self.max_body} bytes)"
        )

    @property
    def intake(self) -> SlackIntake:
        """The verifier and views.open client the Slack views share (tests swap its clock)."""
        return intake(self.app)

    # ------------------------------------------------------------ WSGI

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return self.downstream(environ, start_response)
        try:
            _only_post(environ.get("REQUEST_METHOD", ""))
            step = self._start(
                self._wsgi_body(environ),
                environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", ""),
                environ.get("HTTP_X_SLACK_SIGNATURE", ""),
            )
            if isinstance(step, _Filing):
                try:
                    answer = self._filed(step, self.hub.file_report(step.report))
                except RedisError as exc:
                    answer = self._not_filed(exc)
            elif isinstance(step, _OpenForm):
                answer = 200, self._open_form(step.command)
            else:
                answer = step
        except Exception as exc:
            answer = _failed(exc)
        status, body, is_json = _render(answer)
        headers = [("Content-Length", str(len(body)))]
        if is_json:
            headers.append(("Content-Type", "application/json"))
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [body]

    def _wsgi_body(self, environ: dict[str, Any]) -> bytes:
        stream = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH") or ""
        if length:
            check_length(length, self.max_body, self.too_large)
            data: bytes = stream.read(int(length))
            return data
        # Chunked: the server ends the stream; read one byte past the limit to know.
        if environ.get("wsgi.input_terminated"):
            data = stream.read(self.max_body + 1)
            if len(data) > self.max_body:
                raise Rejected(413, self.too_large)
            return data
        return b""

    # ------------------------------------------------------------ ASGI

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The route on an event loop: the report waits for Redis without holding a thread."""
        try:
            _only_post(scope["method"])
            sent = request_headers(scope, _READ_HEADERS)
            received = io.BytesIO()
            await receive_body(
                receive,
                sent.get("content-length"),
                self.max_body,
                self.too_large,
                received,
            )
            step = self._start(
                received.getvalue(),
                sent.get("x-slack-request-timestamp", ""),
                sent.get("x-slack-signature", ""),
            )
            if isinstance(step, _Filing):
                try:
                    answer = self._filed(step, await self.hub.file_report_async(step.report))
                except RedisError as exc:
                    answer = self._not_filed(exc)
            elif isinstance(step, _OpenForm):
                # views.open is a blocking HTTP call of up to 2 s: a thread makes it.
                answer = 200, await asyncio.to_thread(self._open_form, step.command)
            else:
                answer = step
        except Disconnected:
            answer = _failed(Rejected(408, BODY_TIMEOUT))
        except Exception as exc:
            answer = _failed(exc)
        status, body, is_json = _render(answer)
        headers = [(b"content-length", b"%d" % len(body))]
        if is_json:
            headers.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    # ------------------------------------------------------------ the steps both share

    def _start(self, body: bytes, timestamp: str, signature: str) -> Answer | _Filing | _OpenForm:
        """Everything before Redis or Slack's Web API: an answer, or what to do next."""
        if body.startswith(b"ssl_check=1"):
            # Slack's certificate check of the command URL: answered 200, nothing is read or done.
            return 200, None
        # The raw bytes, before any form parsing: the signature covers exactly these.
        self.intake.verifier.verify(
            body, {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}
        )
        command = parse_command(body)
        text = command.text.strip()
        if command.command != messages.FEEDBACK_COMMAND or text.lower() in ("help", "?"):
            return 200, messages.usage(command.command)
        if not text:
            return _OpenForm(command)
        return _Filing(command, reports.command_report(command))

    def _filed(self, filing: _Filing, enqueued: Enqueued) -> Answer:
        command = filing.command
        logs.event(
            log,
            "slack.command.queued",
            report=filing.report.key_digest,
            team=command.team_id,
            user=command.user_id,
            created=enqueued.created,
        )
        return 200, _RECEIPT

    def _not_filed(self, exc: RedisError) -> Answer:
        logs.event(log, "slack.intake.not_queued", logging.ERROR, error=type(exc).__name__)
        return 200, messages.could_not_file()

    def _open_form(self, command: SlashCommand) -> dict[str, Any] | None:
        """Open the feedback modal; None when it opened, else the hint to show instead."""
        api = self.intake.api
        if api is None or not command.trigger_id:
            logs.event(log, "slack.form.unavailable", logging.WARNING, has_token=api is not None)
            return messages.could_not_open_form()
        metadata = messages.modal_metadata(
            channel_id=command.channel_id,
            channel_name=command.channel_name,
            team_domain=command.team_domain,
            response_url=command.response_url,
        )
        try:
            api.open_view(command.trigger_id, messages.feedback_modal(metadata))
        except HubError as exc:
            logs.event(log, "slack.form.not_opened", logging.WARNING, reason=str(exc))
            return messages.could_not_open_form()
        return None


def _only_post(method: str) -> None:
    if method != "POST":
        raise Rejected(405, "The method is not allowed for the requested URL.")


# The headers this route reads.
_READ_HEADERS = frozenset((b"content-length", b"x-slack-request-timestamp", b"x-slack-signature"))
# This route's answers by status in /metrics, looked up once each (labels() takes a lock).
_COUNTERS: dict[int, Any] = {}


def _failed(exc: Exception) -> Answer:
    if isinstance(exc, Rejected):
        return exc.status, error_payload(exc.status, exc.reason, exc.code)
    return 500, internal_error(log, exc, PATH)


def _render(answer: Answer) -> tuple[int, bytes, bool]:
    """Status, body, and whether the body is JSON, of an answer; counted in /metrics."""
    status, payload = answer
    counter = _COUNTERS.get(status)
    if counter is None:
        counter = _COUNTERS[status] = HTTP_REQUESTS.labels(PATH, str(status))
    counter.inc()
    # An empty 200 is Slack's "acknowledged, nothing to show" (ssl_check, form opened).
    if payload is None or isinstance(payload, bytes):
        body = payload or b""
    else:
        body = json.dumps(payload).encode()
    return status, body, payload is not None


def install(app: Flask) -> None:
    """Put POST /slack/commands in front of the app's Flask dispatch (after its blueprints)."""
    app.wsgi_app = SlashCommands(app, app.wsgi_app)  # type: ignore[method-assign]
