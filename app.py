"""feedback-hub: the web app (create_app), its health routes, and the `feedback-hub` CLI."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click
from flask import Flask, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from redis.exceptions import RedisError
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from werkzeug.exceptions import HTTPException

import integrations
from integrations import logs
from integrations.asgi import HubASGI
from integrations.errors import Rejected, Unavailable, error_payload, internal_error
from integrations.queue import QUEUES, connect, queue
from integrations.queue.health import queue_health
from integrations.queue.timers import TimerCollector
from integrations.settings import ConfigError, Settings
from integrations.web import HTTP_REQUESTS, Hub

log = logging.getLogger("feedback_hub")

# Bodies larger than this are refused with 413 before a view reads them;
# an integration that takes files raises it for its own routes.
MAX_BODY_BYTES = 1024 * 1024


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web app; without `settings`, read them from the environment (role web)."""
    if settings is None:
        settings = Settings.from_env("web")
    # Every request of the web process logs a line: written in batches, off the request threads.
    logs.configure(settings.secrets, batched=True, fmt=settings.log_format)

    app = Flask("feedback_hub")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    assert settings.redis_url, "web settings always have REDIS_URL"
    # Short timeouts: Slack wants an answer within 3 s, so a dead Redis must fail fast.
    hub = Hub(settings=settings, redis=connect(settings.redis_url, timeout=1.0))
    hub.readiness["redis"] = lambda: _redis_ready(hub)
    hub.readiness["settings"] = lambda: _settings_ready(settings)
    from rules.store import readiness_check

    hub.readiness["rules"] = readiness_check(settings.rules_path)
    app.extensions["feedback_hub"] = hub

    for blueprint in integrations.blueprints():
        app.register_blueprint(blueprint)
    _register_health(app, hub)
    _register_errors(app)
    for install in integrations.fronts():
        install(app)
    return app


def create_asgi_app(settings: Settings | None = None) -> HubASGI:
    """The web process as the Procfile runs it, under gunicorn's asgi worker.

    POST /slack/commands on the event loop; every other route is create_app's Flask app,
    in GUNICORN_THREADS threads per worker process (default 8).
    """
    if settings is None:
        settings = Settings.from_env("web")
    return HubASGI(create_app(settings), threads=settings.web_threads)


def _redis_ready(hub: Hub) -> tuple[bool, str]:
    try:
        hub.redis.ping()
    except RedisError as exc:
        return False, f"Redis is unreachable: {type(exc).__name__}"
    return True, "ok"


def _settings_ready(settings: Settings) -> tuple[bool, str]:
    missing = settings.missing("worker")
    if missing:
        return False, f"workers cannot file tickets until these are set: {', '.join(missing)}"
    return True, "ok"


