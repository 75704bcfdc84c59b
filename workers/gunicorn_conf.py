"""gunicorn settings for the web process (Procfile: web)."""

from __future__ import annotations

import gc
import os
import sys

from integrations.asgi import json_protocol_errors
from integrations.settings import ConfigError, Settings

bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
# Heroku sets WEB_CONCURRENCY from the dyno size.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gunicorn's own asyncio worker: app:create_asgi_app() answers /slack/commands on its event
# loop and runs Flask's routes in GUNICORN_THREADS threads (integrations/asgi.py).
worker_class = "asgi"
asgi_loop = "asyncio"
# Open connections per worker process, idle keep-alive ones included.
worker_connections = 1000
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = None
errorlog = "-"
# Slack retries a request that takes longer than 3 s; so should nobody wait on boot.
preload_app = False

# Refuse to start, in one line naming the variable, when the configuration is
# bad: checked as gunicorn reads this file, before it logs or forks anything.
try:
    Settings.from_env("web")
except ConfigError as exc:
    print(f"feedback-hub: cannot start web: {exc}", file=sys.stderr, flush=True)
    os._exit(2)

# Requests gunicorn refuses before the app sees them are answered JSON too.
json_protocol_errors()


def post_worker_init(worker: object) -> None:
    """Once the app is loaded in a worker: leave what it built at start out of the GC's passes.

    A worker holds tens of thousands of long-lived objects (Flask, pydantic, prometheus,
    redis-py), and every full collection walked them all with the event loop stopped,
    every few seconds under load, while every request in flight waited: most of the
    /slack/commands p99 (the figures: docs/operations.md, docs/slack.md). Objects made
    later are collected as before.
    """
    gc.freeze()
