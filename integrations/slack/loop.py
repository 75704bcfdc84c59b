"""The reporter loop's Slack side: who filed a ticket, where to tell them, and what to say.

When a ticket is filed, `remember_reporter` keeps the report's reply context by
ticket id. When an agent answers publicly (or solves the ticket), `tell_reporter`
posts it in the thread the reporter filed from, or else in a DM, and records that
thread, so the reporter's reply there (POST /slack/events) becomes their comment
on the ticket. The hub relays what a person wrote; it never writes an answer itself.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict
from redis import Redis

from integrations import logs
from integrations.errors import Permanent
from integrations.queue.marks import once
from integrations.report import Report, digest
from integrations.slack.api import SlackApi, error_code
from integrations.slack.mrkdwn import escape_mrkdwn

log = logging.getLogger(__name__)


def thread_key(channel: str, thread_ts: str) -> str:
    """Redis key: which ticket a Slack thread talks about (set when the hub posts in it)."""
    return f"hub:slack:thread:{channel}:{thread_ts}"


# A ticket can be answered weeks after it was filed.
KEEP_SECONDS = 180 * 24 * 3600

# Errors after which the filing thread cannot be used (the bot left, archived...): a DM then.
_THREAD_UNUSABLE = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "restricted_action",
    "thread_not_found",
    "message_not_found",
}


class ReporterRecord(BaseModel):
    """What the hub keeps about who filed a ticket, from the report."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    ticket_id: int
    source: str
    report: str
    name: str | None = None
    team_id: str | None = None
    user_id: str | None = None
    channel_id: str | None = None
    thread_ts: str | None = None
    subject: str = ""
    platform: str | None = None
    app_version: str | None = None


def _reporter_key(ticket_id: int) -> str:
    return f"hub:ticket:{ticket_id}:reporter"


def _conversation_key(ticket_id: int) -> str:
    return f"hub:ticket:{ticket_id}:conversation"


def remember_reporter(redis: Redis, ticket_id: int, report: Report) -> ReporterRecord:
    """Keep who filed `ticket_id` and where to answer them; call it once the ticket exists."""
    reply = report.reply
    record = ReporterRecord(
        ticket_id=ticket_id,
        source=report.source,
        report=report.key_digest,
        name=report.reporter.name,
        team_id=reply.team_id or report.reporter.slack_team_id,
        user_id=reply.user_id or report.reporter.slack_user_id,
        channel_id=reply.channel_id,
        # A shortcut's report is about a message: its thread is where the talk is.
        thread_ts=reply.thread_ts
        or (reply.message_ts if report.source == "slack_shortcut" else None),
        subject=report.subject,
        platform=report.fields.platform,
        app_version=report.fields.app_version,
    )
    redis.set(_reporter_key(ticket_id), record.model_dump_json(), ex=KEEP_SECONDS)
    if report.source == "slack_reaction" and record.channel_id and record.thread_ts:
        # Filed from a thread: that thread is the ticket's from now on (replies become
        # comments, agents' answers go there), before the hub has said anything in it.
        _remember_conversation(redis, ticket_id, Conversation(record.channel_id, record.thread_ts))
    return record


def reporter(redis: Redis, ticket_id: int) -> ReporterRecord | None:
    """Who filed the ticket, when the hub filed it."""
    raw = redis.get(_reporter_key(ticket_id))
    return ReporterRecord.model_validate_json(raw) if raw else None


# ---------------------------------------------------------------- wording


def agent_replied(ticket_id: int, url: str, author: str | None, text: str) -> dict[str, str]:
    """An agent's public reply, relayed with who wrote it, shown as written: a `<!channel>`
    or a disguised link in a reply (or an agent's name) is text, not a ping or a link."""
    body = escape_mrkdwn(text.strip() or "(no text)")
    quoted = "\n".join(f">{line}" for line in body.splitlines())
    name = escape_mrkdwn(author or "Support")
    return {
        "text": f"*{name}* replied on your ticket <{url}|#{ticket_id}>:\n{quoted}\n"
        "_Reply in this thread to answer; it is added to the ticket._"
    }


def ticket_solved(ticket_id: int, url: str) -> dict[str, str]:
    """The ticket was marked solved."""
    return {
        "text": f":white_check_mark: Your ticket <{url}|#{ticket_id}> was marked solved. "
        "If it is not, reply in this thread and it reopens."
    }


