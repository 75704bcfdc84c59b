"""Ticket-emoji jobs: a reacted-to message and its whole thread become one ticket.

`file_reaction` reads the thread (integrations/slack/threads.py), names its authors,
fetches its files into the attachment store, and queues the same `file_report` job
every other source uses (one ticket per message: the report's external id). The
thread's "Ticket #N filed" reply and the link between thread and ticket come after
filing (workers/receipts.py, integrations/slack/loop.py).

`complete_thread` adds the part of a thread Slack's rate limit kept from the ticket,
as an internal note, once Slack allows: a filing never waits on the rest of a thread.
"""

from __future__ import annotations

import logging
from typing import Any

from integrations import logs
from integrations.errors import Permanent, Retryable
from integrations.queue import enqueue_once
from integrations.queue.jobs import COMPLETE_THREAD, FILE_REPORT
from integrations.queue.marks import once
from integrations.queue.report_log import report_log
from integrations.queue.status import StatusStore
from integrations.report import AttachmentRef, Report, digest
from integrations.slack import messages
from integrations.slack.api import error_code
from integrations.slack.payloads import ReactionAdded
from integrations.slack.threads import (
    MAX_FILE_BYTES,
    MAX_FILES,
    Connect,
    ThreadRead,
    reaction_key,
    reaction_report,
    read_thread,
    transcript,
)
from integrations.zendesk.own_comments import OWN_COMMENT_SECONDS, mark_own_comment
from workers.context import JobContext, context
from workers.receipts import permalink, reporter_identity
from workers.retry import run_guarded

log = logging.getLogger(__name__)

# A reacted-to message stays filed (a later reaction files nothing) as long as tickets live.
FILED_SECONDS = 365 * 24 * 3600
# Errors that mean the bot cannot read the channel: the person who reacted is told.
CANNOT_READ = {"not_in_channel", "channel_not_found", "missing_scope", "access_denied"}
# Errors that mean the message is gone: filed anyway, with a note.
GONE = {"thread_not_found", "message_not_found"}
# Authors looked up by name in one thread at most (users.info, cached a day each).
MAX_NAMES = 50


def file_reaction(event: dict[str, Any]) -> Any:
    """Job: file the reacted-to message and its thread as one ticket (once per message)."""
    return run_guarded(_file_reaction, event)


def _filed_key(event: ReactionAdded) -> str:
    return f"hub:slack:reaction:{digest(reaction_key(event))}"


def _file_reaction(data: dict[str, Any]) -> str:
    ctx = context()
    event = ReactionAdded.from_job(data)
    channel, ts = event.item.channel, event.item.ts
    if ctx.redis.get(_filed_key(event)):
        logs.event(log, "slack.reaction.already_filed", channel=channel, message_ts=ts)
        return "already filed"
    try:
        thread = read_thread(ctx.slack, channel, ts)
    except Permanent as exc:
        code = error_code(exc)
        if code in CANNOT_READ:
            _invite_me(ctx, event)
            return "cannot read"
        if code not in GONE:
            raise
        logs.event(log, "slack.reaction.message_gone", channel=channel, message_ts=ts, reason=code)
        thread = ThreadRead()
    names = _names(ctx, event, thread)
    link = permalink(ctx, channel, ts) if thread.messages else None
    attachments, notes = _fetch_files(ctx, thread)
    connect = _connect(ctx, event, thread)
    if connect is not None and connect.organization:
        _join_organization(ctx, event, thread, connect.organization)
    report = reaction_report(
        event,
        thread,
        names=names,
        permalink=link,
        attachments=attachments,
        file_notes=notes,
        connect=connect,
    )
    # The console lists the report from now on ("queued"), as it does the web's intake.
    console = report_log(ctx.redis, ctx.settings)
    enqueue_once(
        ctx.redis,
        FILE_REPORT,
        report.to_job(),
        key=report.external_id,
        also=lambda commands: console.mark_accepted(report, commands),
    )
    StatusStore(ctx.redis).set(report.key_digest, "queued")
    if thread.cursor:
        # Slack limited the reading: file what was read now, add the rest when it allows.
        enqueue_once(
            ctx.redis,
            COMPLETE_THREAD,
            report.to_job(),
            thread.messages[0].ts,
            thread.cursor,
            key=f"{report.external_id}:{thread.cursor}",
        )
    ctx.redis.set(_filed_key(event), report.key_digest, ex=FILED_SECONDS)
    logs.event(
        log,
        "slack.reaction.queued",
        report=report.key_digest,
        channel=channel,
        messages=len(thread.messages),
        files=len(attachments),
        complete=not thread.cursor,
    )
    return report.key_digest


