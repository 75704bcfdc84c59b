"""The web process as gunicorn's asgi worker runs it (Procfile: `app:create_asgi_app()`).

POST /slack/commands is answered on the worker's event loop (integrations/slack/commands.py):
a report waits for Redis without holding a thread, and the reports that arrive meanwhile
share its round trip. Every other route is the Flask app's, run in a pool of threads (a2wsgi),
exactly as a threaded WSGI server would run it.

Why an event loop for the one route: under gunicorn's gthread worker, each request crossed
three threads (the acceptor, a request thread, the one holding Redis's round trip), and
that hand-off cost more CPU than the hub's own work; the same machine answered about twice
as many `/feedback`s on the event loop (docs/slack.md, bench/slack_ack_bench.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from a2wsgi import WSGIMiddleware

from integrations import logs
from integrations.slack.commands import PATH, Receive, Scope, Send, SlashCommands
from integrations.web import Hub

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)


class HubASGI:
    """The hub's ASGI app: /slack/commands on the event loop, the rest to Flask in threads."""

    def __init__(self, app: Flask, *, threads: int) -> None:
        self.flask = app
        commands = app.wsgi_app
        if not isinstance(commands, SlashCommands):
            raise TypeError("create_app installs SlashCommands in front of the Flask app")
        self.commands = commands
        self.hub: Hub = app.extensions["feedback_hub"]
        self.threads = threads
        self._wsgi = WSGIMiddleware(_terminated_input(commands), workers=threads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if scope["path"] == PATH:
                await self.commands.asgi(scope, receive, send)
            else:
                await self._wsgi(scope, receive, send)  # type: ignore[arg-type]
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:
            # The hub serves no websockets: refuse the handshake.
            await send({"type": "websocket.close", "code": 1000})

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
                self._wsgi.executor.shutdown(wait=True)
                await send({"type": "lifespan.shutdown.complete"})
                return


def _terminated_input(app: Callable[..., Any]) -> Callable[..., Any]:
    """The WSGI app, told that a body without a length (chunked) ends where its stream ends.

    gunicorn says so for chunked bodies (`wsgi.input_terminated`); a2wsgi's stream ends
    with the request's last chunk but does not say it, and Flask would read nothing.
    """

    def with_terminated_input(environ: dict[str, Any], start_response: Any) -> Any:
        if not environ.get("CONTENT_LENGTH"):
            environ["wsgi.input_terminated"] = True
        return app(environ, start_response)

    return with_terminated_input