class _QueueCollector:
    """Queue depths and dead letters, read from Redis at scrape time (shared by all processes)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Any:
        depth = GaugeMetricFamily("feedback_hub_queue_jobs", "Jobs waiting", labels=["queue"])
        scheduled = GaugeMetricFamily(
            "feedback_hub_scheduled_jobs",
            "Jobs waiting for a retry or rate limit",
            labels=["queue"],
        )
        failed = GaugeMetricFamily(
            "feedback_hub_failed_jobs",
            "Dead letters: jobs that exhausted their retries",
            labels=["queue"],
        )
        up = GaugeMetricFamily("feedback_hub_redis_up", "1 when Redis answers this process")
        alive = GaugeMetricFamily(
            "feedback_hub_workers_alive", "Workers whose heartbeat is recent (filing reports)"
        )
        oldest = GaugeMetricFamily(
            "feedback_hub_oldest_queued_job_age_seconds",
            "Age of the oldest job waiting (grows while no worker takes jobs)",
            labels=["queue"],
        )
        try:
            health = queue_health(self.hub.redis)
            for name in QUEUES:
                q = queue(self.hub.redis, name)
                depth.add_metric([name], health.waiting[name])
                oldest.add_metric([name], health.oldest_seconds[name])
                scheduled.add_metric([name], ScheduledJobRegistry(queue=q).count)
                failed.add_metric([name], FailedJobRegistry(queue=q).count)
        except RedisError:
            # An outage is a reading too: the queue figures are unknown, not zero.
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        alive.add_metric([], health.workers_alive)
        yield up
        yield alive
        yield depth
        yield oldest
        yield scheduled
        yield failed


def _register_health(app: Flask, hub: Hub) -> None:
    registry = CollectorRegistry()
    registry.register(HTTP_REQUESTS)
    registry.register(_QueueCollector(hub))
    # First-reply times, breaches and open timers, written by the workers (workers/timers.py).
    registry.register(TimerCollector(hub.redis))

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        checks = {name: check() for name, check in hub.readiness.items()}
        ready = all(ok for ok, _ in checks.values())
        body: dict[str, Any] = {
            "ready": ready,
            "checks": {name: detail for name, (_, detail) in checks.items()},
        }
        # Not part of readiness: this process accepts reports into the durable queue
        # whether or not workers take them. Shown so an outage of the workers is seen.
        try:
            health = queue_health(hub.redis)
            body["workers"] = {
                "alive": health.workers_alive,
                "waiting": sum(health.waiting.values()),
                "oldest_queued_seconds": health.oldest_queued_seconds,
            }
        except RedisError:
            body["workers"] = None
        return jsonify(body), 200 if ready else 503

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)

    @app.after_request
    def count(response: Response) -> Response:
        rule = request.url_rule.rule if request.url_rule else "unmatched"
        HTTP_REQUESTS.labels(rule, str(response.status_code)).inc()
        return response


def _register_errors(app: Flask) -> None:
    """Every 4xx and 5xx answers JSON {"error": code, "message": text}, never an HTML page."""

    def answer(status: int, message: str, code: str | None = None) -> tuple[Response, int]:
        return jsonify(error_payload(status, message, code)), status

    @app.errorhandler(Rejected)
    def rejected(exc: Rejected) -> tuple[Response, int]:
        return answer(exc.status, exc.reason, exc.code)

    @app.errorhandler(Unavailable)
    def unavailable(exc: Unavailable) -> tuple[Response, int]:
        return answer(503, str(exc))

    @app.errorhandler(RedisError)
    def redis_down(exc: RedisError) -> tuple[Response, int]:
        logs.event(log, "redis.unavailable", logging.ERROR, error=type(exc).__name__)
        # Not "nothing was accepted": after a timeout the write may have landed. Slack's
        # retries and mobile retries with their Idempotency-Key are taken as the same.
        return answer(503, "the hub cannot store requests right now; retry this request")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            limit = request.max_content_length
            message = f"the request body is larger than this route accepts ({limit} bytes)"
        return answer(status, message)

    @app.errorhandler(Exception)
    def internal(exc: Exception) -> tuple[Response, int]:
        return jsonify(internal_error(log, exc, request.path)), 500


# ---------------------------------------------------------------- the CLI


@click.group(help="feedback-hub: Slack and mobile feedback to routed Zendesk tickets.")
@click.pass_context
def cli(ctx: click.Context) -> None:
    from integrations.zendesk.setup import RULE_GROUPS
    from rules.cli import rule_groups

    # `zendesk setup --create-groups` (integrations) reads the rules' groups through this.
    ctx.obj = {RULE_GROUPS: rule_groups}


@cli.command()
@click.option("--burst", is_flag=True, help="Stop once the queues are empty.")
def worker(burst: bool) -> None:
    """Run an rq worker (with the scheduler) on the hub's queues."""
    from workers.worker import run

    settings = Settings.from_env("worker")
    logs.configure(settings.secrets, fmt=settings.log_format)
    run(settings, burst=burst)


@cli.command("config")
def show_config() -> None:
    """Check the environment: what is set, what each process still needs (never prints secrets)."""
    settings = Settings.from_env("cli")
    for role in ("web", "worker"):
        missing = settings.missing(role)
        state = "ready" if not missing else "missing " + ", ".join(missing)
        click.echo(f"{role}: {state}")
    click.echo(f"zendesk: {settings.zendesk_url or '-'}")
    click.echo(f"slack api: {settings.slack_api_url}")
    click.echo(f"mobile apps: {', '.join(sorted(settings.mobile_api_keys)) or '-'}")
    click.echo(f"rules: {settings.rules_path}")


@cli.command()
def dev() -> None:
    """Run the hub locally: Redis, web and worker (the README's `make run`)."""
    from workers.devserver import run_dev

    sys.exit(run_dev())


def _register_commands() -> None:
    from integrations.sandbox.cli import sandbox, simulate
    from integrations.zendesk.setup import zendesk_cli
    from rules.cli import rules_cli
    from workers.cli import failed
    from workers.related_cli import related
    from workers.timers_cli import watch
    from workers.trends_cli import digest_cmd, tags

    cli.add_command(failed)
    cli.add_command(watch)
    cli.add_command(sandbox)
    cli.add_command(simulate)
    cli.add_command(rules_cli)
    cli.add_command(related)
    cli.add_command(zendesk_cli)
    cli.add_command(tags)
    cli.add_command(digest_cmd)


_register_commands()


def main() -> None:
    """Console-script entry: configuration errors end in one line naming the variable."""
    try:
        # Without standalone mode, click returns a command's exit code (click.exceptions.
        # Exit raised inside it) instead of exiting: it is the process's.
        code = cli.main(standalone_mode=False)
    except ConfigError as exc:
        click.echo(f"feedback-hub: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
