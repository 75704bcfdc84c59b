"""Ticket-event jobs: rules on every Zendesk ticket event, engineering channels, the reporter loop.

`handle_ticket_event` takes one parsed webhook delivery (integrations.zendesk.payloads)
and, each step isolated so one failure does not skip the rest:

1. runs the ticket_event rules and applies their changes to the ticket (only what
   differs, so the hub's own update does not start a loop);
2. shows the ticket in the channels a rule names, and edits the messages that
   exist (status, assignee, count) with a thread reply for the change;
3. tells the reporter in Slack when an agent answers publicly or solves the ticket.

`relay_reporter_reply` turns the reporter's reply in that Slack thread into their
public comment on the ticket. Comments the hub writes are fingerprinted in Redis
so that their webhooks are never relayed back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from redis import Redis
from rq import Retry

from integrations import logs
from integrations.errors import Permanent
from integrations.queue.report_log import report_log
from integrations.settings import Settings
from integrations.slack import cards, loop
from integrations.slack.api import SlackApi
from integrations.slack.cards import Card
from integrations.slack.engineering import EngineeringChannels
from integrations.slack.loop import remember_reporter, reporter
from integrations.slack.payloads import MessagePosted
from integrations.ticket_event import Comment, TicketEvent
from integrations.zendesk.gateway import ZendeskGateway

# The hub's own comments (moved to integrations/zendesk/own_comments.py; importable here).
from integrations.zendesk.own_comments import OWN_COMMENT_SECONDS, is_own_comment, mark_own_comment
from integrations.zendesk.own_comments import fingerprint as _fingerprint
from integrations.zendesk.payloads import CommentAdded, ZendeskEvent
from workers.context import context
from workers.grouping import ticket_status_changed
from workers.retry import run_guarded
from workers.tags import tags_changed
from workers.timers import on_ticket_event

__all__ = ["handle_ticket_event", "mark_own_comment", "relay_reporter_reply", "remember_reporter"]

log = logging.getLogger(__name__)

SEEN_SECONDS = 90 * 24 * 3600

# Which field a change kind is about (integrations.ticket_event.ChangedField).
FIELD_OF = {
    "status_changed": "status",
    "priority_changed": "priority",
    "tags_changed": "tags",
    "group_changed": "group",
    "assignee_changed": "assignee",
    "type_changed": "type",
    "comment_added": "comment",
    "custom_field_changed": "custom_fields",
}


# ---------------------------------------------------------------- the ticket-event job


def handle_ticket_event(data: dict[str, Any]) -> dict[str, Any] | Retry:
    """Job: one Zendesk ticket event through rules, engineering channels and the reporter loop."""
    return run_guarded(_handle_ticket_event, data)


class _Steps:
    """Runs each step; remembers the first failure and raises it after the others ran."""

    def __init__(self, ticket_id: int) -> None:
        self.ticket_id = ticket_id
        self.failed: BaseException | None = None
        self.done: dict[str, Any] = {}

    def run(self, name: str, step: Callable[[], Any]) -> None:
        try:
            self.done[name] = step()
        except Exception as exc:  # each step is isolated; the job fails after all ran
            logs.event(
                log,
                "ticket_event.step_failed",
                logging.WARNING,
                ticket=self.ticket_id,
                step=name,
                error=type(exc).__name__,
                reason=str(exc)[:200],
            )
            self.failed = self.failed or exc

    def finish(self) -> dict[str, Any]:
        if self.failed is not None:
            raise self.failed
        return self.done


def _handle_ticket_event(data: dict[str, Any]) -> dict[str, Any]:
    ctx = context()
    settings, redis = ctx.settings, ctx.redis
    gateway = ctx.zendesk
    event = _with_author_known(ZendeskEvent.from_job(data), gateway)
    api = ctx.slack
    eng = EngineeringChannels(api, redis)

    changes = _changes(redis, event)
    steps = _Steps(event.ticket.id)
    rules_event = _rules_event(event, changes, gateway)
    steps.run("rules", lambda: _run_rules(settings, event, rules_event, gateway, eng))
    steps.run("engineering", lambda: _update_engineering(event, changes, rules_event, eng))
    steps.run("reporter", lambda: _tell_reporter(settings, redis, api, event, changes))
    kinds = [kind for kind, _, _ in changes]
    steps.run("first_reply", lambda: on_ticket_event(ctx, event, kinds))
    moved = [(list(r or ()), list(a or ())) for kind, r, a in changes if kind == "tags_changed"]
    if moved:
        # Tag trends follow what support finally decided (workers/tags.py).
        removed, added = moved[0]
        steps.run("tag_counts", lambda: tags_changed(redis, event.ticket.id, removed, added))
    status = next((after for kind, _, after in changes if kind == "status_changed"), None)
    if status:
        # Solved or closed leaves the related-issue index; a solved problem tells its thread.
        steps.run(
            "related",
            lambda: ticket_status_changed(redis, eng, event.ticket.id, status, once_key=event.key),
        )
    done = steps.finish()
    if event.source == "trigger":
        _remember_seen(redis, event)
    logs.event(
        log,
        "ticket_event.handled",
        ticket=event.ticket.id,
        type=event.zendesk_type,
        changes=[c[0] for c in changes],
        told=bool(done.get("reporter")),
    )
    return {"ticket": event.ticket.id, "changes": [c[0] for c in changes], **done}


# A change: (kind, previous, current).
Change = tuple[str, Any, Any]


def _changes(redis: Redis, event: ZendeskEvent) -> list[Change]:
    """What the event changed; for a trigger, by comparing with the last state seen."""
    if event.source == "event":
        if event.kind == "tags_changed":
            return [("tags_changed", event.tags_removed, event.tags_added)]
        return [(event.kind, event.previous, event.current)]
    now = _seen_state(event)
    raw = redis.get(f"hub:zendesk:ticket:{event.ticket.id}:seen")
    if raw is None:
        first: list[Change] = [("created", None, None)] if event.kind == "created" else []
        if event.comment is not None:
            first.append(("comment_added", None, event.comment.id))
        return first
    before = json.loads(raw)
    out: list[Change] = []
    if now["comment"] and now["comment"] != before.get("comment"):
        out.append(("comment_added", before.get("comment"), now["comment"]))
    for name in ("status", "priority", "type", "group", "assignee"):
        if now[name] != before.get(name):
            out.append((f"{name}_changed", before.get(name), now[name]))
    if set(now["tags"]) != set(before.get("tags") or ()):
        old, new = set(before.get("tags") or ()), set(now["tags"])
        out.append(("tags_changed", sorted(old - new), sorted(new - old)))
    return out


def _seen_state(event: ZendeskEvent) -> dict[str, Any]:
    t = event.ticket
    return {
        "status": t.status,
        "priority": t.priority,
        "type": t.type,
        "group": t.group_name,
        "assignee": t.assignee_name,
        "tags": sorted(t.tags),
        "comment": event.comment.id if event.comment else None,
    }


def _remember_seen(redis: Redis, event: ZendeskEvent) -> None:
    key = f"hub:zendesk:ticket:{event.ticket.id}:seen"
    redis.set(key, json.dumps(_seen_state(event)), ex=SEEN_SECONDS)


def _new_comment(event: ZendeskEvent, changes: list[Change]) -> CommentAdded | None:
    if event.comment is None or not any(kind == "comment_added" for kind, _, _ in changes):
        return None
    return event.comment


def _with_author_known(event: ZendeskEvent, gateway: ZendeskGateway) -> ZendeskEvent:
    """The event with its comment's author said to be staff or not.

    Event payloads say it (`is_staff`); a trigger's does not, and "not the requester" is
    not enough: a CC'd customer is neither, and their comment must not stop the
    first-reply clock or reach the reporter as support's answer. Zendesk says (the
    user's role, cached); the requester is never staff.
    """
    comment = event.comment
    if comment is None or comment.author_is_staff is not None or comment.author_id is None:
        return event
    if comment.author_id == event.ticket.requester_id:
        staff: bool | None = False
    else:
        staff = gateway.is_agent(comment.author_id)
    known = comment.model_copy(update={"author_is_staff": bool(staff)})
    return event.model_copy(update={"comment": known})


def _is_staff(event: ZendeskEvent, comment: CommentAdded) -> bool:
    if comment.author_is_staff is not None:
        return comment.author_is_staff
    # No author at all (neither payload named one): not support's reply.
    return False


# ---------------------------------------------------------------- 1. rules


def _rules_event(
    event: ZendeskEvent, changes: list[Change], gateway: ZendeskGateway
) -> TicketEvent:
    t = event.ticket
    kinds = [kind for kind, _, _ in changes] or [
        event.kind if event.kind != "updated" else "created"
    ]
    group = t.group_name or (gateway.group_name(t.group_id) if t.group_id else None)
    assignee = t.assignee_name or (gateway.user_name(t.assignee_id) if t.assignee_id else None)
    comment = _new_comment(event, changes)
    previous = {FIELD_OF[k]: before for k, before, _ in changes if k in FIELD_OF and before}
    return TicketEvent(
        type=kinds[0],
        ticket_id=t.id,
        subject=t.subject,
        tags=t.tags,
        status=t.status,
        priority=t.priority,
        group=group,
        assignee=assignee,
        ticket_type=t.type,
        changed=tuple(dict.fromkeys(FIELD_OF[k] for k in kinds if k in FIELD_OF)),
        previous=previous,
        comment=Comment(
            public=comment.public,
            author_id=comment.author_id,
            author_role="agent" if _is_staff(event, comment) else "end_user",
            body=comment.body,
        )
        if comment
        else None,
        via=t.via,
    )


def _run_rules(
    settings: Settings,
    event: ZendeskEvent,
    rules_event: TicketEvent,
    gateway: ZendeskGateway,
    eng: EngineeringChannels,
) -> list[str]:
    from rules.engine import evaluate_event
    from rules.store import store_for

    # The process's rules, reloaded when the file changes; a broken file keeps the last
    # good rules (and shows in /readyz), so events still run.
    decision = evaluate_event(rules_event, store_for(settings.rules_path).current())
    applied = _apply(decision, event, rules_event, gateway)
    channels = [n.channel for n in decision.notifications]
    if decision.escalate and decision.escalate_channel:
        channels.append(decision.escalate_channel)
    if channels:
        card = _card(event, rules_event, gateway, eng)
        for channel in dict.fromkeys(channels):
            eng.notify(channel, card)
        for note in decision.notifications:
            text = note.fill(ticket_id=event.ticket.id, ticket_url=card.url)
            eng.thread(
                card.issue_id,
                text,
                once_key=f"{event.key}:{note.channel}:{text}",
                only=note.channel,
            )
    return applied


def _apply(
    decision: Any, event: ZendeskEvent, rules_event: TicketEvent, gateway: ZendeskGateway
) -> list[str]:
    """Write what the rules decided and the ticket does not have yet; returns the fields."""
    t = event.ticket
    updates: dict[str, Any] = {}
    add = [tag for tag in decision.tags_added if tag not in t.tags]
    remove = [tag for tag in decision.tags_removed if tag in t.tags]
    if add or remove:
        updates["tags"] = [tag for tag in t.tags if tag not in remove] + add
    if decision.group and decision.group.casefold() != (rules_event.group or "").casefold():
        updates["group_id"] = gateway.group_id(decision.group)
    if decision.priority and decision.priority != t.priority:
        updates["priority"] = decision.priority
    if decision.type and decision.type != t.type:
        updates["type"] = decision.type
    if decision.custom_fields:
        updates["custom_fields"] = decision.zendesk_custom_fields()
    if decision.assignee and decision.assignee != rules_event.assignee:
        # Assignees are named in rules; resolving a name to an agent is not done here.
        logs.event(log, "rules.assignee.skipped", ticket=t.id, assignee=decision.assignee)
    if updates:
        gateway.update_ticket(t.id, **updates)
        logs.event(log, "rules.applied", ticket=t.id, fields=sorted(updates))
    return sorted(updates)


# ---------------------------------------------------------------- 2. engineering channels


def _card(
    event: ZendeskEvent,
    rules_event: TicketEvent,
    gateway: ZendeskGateway,
    eng: EngineeringChannels,
) -> Card:
    t = event.ticket
    known = eng.card(t.id)
    if known is not None:
        return replace(
            known,
            subject=t.subject or known.subject,
            status=t.status or known.status,
            priority=t.priority,
            tags=t.tags,
            assignee=rules_event.assignee,
        )
    record = reporter(eng.redis, t.id)
    return Card(
        issue_id=t.id,
        subject=t.subject or (record.subject if record else ""),
        url=gateway.agent_url(t.id),
        status=t.status or "new",
        priority=t.priority,
        tags=t.tags,
        platform=record.platform if record else None,
        app_version=record.app_version if record else None,
        assignee=rules_event.assignee,
    )


def _update_engineering(
    event: ZendeskEvent,
    changes: list[Change],
    rules_event: TicketEvent,
    eng: EngineeringChannels,
) -> int:
    """Edit the ticket's messages in place and say in their threads what changed."""
    t = event.ticket
    known = eng.card(t.id)
    if known is None:
        return 0
    card = replace(
        known,
        subject=t.subject or known.subject,
        status=t.status or known.status,
        priority=t.priority or known.priority,
        tags=t.tags or known.tags,
        assignee=rules_event.assignee,
    )
    if card != known:
        eng.refresh(card)
    said = 0
    for kind, before, after in changes:
        if kind in ("status_changed", "priority_changed"):
            text = cards.change_note(FIELD_OF[kind], before, after)
        elif kind == "assignee_changed":
            # Another event of the same update may have shown the new assignee already.
            text = cards.change_note("assignee", None, card.assignee or "nobody")
        elif kind == "group_changed":
            text = cards.change_note("group", None, rules_event.group)
        elif kind == "comment_added":
            comment = event.comment
            if comment is None or not comment.public or not _is_staff(event, comment):
                continue
            text = cards.reply_note(comment.author_name)
        else:
            continue
        said += eng.thread(t.id, text, once_key=f"{event.key}:{kind}")
    return said


