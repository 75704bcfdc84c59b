"""Slack-side jobs: receipts, "Ticket #N filed", delays, operator alerts, and who a user is.

Jobs are plain functions taking JSON-safe arguments; they build their own clients
(settings from the environment, Redis from the running rq job). Each message to a
person is posted at most once per report: a retried job finds its mark in Redis.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from redis import Redis
from rq import get_current_job

from integrations import logs
from integrations.errors import Permanent
from integrations.report import ReplyContext, Report
from integrations.settings import Settings
from integrations.slack import messages
from integrations.slack.api import SlackApi
from workers.queues import connect

log = logging.getLogger(__name__)

# A person is told each thing once; the mark outlives any retry schedule.
TOLD_SECONDS = 30 * 24 * 3600
# users.info answers change rarely; a day keeps Slack's Tier 4 budget for the rest.
IDENTITY_SECONDS = 24 * 3600
# No email (scope missing, bot user...) is remembered for less, so a fixed scope shows soon.
NO_EMAIL_SECONDS = 3600

# Errors after which an ephemeral message cannot reach the person in that channel
# (the bot is not in it, a DM between two people, an archived channel...): try a DM.
_NO_EPHEMERAL = {
    "channel_not_found",
    "not_in_channel",
    "user_not_in_channel",
    "is_archived",
    "restricted_action",
    "restricted_action_read_only_channel",
    "ekm_access_denied",
}


def _guarded(step: Callable[..., Any], *args: Any) -> Any:
    # The hub's one place that turns Retryable / Permanent into rq's retry decision.
    from workers.jobs import run_guarded

    return run_guarded(step, *args)


def _redis(settings: Settings) -> Redis:
    job = get_current_job()
    if job is not None:
        return job.connection
    assert settings.redis_url, "worker settings always have REDIS_URL"
    return connect(settings.redis_url)


# ---------------------------------------------------------------- jobs


def report_received(report: dict[str, Any], duplicate: bool = False) -> Any:
    """The shortcut's receipt (its HTTP answer shows nothing): "filing now" or "already sent"."""
    return _guarded(_report_received, report, duplicate)


def _report_received(data: dict[str, Any], duplicate: bool) -> str | None:
    settings = Settings.from_env("worker")
    redis = _redis(settings)
    report = Report.from_job(data)
    message = messages.shortcut_already_sent() if duplicate else messages.shortcut_receipt()
    job = get_current_job()
    what = f"received:{job.id if job else duplicate}"
    api = SlackApi(settings, redis=redis)
    return _tell_once(redis, report, what, lambda: tell_reporter(api, report.reply, message))


def report_filed(report: dict[str, Any], ticket: dict[str, Any]) -> Any:
    """Tell the reporter "Ticket #N filed" with its link, once, where they asked."""
    return _guarded(_report_filed, report, ticket)


def _report_filed(data: dict[str, Any], ticket: dict[str, Any]) -> str | None:
    settings = Settings.from_env("worker")
    redis = _redis(settings)
    report = Report.from_job(data)
    # The reporter's page, not the agent's link (ZENDESK_REQUEST_URL).
    message = messages.ticket_filed(int(ticket["id"]), settings.request_url(int(ticket["id"])))
    api = SlackApi(settings, redis=redis)
    return _tell_once(redis, report, "filed", lambda: tell_reporter(api, report.reply, message))


def report_delayed(report: dict[str, Any], reason: str) -> Any:
    """Tell the reporter their report is delayed (retries exhausted; it is kept, ops alerted)."""
    return _guarded(_report_delayed, report, reason)


def _report_delayed(data: dict[str, Any], reason: str) -> str | None:
    settings = Settings.from_env("worker")
    redis = _redis(settings)
    report = Report.from_job(data)
    # The reason is for operators (it is in the alert); the person hears it is safe.
    logs.event(log, "slack.report_delayed", report=report.key_digest, reason=reason[:200])
    job = get_current_job()
    what = f"delayed:{job.id if job else 'direct'}"
    api = SlackApi(settings, redis=redis)
    return _tell_once(
        redis, report, what, lambda: tell_reporter(api, report.reply, messages.report_delayed())
    )


def ops_alert(text: str) -> Any:
    """Post an operator alert to SLACK_OPS_CHANNEL (only logged when it is not set)."""
    return _guarded(_ops_alert, text)


