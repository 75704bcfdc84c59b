"""What every job works with: the settings, Redis, and the Zendesk and Slack clients.

The worker process reads its settings once when it starts (`installed`), not in every
job. Each job runs in a work horse forked from the
worker: the context is inherited, and the clients are built on first use inside the
horse (a client's HTTP connections must not be shared across a fork).

A job called outside a worker (tests calling a job function directly, `feedback-hub`
commands) gets a context built from the environment for that call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

from redis import Redis
from rq import get_current_job

from integrations.queue import connect
from integrations.queue.attachments import AttachmentStore, attachment_store
from integrations.settings import ConfigError, Settings
from integrations.slack.api import SlackApi
from integrations.zendesk.gateway import ZendeskGateway
from rules.model import RuleSet
from rules.store import store_for


@dataclass
class JobContext:
    """The settings, Redis, and clients built on first use."""

    settings: Settings
    redis: Redis

    @cached_property
    def zendesk(self) -> ZendeskGateway:
        """The Zendesk gateway (zenpy), sharing the workers' rate-limit state."""
        return ZendeskGateway.from_settings(self.settings, self.redis)

    @cached_property
    def slack(self) -> SlackApi:
        """The Slack Web API client, sharing the workers' rate-limit state."""
        return SlackApi(self.settings, redis=self.redis)

    @cached_property
    def attachments(self) -> AttachmentStore:
        """Uploads kept in Redis until their ticket is filed."""
        return attachment_store(self.redis)

    def rules(self) -> RuleSet:
        """The rules in force now (a changed file is picked up by the next job)."""
        return store_for(self.settings.rules_path).current()


_installed: Settings | None = None


@contextmanager
def installed(settings: Settings) -> Iterator[None]:
    """These settings for every job this process runs in the block (the worker's lifetime)."""
    global _installed
    before, _installed = _installed, settings
    try:
        yield
    finally:
        _installed = before


def installed_settings() -> Settings:
    """The worker's settings (read once when it started), else the environment's."""
    return _installed or Settings.from_env("worker")


def known_secrets() -> list[str]:
    """The secrets this process knows, to scrub from what it stores or shows.

    In a worker, its settings'; in a command run with only some variables set (an
    operator's `feedback-hub failed list`), whatever of them is set.
    """
    if _installed is not None:
        return _installed.secrets
    try:
        return Settings.from_env("worker").secrets
    except ConfigError:
        return Settings.from_env("cli").secrets


def context() -> JobContext:
    """The running job's context: the worker's settings and the job's Redis connection."""
    settings = _installed or Settings.from_env("worker")
    job = get_current_job()
    if job is not None:
        return JobContext(settings, job.connection)
    assert settings.redis_url, "worker settings always have REDIS_URL"
    return JobContext(settings, connect(settings.redis_url))