# ---------------------------------------------------------------- 3. the reporter


def _tell_reporter(
    settings: Settings, redis: Redis, api: SlackApi, event: ZendeskEvent, changes: list[Change]
) -> list[str]:
    """An agent's public reply or a solve goes to the reporter in Slack."""
    t = event.ticket
    url = settings.request_url(t.id)
    messages: list[tuple[str, dict[str, str]]] = []
    comment = _new_comment(event, changes)
    if comment is not None and _relayable(redis, event, comment):
        messages.append(("reply", loop.agent_replied(t.id, url, comment.author_name, comment.body)))
    solved = any(k == "status_changed" and after == "solved" for k, _, after in changes)
    if solved:
        messages.append(("solved", loop.ticket_solved(t.id, url)))
    if not messages:
        return []
    record = reporter(redis, t.id)
    if record is None or not record.user_id:
        logs.event(log, "loop.no_reporter", ticket=t.id)
        return []
    told = []
    for what, message in messages:
        if loop.tell_reporter(api, redis, record, message, once_key=f"{event.key}:{what}"):
            told.append(what)
            # The console's timeline of the report.
            said = "an agent's reply reached the reporter" if what == "reply" else "solved"
            report_log(redis, settings).add_event(record.report, what, f"{said} in Slack")
    return told


