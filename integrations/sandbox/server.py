"""What both sandboxes share: serving a Flask app on a thread, fault injection, request counts."""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, fields
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer, make_server

# Paths under this prefix drive the sandbox itself: never counted, limited, faulted or
# authenticated.
CONTROL = "/__sandbox"


@dataclass
class Faults:
    """What a sandbox does wrong on purpose; every field can be changed while it serves."""

    # Share of API requests answered with `error_status` instead (0.3 = 30 %).
    error_rate: float = 0.0
    error_status: int = 500
    # Seconds to wait before answering each API request.
    delay: float = 0.0
    # A proxy in front that holds the next ticket create this many seconds before it
    # reaches Zendesk (once; then back to 0): a client times out, yet the create lands.
    hold_next_create: float = 0.0
    # An outage: every API request gets 503 with an HTML page, as from a load balancer.
    down: bool = False
    # Requests per minute before 429 with Retry-After; None means no limit (Zendesk only:
    # the Slack sandbox limits per method, see SlackSandbox.rate_limit).
    rate_limit: int | None = None

    def update(self, changes: dict[str, Any]) -> None:
        """Apply the fields named in `changes` (from Python or the control endpoint)."""
        names = {f.name for f in fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown fault {sorted(unknown)[0]!r}; faults are {sorted(names)}")
        for name, value in changes.items():
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        """The faults as JSON-safe data."""
        return asdict(self)


class MinuteWindow:
    """Requests in the last 60 seconds, to answer X-Rate-Limit-Remaining and Retry-After."""

    def __init__(self) -> None:
        self._times: deque[float] = deque()

    def used(self, now: float) -> int:
        """Requests counted in the minute before `now`."""
        while self._times and self._times[0] <= now - 60:
            self._times.popleft()
        return len(self._times)

    def add(self, now: float) -> None:
        """Count one request."""
        self._times.append(now)

    def retry_after(self, now: float) -> int:
        """Whole seconds until the oldest counted request leaves the window (at least 1)."""
        if not self._times:
            return 1
        return max(1, math.ceil(self._times[0] + 60 - now))

    def clear(self) -> None:
        """Forget past requests: the next minute starts now."""
        self._times.clear()


class Sandbox:
    """A Flask app served on 127.0.0.1 by a werkzeug thread; subclasses add the routes."""

    name = "sandbox"

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.faults = Faults()
        self.random = random.Random()
        self.app = Flask(f"sandbox_{self.name}")
        self._counts: Counter[tuple[str, int]] = Counter()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._fault_routes()

    # ------------------------------------------------------------ serving

    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        """Serve on a thread (port 0 picks a free one); return the base URL."""
        # Request lines from werkzeug would drown test and dev output.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = make_server(host, port, self.app, threaded=True)
        server = self._server
        # A short poll interval: stop() (every test's teardown) returns in milliseconds.
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05),
            name=f"{self.name}-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def serve_forever(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve in the calling thread until interrupted (the `feedback-hub sandbox` command)."""
        self._server = make_server(host, port, self.app, threaded=True)
        self._server.serve_forever()

    @property
    def port(self) -> int:
        """The port being served."""
        assert self._server is not None, "the sandbox is not serving"
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        """The base URL, http://127.0.0.1:PORT (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop serving: from now on connections are refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = self._thread = None

    def __enter__(self) -> Sandbox:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ faults and counts

    def _fault_routes(self) -> None:
        """The control endpoints every sandbox has: its faults and its request counts."""

        @self.app.get(f"{CONTROL}/faults")
        def get_faults() -> Response:
            with self.lock:
                return jsonify(self.faults.as_dict())

        @self.app.post(f"{CONTROL}/faults")
        def set_faults() -> Response | tuple[Response, int]:
            try:
                self.set_faults(**(request.get_json(force=True) or {}))
            except (ValueError, TypeError) as exc:
                return jsonify(error=str(exc)), 400
            with self.lock:
                return jsonify(self.faults.as_dict())

        @self.app.get(f"{CONTROL}/stats")
        def stats() -> Response:
            return jsonify(self.stats())

    def set_faults(self, **changes: Any) -> None:
        """Change the injected faults, e.g. set_faults(error_rate=0.3, error_status=500)."""
        with self.lock:
            self.faults.update(changes)

    def clear_faults(self) -> None:
        """Back to a healthy service."""
        with self.lock:
            self.faults = Faults()

    def injected_error(self) -> int | None:
        """The status to answer instead of the real one for this request, or None."""
        with self.lock:
            rate, status = self.faults.error_rate, self.faults.error_status
            hit = rate > 0 and self.random.random() < rate
        return status if hit else None

    def count(self, route: str, status: int) -> None:
        """Record one answered request under its route template."""
        with self.lock:
            self._counts[(route, status)] += 1

    def stats(self) -> dict[str, Any]:
        """Requests answered: total, by status, and by route and status."""
        with self.lock:
            items = list(self._counts.items())
        by_status: Counter[str] = Counter()
        by_route: dict[str, dict[str, int]] = {}
        for (route, status), n in sorted(items):
            by_status[str(status)] += n
            by_route.setdefault(route, {})[str(status)] = n
        return {
            "requests": sum(by_status.values()),
            "by_status": dict(by_status),
            "by_route": by_route,
        }

    def reset_stats(self) -> None:
        """Start counting from zero."""
        with self.lock:
            self._counts.clear()

    @staticmethod
    def now() -> float:
        return time.time()
