"""gunicorn settings for the web process (Procfile: web)."""

from __future__ import annotations

import os
import sys

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
