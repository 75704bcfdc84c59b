"""What the reporter hears in Slack: the receipt, "Ticket #N filed", a delay; and who they are.

Each message to a person is posted at most once per report: a retried job finds its
mark in Redis (integrations/queue/marks.py).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from rq import get_current_job

from integrations import logs
from integrations.errors import Permanent
from integrations.queue.marks import once
from integrations.queue.report_log import report_log
from integrations.report import ReplyContext, Report
from integrations.slack import loop, messages
from integrations.slack.api import SlackApi
from workers.context import JobContext, context
from workers.retry import run_guarded

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


# ---------------------------------------------------------------- jobs


def report_received(report: dict[str, Any], duplicate: bool = False) -> Any:
    """The shortcut's receipt (its HTTP answer shows nothing): "filing now" or "already sent"."""
    return run_guarded(_report_received, report, duplicate)


def _report_received(data: dict[str, Any], duplicate: bool) -> str | None:
    report = Report.from_job(data)
    message = messages.shortcut_already_sent() if duplicate else messages.shortcut_receipt()
    job = get_current_job()
    return _tell_once(context(), report, f"received:{job.id if job else duplicate}", message)


def report_filed(report: dict[str, Any], ticket: dict[str, Any]) -> Any:
    """Tell the reporter "Ticket #N filed" with its link, once, where they asked."""
    return run_guarded(_report_filed, report, ticket)


def _report_filed(data: dict[str, Any], ticket: dict[str, Any]) -> str | None:
    ctx = context()
    report = Report.from_job(data)
    ticket_id = int(ticket["id"])
    # The reporter's page, not the agent's link (ZENDESK_REQUEST_URL).
    url = ctx.settings.request_url(ticket_id)
    if report.source == "slack_reaction":
        # Filed from a thread with the ticket emoji: one visible reply in that thread.
        where = loop.announce_filed(
            ctx.slack, ctx.redis, report, ticket_id, messages.thread_filed(ticket_id, url)
        )
        told: str | None = "thread" if where else None
    else:
        told = _tell_once(ctx, report, "filed", messages.ticket_filed(ticket_id, url))
    if told:
        # The console's timeline of the report.
        report_log(ctx.redis, ctx.settings).add_event(
            report.key_digest, "receipt", f"the reporter was told ticket #{ticket_id} ({told})"
        )
    return told


def report_delayed(report: dict[str, Any], reason: str) -> Any:
    """Tell the reporter their report is delayed (retries exhausted; it is kept, ops alerted)."""
    return run_guarded(_report_delayed, report, reason)


def _report_delayed(data: dict[str, Any], reason: str) -> str | None:
    report = Report.from_job(data)
    # The reason is for operators (it is in the alert); the person hears it is safe.
    logs.event(log, "slack.report_delayed", report=report.key_digest, reason=reason[:200])
    job = get_current_job()
    what = f"delayed:{job.id if job else 'direct'}"
    return _tell_once(context(), report, what, messages.report_delayed())


# ---------------------------------------------------------------- helpers for other jobs


def reporter_identity(ctx: JobContext, team_id: str, user_id: str) -> tuple[str | None, str | None]:
    """(name, email or None) of a Slack user, from users.info, cached in Redis for a day."""
    key = f"hub:slack:identity:{team_id}:{user_id}"
    if cached := ctx.redis.get(key):
        name, email = json.loads(cached)
        return name, email
    try:
        user = ctx.slack.user_info(user_id)
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
    ttl = IDENTITY_SECONDS if email else NO_EMAIL_SECONDS
    ctx.redis.set(key, json.dumps([name, email]), ex=ttl)
    return name, email


def permalink(ctx: JobContext, channel: str, ts: str) -> str | None:
    """A message's permalink (chat.getPermalink), or None when Slack will not give one."""
    try:
        return ctx.slack.permalink(channel, ts)
    except Permanent as exc:
        logs.event(log, "slack.permalink.unavailable", channel=channel, reason=exc.reason)
        return None


def with_permalink(ctx: JobContext, report: Report) -> Report:
    """A shortcut's report with the message's permalink in its context and reply (else as is)."""
    reply = report.reply
    if report.source != "slack_shortcut" or reply.permalink:
        return report
    if not (reply.channel_id and reply.message_ts):
        return report
    link = permalink(ctx, reply.channel_id, reply.message_ts)
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


def _tell_once(ctx: JobContext, report: Report, what: str, message: dict[str, Any]) -> str | None:
    """Tell the reporter `message` unless this report was already told `what`."""
    with once(ctx.redis, f"hub:slack:told:{report.key_digest}:{what}", ttl=TOLD_SECONDS) as claim:
        if claim is None:
            logs.event(log, "slack.reporter.already_told", report=report.key_digest, what=what)
            return None
        how = tell_reporter(ctx.slack, report.reply, message)
        claim.done(f"sent:{how}")
    logs.event(log, "slack.reporter.told", report=report.key_digest, what=what, via=how)
    return how
