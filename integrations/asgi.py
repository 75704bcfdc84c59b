"""The web process as gunicorn's asgi worker runs it (Procfile: `app:create_asgi_app()`).

POST /slack/commands is answered on the worker's event loop (integrations/slack/commands.py):
a report waits for Redis without holding a thread, and the reports that arrive meanwhile
share its round trip. Every other route is the Flask app's, run in a pool of threads, as a
threaded WSGI server would run it (`WSGIBridge`).

Why an event loop for the one route: under gunicorn's gthread worker, each request crossed
three threads (the acceptor, a request thread, the one holding Redis's round trip), and
that hand-off cost more CPU than the hub's own work; the same machine answered about
1.5 times as many `/feedback`s on the event loop (docs/slack.md, bench/slack_ack_bench.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from tempfile import SpooledTemporaryFile
from typing import IO, TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException

from integrations import logs
from integrations.errors import Rejected, error_payload, internal_error
from integrations.http_body import (
    BODY_TIMEOUT,
    Disconnected,
    Receive,
    Scope,
    Send,
    receive_body,
    request_headers,
)
from integrations.mobile.views import blueprint as mobile_blueprint
from integrations.mobile.views import largest_body
from integrations.slack.commands import PATH, SlashCommands
from integrations.web import HTTP_REQUESTS, Hub

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# A body larger than this waits in a temporary file, not in memory (uploads with files).
SPOOL_BYTES = 1024 * 1024


class HubASGI:
    """The hub's ASGI app: /slack/commands on the event loop, the rest to Flask in threads."""

    def __init__(self, app: Flask, *, threads: int) -> None:
        self.flask = app
        commands = app.wsgi_app
        if not isinstance(commands, SlashCommands):
            raise TypeError("create_app installs SlashCommands in front of the Flask app")
        self.commands = commands
        self.hub: Hub = app.extensions["feedback_hub"]
        # Flask refuses a body over its route's limit; the mobile routes take the largest
        # (reports with files), every other route at most the app's MAX_CONTENT_LENGTH:
        # a larger body is refused as it arrives, never spooled to disk first.
        max_body = max(app.config["MAX_CONTENT_LENGTH"], largest_body(app))
        self.wsgi = WSGIBridge(
            commands,
            threads=threads,
            max_body=max_body,
            refused=self._count_refused,
            other_paths_body=app.config["MAX_CONTENT_LENGTH"],
            max_body_prefix=f"{mobile_blueprint.url_prefix}/",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if scope["path"] == PATH:
                await self.commands.asgi(scope, receive, send)
            else:
                await self.wsgi(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:
            # The hub serves no websockets: refuse the handshake.
            await send({"type": "websocket.close", "code": 1000})

    def _count_refused(self, scope: Scope, status: int) -> None:
        """Count in /metrics an answer the bridge gave before Flask saw the request.

        By the route Flask would have matched, as Flask's own answers are counted.
        """
        try:
            rule, _ = self.flask.url_map.bind("localhost").match(
                scope["path"], method=scope["method"], return_rule=True
            )
            route = rule.rule
        except HTTPException:
            route = "unmatched"
        HTTP_REQUESTS.labels(route, str(status)).inc()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # Reports still on their way to Redis finish before the worker exits.
                try:
                    await self.hub.close_async()
                except Exception as exc:
                    logs.event(log, "web.shutdown_error", logging.WARNING, error=type(exc).__name__)
                self.wsgi.executor.shutdown(wait=True)
                await send({"type": "lifespan.shutdown.complete"})
                return


class WSGIBridge:
    """A WSGI app under the event loop: the body read on the loop, the app run in a thread.

    One hand-off to a thread and one back per request: the body arrives whole (in memory,
    or in a temporary file past SPOOL_BYTES) before the app runs, and the app's answer is
    collected in the thread and sent from the loop. A body declared or found larger than
    `max_body` is refused with 413 as it arrives. The hub's answers are small JSON: none
    is streamed. `refused(scope, status)` hears of every answer given without the app (a
    413, a bug between the two), so /metrics counts it.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        threads: int,
        max_body: int,
        refused: Callable[[Scope, int], None] = lambda scope, status: None,
        other_paths_body: int | None = None,
        max_body_prefix: str = "/",
    ) -> None:
        self.app = app
        # `max_body` for paths under `max_body_prefix`, `other_paths_body` for the rest.
        self.max_body = max_body
        self.max_body_prefix = max_body_prefix
        self.other_paths_body = max_body if other_paths_body is None else other_paths_body
        self.refused = refused
        self.too_large = {
            limit: f"the request body is larger than this route accepts ({limit} bytes)"
            for limit in (self.max_body, self.other_paths_body)
        }
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="flask")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with SpooledTemporaryFile(max_size=SPOOL_BYTES) as body:
            try:
                length = request_headers(scope, _LENGTH).get("content-length")
                path = str(scope.get("path") or "")
                limit = (
                    self.max_body
                    if path.startswith(self.max_body_prefix)
                    else self.other_paths_body
                )
                size = await receive_body(receive, length, limit, self.too_large[limit], body)
            except Disconnected:
                self.refused(scope, 408)
                await _send(send, *_json(408, error_payload(408, BODY_TIMEOUT)))
                return
            except Rejected as exc:
                self.refused(scope, exc.status)
                await _send(
                    send, *_json(exc.status, error_payload(exc.status, exc.reason, exc.code))
                )
                return
            body.seek(0)
            environ = _environ(scope, body, size)
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(self.executor, self._run, scope, environ)
        await _send(send, *answer)

    def _run(
        self, scope: Scope, environ: dict[str, Any]
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The app's answer to one request: status, headers, body (in a pool thread)."""
        started: list[tuple[str, list[tuple[str, str]]]] = []
        written: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [(status, headers)]
            return written.append

        try:
            chunks = self.app(environ, start_response)
            try:
                written.extend(chunks)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        except Exception as exc:  # Flask answers its own errors: this is a bug in between
            self.refused(scope, 500)
            return _json(500, internal_error(log, exc, scope["path"]))
        status, headers = started[0]
        encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        return int(status.split(" ", 1)[0]), encoded, b"".join(written)


_LENGTH = frozenset((b"content-length",))


def _environ(scope: Scope, body: IO[bytes], size: int) -> dict[str, Any]:
    """PEP 3333's environ for an ASGI request whose body has been read whole."""
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode().decode("latin-1"),
        "PATH_INFO": scope["path"].encode().decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] or 0),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": str(client[0]),
        "REMOTE_PORT": str(client[1]),
        # The body is whole: its length is known, even when it came chunked.
        "CONTENT_LENGTH": str(size),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1")
        if name in ("content-length", "transfer-encoding"):
            continue  # the body has been de-chunked and measured
        key = "CONTENT_TYPE" if name == "content-type" else "HTTP_" + name.upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def _json(status: int, payload: dict[str, str]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """An error answer in every route's shape: {"error": code, "message": text}."""
    return status, [(b"content-type", b"application/json")], json.dumps(payload).encode()


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [h for h in headers if h[0] != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def json_protocol_errors() -> None:
    """Make gunicorn's own error answers JSON, like every other error of the hub.

    A request gunicorn cannot parse (a bad request line or Content-Length, a control
    character in a header, an overlong request line or header, a transfer coding it does
    not know) is answered by gunicorn itself, before any app sees it, as a text/plain page.
    gunicorn has no setting or hook for those bodies; its asgi protocol writes them all
    in one method, which is replaced here (gunicorn 27: a test starts the Procfile's web
    process and sends each kind, so an upgrade that moves the method is caught). Called
    from the gunicorn configuration, before gunicorn forks its workers.
    """
    from gunicorn.asgi import protocol

    def send_error_response(
        self: Any, status: int, message: str, extra_headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        body = json.dumps(error_payload(status, message)).encode()
        reason = protocol._REASON_PHRASES.get(status) or _phrase(status)
        extra = "".join(f"{name}: {value}\r\n" for name, value in extra_headers)
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"{extra}"
            "Connection: close\r\n\r\n"
        )
        self._safe_write(head.encode("latin-1"))
        self._safe_write(body)

    protocol.ASGIProtocol._send_error_response = send_error_response


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
