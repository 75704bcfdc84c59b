"""A test client for the hub's ASGI app (what gunicorn's asgi worker runs), FlaskClient-shaped.

The app runs on an event loop in a thread of its own, as in the web process: requests
made from several test threads at once are handled concurrently on that one loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from integrations.asgi import HubASGI


@dataclass
class AsgiResponse:
    """What the app sent: status, headers (lowercase names), body."""

    status_code: int
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes = b""

    @property
    def json(self) -> Any:
        return json.loads(self.data) if self.data else None


class AsgiClient:
    """Calls an ASGI app the way gunicorn's asgi worker does, on a loop in its own thread."""

    def __init__(self, app: HubASGI) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._lifespan: asyncio.Queue[dict[str, Any]] | None = None
        self.lifespan_sent: list[str] = []
        self._run(self._start_lifespan())

    def get(self, path: str, **kwargs: Any) -> AsgiResponse | None:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> AsgiResponse | None:
        return self.request("POST", path, **kwargs)

    def request(
        self,
        method: str,
        path: str,
        *,
        data: bytes = b"",
        headers: dict[str, str] | None = None,
        chunks: list[bytes] | None = None,
        disconnect: bool = False,
    ) -> AsgiResponse | None:
        """One request. `chunks`: the body in pieces, with no Content-Length (chunked).
        `disconnect`: the client hangs up before sending its body. None when nothing was sent.
        """
        sent_headers = dict(headers or {})
        if chunks is None:
            chunks = [data]
            sent_headers.setdefault("Content-Length", str(len(data)))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in sent_headers.items()],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 5000),
        }
        return self._run(self._call(scope, chunks, disconnect))

    def close(self) -> None:
        """Shut the app down as the worker does (lifespan shutdown), then stop the loop."""
        try:
            self._run(self._stop_lifespan())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            self.loop.close()

    # ------------------------------------------------------------ on the loop

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    async def _call(
        self, scope: dict[str, Any], chunks: list[bytes], disconnect: bool
    ) -> AsgiResponse | None:
        messages: list[dict[str, Any]] = (
            [{"type": "http.disconnect"}]
            if disconnect
            else [
                {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
                for i, chunk in enumerate(chunks)
            ]
        )
        done = asyncio.Event()
        response: AsgiResponse | None = None
        body: list[bytes] = []

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            await done.wait()  # the request is over: the client hung up
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            nonlocal response
            if message["type"] == "http.response.start":
                response = AsgiResponse(
                    message["status"],
                    {k.decode(): v.decode() for k, v in message.get("headers", [])},
                )
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))

        await self.app(scope, receive, send)
        done.set()
        if response is not None:
            response.data = b"".join(body)
        return response

    async def _start_lifespan(self) -> None:
        self._lifespan = asyncio.Queue()
        self._lifespan.put_nowait({"type": "lifespan.startup"})
        sent = asyncio.Event()
        queue = self._lifespan

        async def send(message: MutableMapping[str, Any]) -> None:
            self.lifespan_sent.append(message["type"])
            sent.set()

        self._lifespan_task = asyncio.get_running_loop().create_task(
            self.app({"type": "lifespan", "asgi": {"version": "3.0"}}, queue.get, send)
        )
        await sent.wait()

    async def _stop_lifespan(self) -> None:
        assert self._lifespan is not None
        self._lifespan.put_nowait({"type": "lifespan.shutdown"})
        await self._lifespan_task
