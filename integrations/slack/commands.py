"""POST /slack/commands: verify, parse, enqueue, answer, as a small WSGI app in front of Flask.

`/feedback <text>` files a report, `/feedback` opens the form, anything else gets the usage.
This is the hub's busiest route and the one with a deadline: Slack shows the person
`operation_timeout` when the answer takes more than 3 s, and under load every request
waits for the ones before it. Flask's per-request machinery (request and app contexts,
URL matching, response objects) cost this route more than verifying, parsing and
queueing the report did (bench/slack_ack_bench.py), so it is answered here, before
Flask, from the same pieces the blueprint uses. Its answers keep every route's
contract: JSON, errors as {"error": code, "message": text}, bodies over the app's limit
refused with 413, counted in /metrics.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from integrations import logs
from integrations.errors import HubError, Rejected
from integrations.slack import messages, reports
from integrations.slack.payloads import SlashCommand, parse_command
from integrations.slack.views import SlackIntake, intake
from integrations.web import HTTP_REQUESTS, Hub

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

PATH = "/slack/commands"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Answer = tuple[int, dict[str, Any] | None]


class SlashCommands:
    """The WSGI app for POST /slack/commands; every other path goes on to `downstream`."""

    def __init__(self, app: Flask, downstream: WSGIApp) -> None:
        self.app = app
        self.downstream = downstream
        self.hub: Hub = app.extensions["feedback_hub"]
        self.max_body: int = app.config["MAX_CONTENT_LENGTH"]

    @property
    def intake(self) -> SlackIntake:
        """The verifier and views.open client the Slack views share (tests swap its clock)."""
        return intake(self.app)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return self.downstream(environ, start_response)
        try:
            status, payload = self._answer(environ)
        except Rejected as exc:
            status, payload = exc.status, {"error": exc.code, "message": exc.reason}
        except Exception as exc:
            logs.event(
                log, "http.internal_error", logging.ERROR, path=PATH, error=type(exc).__name__
            )
            log.exception("unhandled error")
            status = 500
            payload = {"error": "internal", "message": "internal error; it has been logged"}
        HTTP_REQUESTS.labels(PATH, str(status)).inc()
        # An empty 200 is Slack's "acknowledged, nothing to show" (ssl_check, form opened).
        body = b"" if payload is None else json.dumps(payload).encode()
        headers = [("Content-Length", str(len(body)))]
        if payload is not None:
            headers.append(("Content-Type", "application/json"))
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [body]

    def _answer(self, environ: dict[str, Any]) -> Answer:
        if environ.get("REQUEST_METHOD") != "POST":
            raise Rejected(405, "The method is not allowed for the requested URL.")
        body = self._body(environ)
        if body.startswith(b"ssl_check=1"):
            # Slack's certificate check of the command URL: answered 200, nothing is read or done.
            return 200, None
        # The raw bytes, before any form parsing: the signature covers exactly these.
        self.intake.verifier.verify(
            body,
            {
                "X-Slack-Request-Timestamp": environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", ""),
                "X-Slack-Signature": environ.get("HTTP_X_SLACK_SIGNATURE", ""),
            },
        )
        command = parse_command(body)
        text = command.text.strip()
        if command.command != messages.FEEDBACK_COMMAND or text.lower() in ("help", "?"):
            return 200, messages.usage(command.command)
        if not text:
            return 200, self._open_form(command)
        return 200, self._file(command)

    def _body(self, environ: dict[str, Any]) -> bytes:
        stream = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH") or ""
        too_large = Rejected(
            413, f"the request body is larger than this route accepts ({self.max_body} bytes)"
        )
        if length:
            try:
                size = int(length)
            except ValueError:
                raise Rejected(400, "Content-Length is not a number") from None
            if size > self.max_body:
                raise too_large
            data: bytes = stream.read(size)
            return data
        # Chunked: the server ends the stream; read one byte past the limit to know.
        if environ.get("wsgi.input_terminated"):
            data = stream.read(self.max_body + 1)
            if len(data) > self.max_body:
                raise too_large
            return data
        return b""

    def _file(self, command: SlashCommand) -> dict[str, Any]:
        report = reports.command_report(command)
        try:
            enqueued = self.hub.file_report(report)
        except RedisError as exc:
            logs.event(log, "slack.intake.not_queued", logging.ERROR, error=type(exc).__name__)
            return messages.could_not_file()
        logs.event(
            log,
            "slack.command.queued",
            report=report.key_digest,
            team=command.team_id,
            user=command.user_id,
            created=enqueued.created,
        )
        return messages.receipt()

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


def install(app: Flask) -> None:
    """Put POST /slack/commands in front of the app's Flask dispatch (after its blueprints)."""
    app.wsgi_app = SlashCommands(app, app.wsgi_app)  # type: ignore[method-assign]
