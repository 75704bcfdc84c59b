"""A message filed with the ticket emoji: its whole thread read, written out, and made a Report.

- `read_thread`: conversations.replies paged by its cursor. The first page's failure is
  the job's (a rate limit reschedules it, nothing was read); a rate limit on a later page
  stops the reading and keeps what was read, with the cursor to complete it later.
- `transcript`: each message with its author and time, capped at `MAX_DESCRIPTION`
  characters, then "N more messages in Slack" and the permalink.
- `reaction_report`: the Report: requested by the message's author (another
  organization's user in a Slack Connect channel), filed by the person who reacted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from integrations.errors import Retryable
from integrations.report import AttachmentRef, ReplyContext, Report, Reporter, ReportFields
from integrations.slack import messages
from integrations.slack.api import SlackApi
from integrations.slack.payloads import ReactionAdded, ThreadMessage, parse_thread_page
from integrations.slack.reports import BASE_TAGS, hashtags, plain_text, subject_line

# Messages read from one thread at most; a longer thread says how many more are in Slack.
MAX_MESSAGES = 500
# conversations.replies page size (Slack's maximum is 1,000; 15 for commercially
# distributed non-Marketplace apps, which Slack then caps itself).
PAGE_SIZE = 200
# Characters of transcript in the ticket's first comment (Zendesk takes 64 KB a comment).
MAX_DESCRIPTION = 30_000
# Files attached from one thread, and the size of each (Zendesk's limit is 50 MB).
MAX_FILES = 10
MAX_FILE_BYTES = 20 * 1024 * 1024
REACTION_TAG = "slack_reaction"
CONNECT_TAG = "slack_connect"


@dataclass
class ThreadRead:
    """What was read of a thread."""

    messages: list[ThreadMessage] = field(default_factory=list)
    # Where to go on when the reading stopped early (a rate limit); "" when complete.
    cursor: str = ""
    # Messages Slack says the thread has (the parent's reply_count + 1).
    total: int = 0

    @property
    def unread(self) -> int:
        """Messages the thread has that were not read."""
        return max(0, self.total - len(self.messages))


def read_thread(
    api: SlackApi, channel: str, ts: str, *, cursor: str = "", limit: int = MAX_MESSAGES
) -> ThreadRead:
    """The thread `ts` is in (its parent first), up to `limit` messages, paged."""
    read = ThreadRead()
    first = not cursor
    while True:
        params: dict[str, Any] = {"channel": channel, "ts": ts, "limit": PAGE_SIZE}
        if cursor:
            params["cursor"] = cursor
        try:
            data = api.call("conversations.replies", **params)
        except Retryable:
            if not read.messages:
                raise  # nothing read yet: the job waits for Slack and starts again
            read.cursor = cursor
            break
        page = parse_thread_page(data)
        if first and page.messages:
            parent = page.messages[0]
            root = parent.thread_ts or parent.ts
            if root != ts:
                # The reaction was on a reply: read the thread from its parent.
                return read_thread(api, channel, root, limit=limit)
            read.total = parent.reply_count + 1
        first = False
        # Slack repeats the parent at the top of every page: each message is kept once.
        seen = {m.ts for m in read.messages}
        read.messages.extend(m for m in page.messages if m.ts not in seen)
        cursor = page.next_cursor
        if not cursor or len(read.messages) >= limit:
            # Complete, or capped: a capped thread says how many more are in Slack.
            read.cursor = ""
            break
    read.total = max(read.total, len(read.messages))
    if len(read.messages) > limit:
        read.messages = read.messages[:limit]
    return read


def when(ts: str) -> str:
    """A Slack ts as a person reads it, in UTC."""
    try:
        moment = datetime.fromtimestamp(float(ts), UTC)
    except (ValueError, OverflowError):
        return ts
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def author_of(message: ThreadMessage, names: dict[str, str]) -> str:
    """Who wrote a message, by name when known."""
    if message.user and message.user in names:
        return names[message.user]
    return message.username or message.user or message.bot_id or "someone"


def write_out(message: ThreadMessage, names: dict[str, str]) -> str:
    """One message of a transcript: author, time, text, its files' names."""
    if message.deleted:
        return f"(a deleted message, {when(message.ts)})"
    lines = [f"{author_of(message, names)}, {when(message.ts)}:"]
    text = plain_text(message.text).strip()
    if text:
        lines.append(text)
    lines += [f"[file: {f.label}]" for f in message.files]
    return "\n".join(lines)


