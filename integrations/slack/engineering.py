"""Engineering channels: one Block Kit message per issue, edited in place, updates in its thread.

- `Card`: what the message shows (title, priority, status, tags, platform and app
  version, reporter count, assignee, who acknowledged), kept in Redis per issue.
- `EngineeringChannels`: posts the message once per (issue, channel), edits it
  with chat.update afterwards, and adds thread replies; never a second top-level
  message for the same issue. The (channel, ts) is recorded right after posting
  and looked up before, so a retried job edits instead of posting again.
- The "Acknowledge" button (block_actions through /slack/interactions) queues
  the `acknowledge` job (workers/engineering.py), which puts an internal note and the
  `eng_acknowledged` tag on the ticket and shows who acknowledged.
- A new issue's card lists up to three suggested related issues with "Same issue" and
  "Not related"; a merged issue's message has "Split out again". Each press queues
  its job (workers/grouping_actions.py); nothing else happens in the web process.

An issue is identified by its Zendesk ticket id (the problem ticket when related
reports are grouped).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs

from flask import Response
from redis import Redis

from integrations import logs
from integrations.errors import Rejected
from integrations.http_body import json_of
from integrations.queue import enqueue_once
from integrations.queue.jobs import ACKNOWLEDGE, MARK_NOT_RELATED, MERGE_REPORTS, SPLIT_REPORT
from integrations.queue.marks import exclusive, once
from integrations.report import digest
from integrations.slack.api import SlackApi
from integrations.slack.cards import (
    ACKNOWLEDGE_ACTION,
    NOT_RELATED_ACTION,
    SAME_ISSUE_ACTION,
    SPLIT_ACTION,
    Card,
    card_message,
)

log = logging.getLogger(__name__)

ACKNOWLEDGED_TAG = "eng_acknowledged"
# Issues live for months; their messages are edited as long as the ticket moves.
KEEP_SECONDS = 180 * 24 * 3600
# Long enough for one chat.postMessage with retries; a crashed poster frees it by expiry.
POSTING_LOCK_SECONDS = 60

# ---------------------------------------------------------------- state and posting


@dataclass(frozen=True)
class Posted:
    """Where an issue's message is: the channel id Slack answered with, and its ts."""

    channel: str
    ts: str