def _names(ctx: JobContext, event: ReactionAdded, thread: ThreadRead) -> dict[str, str]:
    """Display names of the thread's authors and of who reacted (users.info, cached)."""
    people: dict[str, str] = {}
    for message in thread.messages:
        if message.user and message.user not in people:
            people[message.user] = message.author_team or event.team_id
    people.setdefault(event.user, event.team_id)
    if event.item_user:
        people.setdefault(event.item_user, event.team_id)
    names = {}
    for user, team in list(people.items())[:MAX_NAMES]:
        name, _ = reporter_identity(ctx, team, user)
        if name:
            names[user] = name
    return names


def _connect(ctx: JobContext, event: ReactionAdded, thread: ThreadRead) -> Connect | None:
    """The requester's organization when they are of another one (Slack Connect)."""
    reacted = next((m for m in thread.messages if m.ts == event.item.ts), None)
    team = reacted.author_team if reacted else None
    if not team or not event.team_id or team == event.team_id:
        return None
    mapping = ctx.settings.slack_connect_organizations
    return Connect(team, mapping.get(event.item.channel) or mapping.get(team))


def _join_organization(
    ctx: JobContext, event: ReactionAdded, thread: ThreadRead, organization: str
) -> None:
    """The requester joins their organization in Zendesk (created once), so the ticket does."""
    reacted = next((m for m in thread.messages if m.ts == event.item.ts), None)
    user = (reacted.user if reacted else None) or event.item_user
    team = reacted.author_team if reacted else None
    if not user or not team:
        return
    name, email = reporter_identity(ctx, team, user)
    ctx.zendesk.join_organization(
        name=name,
        email=email,
        external_id=f"slack:{team}:{user}",
        organization_id=ctx.zendesk.organization_id(organization),
    )


def _fetch_files(
    ctx: JobContext, thread: ThreadRead
) -> tuple[tuple[AttachmentRef, ...], list[tuple[str, str]]]:
    """The thread's files in the attachment store; the ones left out, each with why."""
    refs: list[AttachmentRef] = []
    notes: list[tuple[str, str]] = []
    limit_mb = MAX_FILE_BYTES // (1024 * 1024)
    for file in (f for m in thread.messages for f in m.files):
        link = file.permalink or file.url_private or "no link"
        url = file.download_url
        if url is None:
            notes.append((file.label, "deleted or hidden in Slack"))
        elif len(refs) >= MAX_FILES:
            notes.append((file.label, f"only {MAX_FILES} files are attached; in Slack: {link}"))
        elif file.size > MAX_FILE_BYTES:
            notes.append((file.label, f"over {limit_mb} MB; in Slack: {link}"))
        else:
            try:
                data = ctx.slack.download(url, max_bytes=MAX_FILE_BYTES)
            except Permanent as exc:
                logs.event(log, "slack.file.not_downloaded", file=file.id, reason=exc.reason)
                notes.append((file.label, f"could not be downloaded; in Slack: {link}"))
                continue
            if data is None:
                notes.append((file.label, f"over {limit_mb} MB; in Slack: {link}"))
                continue
            refs.append(ctx.attachments.put(data, file.label, file.mimetype))
    return tuple(refs), notes