def reply_not_added(ticket_id: int) -> dict[str, str]:
    """The reporter replied on a closed ticket: Zendesk no longer takes comments on it."""
    return {
        "text": f"Ticket #{ticket_id} is closed, so your reply was not added. "
        "Please send a new /feedback and mention it."
    }


def reply_footer() -> str:
    """Appended to a reporter's reply when it becomes a ticket comment."""
    return "\n\n(sent from Slack)"


# ---------------------------------------------------------------- telling


@dataclass(frozen=True)
class Conversation:
    """The Slack thread a ticket's updates go to."""

    channel: str
    thread_ts: str


def conversation(redis: Redis, ticket_id: int) -> Conversation | None:
    """The thread where the ticket's updates went before, if any."""
    raw = redis.get(_conversation_key(ticket_id))
    return Conversation(**json.loads(raw)) if raw else None


def _remember_conversation(redis: Redis, ticket_id: int, where: Conversation) -> None:
    redis.set(
        _conversation_key(ticket_id),
        json.dumps({"channel": where.channel, "thread_ts": where.thread_ts}),
        ex=KEEP_SECONDS,
    )
    redis.set(thread_key(where.channel, where.thread_ts), ticket_id, ex=KEEP_SECONDS)


def tell_reporter(
    api: SlackApi, redis: Redis, record: ReporterRecord, message: dict[str, str], *, once_key: str
) -> Conversation | None:
    """Post `message` to the reporter's thread (once per `once_key`); None when already told."""
    if not record.user_id:
        raise Permanent(f"ticket {record.ticket_id} has no Slack reporter to tell")
    with once(redis, f"hub:loop:told:{digest(once_key)}", ttl=KEEP_SECONDS) as claim:
        if claim is None:
            logs.event(log, "loop.reporter.already_told", ticket=record.ticket_id)
            return None
        where = _post(api, redis, record, message)
        claim.done()
    logs.event(log, "loop.reporter.told", ticket=record.ticket_id, channel=where.channel)
    return where


def announce_filed(
    api: SlackApi, redis: Redis, report: Report, ticket_id: int, message: dict[str, Any]
) -> Conversation | None:
    """The one visible "Ticket #N filed" reply in the thread a reaction filed; None if said."""
    reply = report.reply
    if not (reply.channel_id and reply.thread_ts):
        raise Permanent(f"report {report.key_digest} has no thread to answer in")
    where = Conversation(reply.channel_id, reply.thread_ts)
    with once(redis, f"hub:loop:announced:{report.key_digest}", ttl=KEEP_SECONDS) as claim:
        if claim is None:
            return None
        # For everyone in the thread, the requester's organization included: not internal.
        api.call(
            "chat.postMessage",
            to_reporter=True,
            channel=where.channel,
            thread_ts=where.thread_ts,
            **message,
        )
        claim.done()
    _remember_conversation(redis, ticket_id, where)
    logs.event(log, "loop.thread.announced", ticket=ticket_id, channel=where.channel)
    return where


def _post(
    api: SlackApi, redis: Redis, record: ReporterRecord, message: dict[str, str]
) -> Conversation:
    assert record.user_id
    known = conversation(redis, record.ticket_id)
    if known is None and record.channel_id and record.thread_ts:
        known = Conversation(record.channel_id, record.thread_ts)
    if known is not None:
        try:
            # The reporter's own thread: an agent's public answer is for them (not internal).
            api.call(
                "chat.postMessage",
                to_reporter=True,
                channel=known.channel,
                thread_ts=known.thread_ts,
                **message,
            )
            _remember_conversation(redis, record.ticket_id, known)
            return known
        except Permanent as exc:
            if error_code(exc) not in _THREAD_UNUSABLE:
                raise
            logs.event(log, "loop.thread.unusable", ticket=record.ticket_id, reason=exc.body)
    # No thread to answer in (a slash command's receipt is ephemeral): a DM, whose first
    # message starts the thread the reporter replies in.
    channel = api.open_dm(record.user_id)
    if not channel:
        raise Permanent("Slack conversations.open returned no channel", body="no_channel")
    data = api.post_message(channel, message, to_reporter=True)
    where = Conversation(str(data.get("channel") or channel), str(data["ts"]))
    _remember_conversation(redis, record.ticket_id, where)
    return where