def _ops_alert(text: str) -> str | None:
    settings = Settings.from_env("worker")
    if not settings.slack_ops_channel:
        why = messages.ops_alert_skipped()
        logs.event(log, "slack.ops_alert.skipped", logging.WARNING, why=why)
        return None
    redis = _redis(settings)
    api = SlackApi(settings, redis=redis)
    channel = settings.slack_ops_channel
    job = get_current_job()
    mark = f"hub:slack:alerted:{job.id}" if job else None
    if mark and not redis.set(mark, "sending", nx=True, ex=TOLD_SECONDS):
        return None
    try:
        api.post_message(channel, {"text": text})
    except BaseException:
        if mark:
            redis.delete(mark)
        raise
    logs.event(log, "slack.ops_alert.posted", channel=channel)
    return channel


# ---------------------------------------------------------------- helpers for other jobs


def reporter_identity(
    settings: Settings, redis: Redis, team_id: str, user_id: str
) -> tuple[str | None, str | None]:
    """(name, email or None) of a Slack user, from users.info, cached in Redis for a day."""
    key = f"hub:slack:identity:{team_id}:{user_id}"
    if cached := redis.get(key):
        name, email = json.loads(cached)
        return name, email
    api = SlackApi(settings, redis=redis)
    try:
        user = api.user_info(user_id)
    except Permanent as exc:
        # user_not_found, missing_scope...: the ticket is still filed, keyed by the Slack id.
        logs.event(log, "slack.identity.unknown", logging.WARNING, user=user_id, reason=exc.reason)
        user = {}
    profile = user.get("profile") or {}
    name = (
        profile.get("real_name")
        or profile.get("display_name")
        or user.get("real_name")
        or user.get("name")
        or None
    )
    email = profile.get("email") or None
    redis.set(key, json.dumps([name, email]), ex=IDENTITY_SECONDS if email else NO_EMAIL_SECONDS)
    return name, email


def permalink(settings: Settings, channel: str, ts: str) -> str | None:
    """A message's permalink (chat.getPermalink), or None when Slack will not give one."""
    api = SlackApi(settings, redis=_redis(settings))
    try:
        return api.permalink(channel, ts)
    except Permanent as exc:
        logs.event(log, "slack.permalink.unavailable", channel=channel, reason=exc.reason)
        return None


def with_permalink(settings: Settings, report: Report) -> Report:
    """A shortcut's report with the message's permalink in its context and reply (else as is)."""
    reply = report.reply
    if report.source != "slack_shortcut" or reply.permalink:
        return report
    if not (reply.channel_id and reply.message_ts):
        return report
    link = permalink(settings, reply.channel_id, reply.message_ts)
    if not link:
        return report
    return report.model_copy(
        update={
            "context": {**report.context, messages.LABEL_PERMALINK: link},
            "reply": reply.model_copy(update={"permalink": link}),
        }
    )


def tell_reporter(api: SlackApi, reply: ReplyContext, message: dict[str, Any]) -> str:
    """Reach the reporter: their response_url, else an ephemeral in the channel, else a DM.

    Returns how it went ("response_url", "ephemeral", "dm"); raises Permanent when Slack
    offers no way to reach them.
    """
    if reply.response_url and api.respond(reply.response_url, message):
        return "response_url"
    if not reply.user_id:
        raise Permanent("no Slack user to tell: the report has no reply context")
    if reply.channel_id:
        try:
            api.post_ephemeral(reply.channel_id, reply.user_id, message, reply.thread_ts)
            return "ephemeral"
        except Permanent as exc:
            if exc.body not in _NO_EPHEMERAL:
                raise
            logs.event(
                log, "slack.ephemeral.unavailable", channel=reply.channel_id, reason=exc.body
            )
    channel = api.open_dm(reply.user_id)
    if not channel:
        raise Permanent("Slack conversations.open returned no channel", body="no_channel")
    api.post_message(channel, message)
    return "dm"


def _tell_once(redis: Redis, report: Report, what: str, tell: Callable[[], str]) -> str | None:
    """Run `tell` unless this report was already told `what`; mark it before and after."""
    mark = f"hub:slack:told:{report.key_digest}:{what}"
    # Marked before posting: if a worker dies mid-post, the retry does not post again
    # (a person told twice is worse than a receipt lost to a crash; the ticket exists).
    if not redis.set(mark, "sending", nx=True, ex=TOLD_SECONDS):
        logs.event(log, "slack.reporter.already_told", report=report.key_digest, what=what)
        return None
    try:
        how = tell()
    except BaseException:
        # Slack said no or could not be reached: nothing was posted, so a retry may post.
        redis.delete(mark)
        raise
    redis.set(mark, f"sent:{how}", ex=TOLD_SECONDS)
    logs.event(log, "slack.reporter.told", report=report.key_digest, what=what, via=how)
    return how