def _relayable(redis: Redis, event: ZendeskEvent, comment: CommentAdded) -> bool:
    """A public comment by an agent that the hub did not write itself."""
    if not comment.public or not comment.body.strip() or not _is_staff(event, comment):
        return False
    if is_own_comment(redis, event.ticket.id, comment.body):
        return False
    # The ticket's first comment is the report itself (the description).
    description = event.ticket.description
    return not (description and _fingerprint(description) == _fingerprint(comment.body))


# ---------------------------------------------------------------- the reporter's reply


def relay_reporter_reply(message: dict[str, Any], ticket_id: int) -> str | Retry:
    """Job: the reporter's reply in a ticket's Slack thread becomes their comment on it."""
    return run_guarded(_relay_reporter_reply, message, ticket_id)


def _relay_reporter_reply(data: dict[str, Any], ticket_id: int) -> str:
    from integrations.slack.reports import plain_text

    ctx = context()
    redis = ctx.redis
    posted = MessagePosted.from_job(data)
    record = reporter(redis, ticket_id)
    if record is not None and record.source == "slack_reaction" and posted.user != record.user_id:
        # A thread filed with the ticket emoji: the others' replies are kept as notes.
        from workers.reactions import thread_note

        return thread_note(data, ticket_id)
    if record is None or posted.user != record.user_id:
        # Someone else talking in the thread: that is not the requester's comment.
        logs.event(log, "loop.reply.not_reporter", ticket=ticket_id, user=posted.user)
        return "ignored"
    text = plain_text(posted.text).strip()
    if not text:
        return "empty"
    mark = f"hub:loop:commented:{posted.event_id}"
    if not redis.set(mark, 1, nx=True, ex=OWN_COMMENT_SECONDS):
        return "duplicate"
    gateway = ctx.zendesk
    body = text + loop.reply_footer()
    try:
        ticket = gateway.get_ticket(ticket_id)
        mark_own_comment(redis, ticket_id, body)
        gateway.add_comment(ticket_id, body, public=True, author_id=ticket.requester_id)
    except Permanent as exc:
        if exc.status == 422:
            api = ctx.slack
            loop.tell_reporter(
                api, redis, record, loop.reply_not_added(ticket_id), once_key=posted.event_id
            )
            return "closed"
        redis.delete(mark)
        raise
    except BaseException:
        redis.delete(mark)
        raise
    logs.event(log, "loop.reply.commented", ticket=ticket_id, event_id=posted.event_id)
    return "commented"