class EngineeringChannels:
    """Posting, editing and threading issue messages; the state is in Redis."""

    def __init__(self, api: SlackApi, redis: Redis) -> None:
        self.api = api
        self.redis = redis

    # -- keys
    def _card_key(self, issue_id: int) -> str:
        return f"hub:eng:card:{issue_id}"

    def _messages_key(self, issue_id: int) -> str:
        return f"hub:eng:messages:{issue_id}"

    def _tickets_key(self, issue_id: int) -> str:
        return f"hub:eng:tickets:{issue_id}"

    # -- state
    def card(self, issue_id: int) -> Card | None:
        """The issue's card, when it has a message somewhere."""
        raw = self.redis.get(self._card_key(issue_id))
        return Card.from_json(json.loads(raw)) if raw else None

    def save(self, card: Card) -> None:
        """Keep the card for later edits."""
        self.redis.set(self._card_key(card.issue_id), json.dumps(card.to_json()), ex=KEEP_SECONDS)

    def messages(self, issue_id: int) -> dict[str, Posted]:
        """The issue's messages: requested channel -> where it was posted."""
        raw = self.redis.hgetall(self._messages_key(issue_id))
        out = {}
        for name, value in raw.items():
            data = json.loads(value)
            key = name.decode() if isinstance(name, bytes) else str(name)
            out[key] = Posted(data["channel"], data["ts"])
        return out

    def add_reporter(self, issue_id: int, ticket_id: int) -> int:
        """Count a ticket (one reporter) under an issue; returns the count."""
        key = self._tickets_key(issue_id)
        self.redis.sadd(key, ticket_id)
        self.redis.expire(key, KEEP_SECONDS)
        return int(self.redis.scard(key))

    def move_issue(self, old: int, new: int) -> int:
        """Hand an issue's messages, card and reporters to another; returns messages moved."""
        # A problem ticket taking over a group: its later edits must edit the same
        # messages, never post a second top-level one.
        if old == new:
            return 0
        moved = self.messages(old)
        known = self.messages(new)
        card = self.card(old)
        pipe = self.redis.pipeline()
        for channel, posted in moved.items():
            if channel not in known:
                pipe.hset(
                    self._messages_key(new),
                    channel,
                    json.dumps({"channel": posted.channel, "ts": posted.ts}),
                )
        pipe.sunionstore(self._tickets_key(new), [self._tickets_key(new), self._tickets_key(old)])
        if card is not None and self.card(new) is None:
            card = replace(card, issue_id=new)
            pipe.set(self._card_key(new), json.dumps(card.to_json()), ex=KEEP_SECONDS)
        for key in (self._messages_key(new), self._tickets_key(new)):
            pipe.expire(key, KEEP_SECONDS)
        # The old ticket's own events no longer edit the group's message.
        pipe.delete(self._messages_key(old), self._tickets_key(old), self._card_key(old))
        pipe.execute()
        logs.event(log, "eng.issue.moved", issue=old, to=new, messages=len(moved))
        return len(moved)

    # -- Slack
    def notify(self, channel: str, card: Card) -> Posted:
        """The issue's message in `channel`: posted the first time, edited in place after."""
        self.save(card)
        existing = self.messages(card.issue_id).get(channel)
        if existing is not None:
            self._update(existing, card)
            return existing
        lock = f"hub:eng:posting:{card.issue_id}:{digest(channel)}"
        # Another worker posting this very message: come back and edit it.
        busy = "another worker is posting this issue's message"
        with exclusive(self.redis, lock, ttl=POSTING_LOCK_SECONDS, busy=busy):
            existing = self.messages(card.issue_id).get(channel)
            if existing is not None:
                self._update(existing, card)
                return existing
            data = self.api.post_message(channel, card_message(card))
            posted = Posted(str(data.get("channel") or channel), str(data["ts"]))
            # Recorded before anything else can fail: a retry must edit, not post again.
            self.redis.hset(
                self._messages_key(card.issue_id),
                channel,
                json.dumps({"channel": posted.channel, "ts": posted.ts}),
            )
            self.redis.expire(self._messages_key(card.issue_id), KEEP_SECONDS)
        logs.event(log, "eng.message.posted", issue=card.issue_id, channel=posted.channel)
        return posted

    def refresh(self, card: Card) -> int:
        """Save the card and edit every message of its issue; returns how many were edited."""
        self.save(card)
        found = self.messages(card.issue_id)
        for posted in found.values():
            self._update(posted, card)
        return len(found)

    def remove_reporter(self, issue_id: int, ticket_id: int) -> int:
        """Stop counting a ticket under an issue (split out); returns the count."""
        key = self._tickets_key(issue_id)
        self.redis.srem(key, ticket_id)
        return int(self.redis.scard(key))

    def thread(
        self,
        issue_id: int,
        text: str,
        *,
        once_key: str,
        only: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
    ) -> int:
        """Reply in the thread of every message of the issue (or `only` one channel's), once."""
        count = 0
        for channel, posted in self.messages(issue_id).items():
            if only is not None and channel != only:
                continue
            mark = f"hub:eng:said:{digest(once_key, posted.channel, posted.ts)}"
            with once(self.redis, mark, ttl=KEEP_SECONDS) as claim:
                if claim is None:
                    continue
                extra: dict[str, Any] = {"blocks": blocks} if blocks else {}
                self.api.call(
                    "chat.postMessage",
                    channel=posted.channel,
                    thread_ts=posted.ts,
                    text=text,
                    **extra,
                )
                claim.done()
            count += 1
        return count

    def _update(self, posted: Posted, card: Card) -> None:
        message = card_message(card)
        self.api.call(
            "chat.update",
            channel=posted.channel,
            ts=posted.ts,
            text=message["text"],
            blocks=message["blocks"],
        )
        logs.event(log, "eng.message.updated", issue=card.issue_id, channel=posted.channel)


# ---------------------------------------------------------------- the button (web process)