def transcript(
    thread: ThreadRead,
    names: dict[str, str],
    permalink: str | None,
    *,
    limit: int = MAX_DESCRIPTION,
) -> tuple[str, int]:
    """The thread written out, capped at `limit` characters; returns it and the count left out."""
    parts: list[str] = []
    used = 0
    for index, message in enumerate(thread.messages):
        block = write_out(message, names)
        if parts and used + len(block) + 2 > limit:
            left = len(thread.messages) - index + (0 if thread.cursor else thread.unread)
            parts.append(messages.thread_more(left, permalink))
            return "\n\n".join(parts), left
        parts.append(block[:limit])
        used += len(block) + 2
    if thread.cursor:
        parts.append(messages.thread_incomplete(permalink))
    elif thread.unread:
        parts.append(messages.thread_more(thread.unread, permalink))
    return "\n\n".join(parts), thread.unread


@dataclass(frozen=True)
class Connect:
    """A Slack Connect requester: their organization's Slack team, and its Zendesk name."""

    team: str
    organization: str | None = None

    @property
    def tags(self) -> tuple[str, ...]:
        """`slack_connect` and the organization's tag."""
        tags = [CONNECT_TAG]
        if self.organization:
            tags.append("org_" + "_".join(self.organization.lower().split()))
        return tuple(tags)


def reaction_key(event: ReactionAdded) -> str:
    """One report per reacted-to message, however many people react, however often."""
    return f"slack:reaction:{event.team_id}:{event.item.channel}:{event.item.ts}"


def reaction_report(
    event: ReactionAdded,
    thread: ThreadRead,
    *,
    names: dict[str, str],
    permalink: str | None,
    attachments: tuple[AttachmentRef, ...] = (),
    file_notes: list[tuple[str, str]] | None = None,
    connect: Connect | None = None,
) -> Report:
    """The report a reaction files: the thread as the description, the author as requester."""
    channel, ts = event.item.channel, event.item.ts
    reacted = next((m for m in thread.messages if m.ts == ts), None)
    author_id = (reacted.user if reacted else None) or event.item_user
    author_team = (reacted.author_team if reacted else None) or event.team_id
    reactor = names.get(event.user) or event.user
    author = names.get(author_id or "") or author_id or "someone"
    if thread.messages:
        body, _ = transcript(thread, names, permalink)
        text = plain_text(reacted.text if reacted else thread.messages[0].text)
    else:
        body, text = messages.message_deleted(reactor), ""
    if file_notes:
        body = f"{body}\n\n{messages.files_not_attached(file_notes)}"
    context = {
        messages.LABEL_CHANNEL: messages.channel_label("", channel),
        messages.LABEL_AUTHOR: messages.person_label(author, author_id or ""),
        messages.LABEL_FILED_BY: messages.person_label(reactor, event.user),
    }
    if connect is not None:
        context[messages.LABEL_ORGANIZATION] = connect.organization or f"Slack team {connect.team}"
    if permalink:
        context[messages.LABEL_PERMALINK] = permalink
    all_text = " ".join(m.text for m in thread.messages)
    tags = dict.fromkeys(
        [*BASE_TAGS, REACTION_TAG, *(connect.tags if connect else ()), *hashtags(all_text)]
    )
    return Report(
        source="slack_reaction",
        idempotency_key=reaction_key(event),
        reporter=Reporter(
            name=names.get(author_id or ""),
            slack_team_id=author_team,
            slack_user_id=author_id,
        ),
        subject=messages.reaction_subject(subject_line(text), author),
        description=body,
        tags=tuple(tags),
        fields=ReportFields(
            external=connect is not None,
            organization=connect.organization if connect else None,
        ),
        context=context,
        attachments=attachments,
        reply=ReplyContext(
            team_id=event.team_id,
            channel_id=channel,
            user_id=author_id,
            thread_ts=(thread.messages[0].ts if thread.messages else ts),
            message_ts=ts,
            permalink=permalink,
        ),
    )