def _invite_me(ctx: JobContext, event: ReactionAdded) -> None:
    """Tell the person who reacted that the bot cannot read the channel (once)."""
    channel = event.item.channel
    mark = f"hub:slack:invite:{digest(reaction_key(event), event.user)}"
    with once(ctx.redis, mark, ttl=24 * 3600) as claim:
        if claim is None:
            return
        message = messages.invite_me(channel)
        try:
            ctx.slack.post_ephemeral(channel, event.user, message)
        except Permanent:
            # Not in the channel, so no ephemeral there either: a DM.
            dm = ctx.slack.open_dm(event.user)
            ctx.slack.post_message(dm, message, to_reporter=True)
        claim.done()
    logs.event(log, "slack.reaction.cannot_read", channel=channel, user=event.user)


# ---------------------------------------------------------------- later replies by others


def thread_note(data: dict[str, Any], ticket_id: int) -> str:
    """A reply by someone other than the requester in a filed thread: an internal note.

    The requester's own replies are their public comments (workers/ticket_events.py); the
    rest of the conversation is kept for the agents, never sent back to Slack (internal).
    """
    from integrations.slack.payloads import MessagePosted
    from integrations.slack.reports import plain_text

    ctx = context()
    posted = MessagePosted.from_job(data)
    text = plain_text(posted.text).strip()
    if not text or not posted.user:
        return "empty"
    if not ctx.redis.set(
        f"hub:loop:commented:{posted.event_id}", 1, nx=True, ex=OWN_COMMENT_SECONDS
    ):
        return "duplicate"
    name, _ = reporter_identity(ctx, posted.team_id, posted.user)
    note = messages.thread_note(name or posted.user, text)
    try:
        mark_own_comment(ctx.redis, ticket_id, note)
        ctx.zendesk.add_comment(ticket_id, note, public=False)
    except BaseException:
        ctx.redis.delete(f"hub:loop:commented:{posted.event_id}")
        raise
    logs.event(log, "loop.thread.noted", ticket=ticket_id, event_id=posted.event_id)
    return "noted"


# ---------------------------------------------------------------- the rest of a long thread


def complete_thread(report: dict[str, Any], root_ts: str, cursor: str) -> Any:
    """Job: the rest of a thread, from `cursor`, as an internal note on its ticket."""
    return run_guarded(_complete_thread, report, root_ts, cursor)


def _complete_thread(data: dict[str, Any], root_ts: str, cursor: str) -> str:
    ctx = context()
    report = Report.from_job(data)
    status = StatusStore(ctx.redis).get(report.key_digest)
    ticket_id = status.ticket_id if status else None
    if not ticket_id:
        raise Retryable("the thread's ticket is not filed yet", retry_after=30)
    channel = report.reply.channel_id or ""
    rest = read_thread(ctx.slack, channel, root_ts, cursor=cursor)
    # The parent is in the ticket already; bots' posts since (the hub's own "Ticket #N
    # filed", relayed answers) would be echoes.
    rest.messages = [m for m in rest.messages if m.ts != root_ts and not m.bot_id]
    names: dict[str, str] = {}
    for message in rest.messages:
        if message.user and message.user not in names:
            name, _ = reporter_identity(ctx, message.author_team or "", message.user)
            names[message.user] = name or message.user
    body, _ = transcript(rest, names, report.reply.permalink)
    note = f"{messages.thread_rest(len(rest.messages))}\n\n{body}"
    mark = f"hub:slack:thread-rest:{digest(report.external_id, cursor)}"
    with once(ctx.redis, mark, ttl=FILED_SECONDS) as claim:
        if claim is None:
            return "already added"
        mark_own_comment(ctx.redis, int(ticket_id), note)
        ctx.zendesk.add_comment(int(ticket_id), note, public=False)
        claim.done()
    if rest.cursor:
        enqueue_once(
            ctx.redis,
            COMPLETE_THREAD,
            report.to_job(),
            root_ts,
            rest.cursor,
            key=f"{report.external_id}:{rest.cursor}",
        )
    logs.event(log, "slack.thread.completed", ticket=ticket_id, messages=len(rest.messages))
    return f"{len(rest.messages)} messages"