@dataclass(frozen=True)
class Acknowledgement:
    """Someone pressed "Acknowledge" on an issue's message."""

    issue_id: int
    user_id: str
    user_name: str


def parse_block_actions(payload: dict[str, Any]) -> list[Acknowledgement]:
    """The Acknowledge presses in a block_actions payload (other buttons are not ours)."""
    user = payload.get("user") or {}
    if not isinstance(user, dict) or not user.get("id"):
        raise Rejected(400, "not a Slack block_actions payload: no user")
    out = []
    for action in payload.get("actions") or []:
        if not isinstance(action, dict) or action.get("action_id") != ACKNOWLEDGE_ACTION:
            continue
        value = str(action.get("value") or "")
        if not value.isdigit():
            raise Rejected(400, "the Acknowledge button carries no ticket id")
        name = str(user.get("name") or user.get("username") or user["id"])
        out.append(Acknowledgement(int(value), str(user["id"]), name))
    return out


@dataclass(frozen=True)
class GroupingPress:
    """Someone pressed Same issue, Not related or Split out on an engineering message."""

    action: str
    ticket_id: int
    # The suggested ticket (Same issue, Not related); None for Split out.
    other_id: int | None
    user_id: str
    user_name: str


def corrections_key(ticket_id: int) -> str:
    """How many grouping corrections of a ticket are done (workers/grouping_actions.py)."""
    return f"hub:grouping:corrections:{ticket_id}"


_GROUPING_JOBS = {
    SAME_ISSUE_ACTION: MERGE_REPORTS,
    NOT_RELATED_ACTION: MARK_NOT_RELATED,
    SPLIT_ACTION: SPLIT_REPORT,
}


def parse_grouping_actions(payload: dict[str, Any]) -> list[GroupingPress]:
    """The grouping buttons pressed in a block_actions payload."""
    user = payload.get("user") or {}
    if not isinstance(user, dict) or not user.get("id"):
        raise Rejected(400, "not a Slack block_actions payload: no user")
    name = str(user.get("name") or user.get("username") or user["id"])
    out = []
    for action in payload.get("actions") or []:
        if not isinstance(action, dict) or action.get("action_id") not in _GROUPING_JOBS:
            continue
        action_id = str(action["action_id"])
        parts = str(action.get("value") or "").split(":")
        if not all(p.isdigit() for p in parts) or len(parts) != (
            1 if action_id == SPLIT_ACTION else 2
        ):
            raise Rejected(400, f"the {action_id} button carries no ticket ids")
        other = int(parts[1]) if len(parts) == 2 else None
        out.append(GroupingPress(action_id, int(parts[0]), other, str(user["id"]), name))
    return out


def handle_block_actions(body: bytes, redis: Redis) -> Response:
    """Queue each button press in a verified block_actions body; answer Slack at once."""
    raw = parse_qs(body.decode("utf-8", "replace")).get("payload", [""])[0]
    payload = json_of(raw, "not a Slack interaction: payload")
    if not isinstance(payload, dict):
        raise Rejected(400, "not a Slack interaction: payload is not an object")
    for ack in parse_block_actions(payload):
        enqueue_once(
            redis, ACKNOWLEDGE, ack.issue_id, ack.user_id, ack.user_name,
            key=f"{ack.issue_id}:{ack.user_id}",
        )  # fmt: skip
        logs.event(log, "eng.ack.queued", issue=ack.issue_id, user=ack.user_id)
    for press in parse_grouping_actions(payload):
        # One job per (button, tickets) however often it is clicked until a correction of
        # the ticket is done; the same button after it (merge, split, merge again) is a
        # new job. The action itself is idempotent too (workers/grouping_actions.py).
        done = int(redis.get(corrections_key(press.ticket_id)) or 0)
        key = f"{press.ticket_id}:{press.other_id or ''}:{done}"
        enqueue_once(
            redis, _GROUPING_JOBS[press.action], press.ticket_id, press.other_id,
            press.user_id, press.user_name, key=key,
        )  # fmt: skip
        logs.event(log, "eng.grouping.queued", action=press.action, ticket=press.ticket_id)
    # "Open in Zendesk" is a link button: Slack still sends an action, answered 200.
    return Response(status=200)
