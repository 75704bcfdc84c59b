"""What Zendesk's webhooks send, parsed into one frozen model; raw payloads go no further.

Two shapes arrive at POST /zendesk/webhook:

- event-subscribed webhooks (Zendesk's "Ticket events" reference): `{"type":
  "zen:event-type:ticket.comment_added", "id", "time", "subject": "zen:ticket:123",
  "detail": {ticket fields, enumerations in capitals}, "event": {what changed}}`;
- trigger-connected webhooks: the JSON body `feedback-hub zendesk setup` installs in
  its triggers (TRIGGER_BODY), marked `"feedback_hub": "trigger"`. A trigger does not
  say what changed; the worker compares it with the last state it saw.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from integrations import logs
from integrations.errors import Rejected
from integrations.http_body import json_of
from integrations.ticket_event import EventType

log = logging.getLogger(__name__)

EVENT_PREFIX = "zen:event-type:"

# Zendesk's event names -> the names ticket_event rules use (integrations.ticket_event.EventType).
EVENT_TYPES: dict[str, str] = {
    "ticket.created": "created",
    "ticket.comment_added": "comment_added",
    "ticket.status_changed": "status_changed",
    "ticket.tags_changed": "tags_changed",
    "ticket.priority_changed": "priority_changed",
    "ticket.group_assignment_changed": "group_changed",
    "ticket.agent_assignment_changed": "assignee_changed",
    "ticket.type_changed": "type_changed",
    "ticket.ticket_type_changed": "type_changed",
    "ticket.custom_field_changed": "custom_field_changed",
}
# What `feedback-hub zendesk setup` subscribes an event webhook to.
SUBSCRIPTIONS: tuple[str, ...] = tuple(
    EVENT_PREFIX + name for name in EVENT_TYPES if name != "ticket.ticket_type_changed"
)

# What an event is: one of the ticket events rules know, or a trigger-connected
# webhook's "updated" (the worker works out what changed).
Kind = EventType | Literal["updated"]

# The body `feedback-hub zendesk setup` puts in its triggers' webhook action. Zendesk
# fills the placeholders (strings, display values); `trigger` is "created" or "updated".
TRIGGER_BODY: dict[str, Any] = {
    "feedback_hub": "trigger",
    "trigger": "{trigger}",
    "ticket": {
        "id": "{{ticket.id}}",
        "subject": "{{ticket.title}}",
        "status": "{{ticket.status}}",
        "priority": "{{ticket.priority}}",
        "type": "{{ticket.ticket_type}}",
        "tags": "{{ticket.tags}}",
        "group": "{{ticket.group.name}}",
        "assignee": "{{ticket.assignee.name}}",
        "requester_id": "{{ticket.requester.id}}",
        "external_id": "{{ticket.external_id}}",
        "via": "{{ticket.via}}",
        "updated_at": "{{ticket.updated_at_with_timestamp}}",
    },
    "comment": {
        "id": "{{ticket.latest_comment.id}}",
        "author_id": "{{ticket.latest_comment.author.id}}",
        "author_name": "{{ticket.latest_comment.author.name}}",
        "is_public": "{{ticket.latest_comment.is_public}}",
        "body": "{{ticket.latest_comment.value}}",
    },
    "actor": {"id": "{{current_user.id}}"},
}


def trigger_body(trigger: Literal["created", "updated"]) -> str:
    """The JSON a trigger sends (placeholders unfilled), for `feedback-hub zendesk setup`."""
    return json.dumps({**TRIGGER_BODY, "trigger": trigger}, indent=2)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TicketState(_Frozen):
    """The ticket as the webhook saw it, after the change."""

    id: int
    subject: str = ""
    description: str = ""
    status: str | None = None
    priority: str | None = None
    type: str | None = None
    tags: tuple[str, ...] = ()
    group_id: int | None = None
    # Trigger payloads carry names instead of ids.
    group_name: str | None = None
    assignee_id: int | None = None
    assignee_name: str | None = None
    requester_id: int | None = None
    external_id: str | None = None
    via: str | None = None
    updated_at: str | None = None


class CommentAdded(_Frozen):
    """A comment the change added."""

    id: str | None = None
    body: str = ""
    # Only a comment Zendesk says is public is: an unsaid or unreadable flag is internal
    # (nothing internal may reach a reporter; _is_public logs it so it is seen).
    public: bool = False
    author_id: int | None = None
    author_name: str | None = None
    # Event payloads say whether the author is an agent; trigger payloads do not (None).
    author_is_staff: bool | None = None


class ZendeskEvent(_Frozen):
    """One change to one ticket, as a Zendesk webhook told it; JSON-safe for the job."""

    source: Literal["event", "trigger"]
    # The deduplication key: the event id, or the trigger's ticket, time and comment.
    key: str
    kind: Kind
    zendesk_type: str
    ticket: TicketState
    occurred_at: str | None = None
    actor_id: int | None = None
    comment: CommentAdded | None = None
    # For *_changed events: the values before and after (ids for group and assignee).
    previous: Any = None
    current: Any = None
    tags_added: tuple[str, ...] = ()
    tags_removed: tuple[str, ...] = ()

    def to_job(self) -> dict[str, Any]:
        """Plain JSON-safe data for an rq job argument."""
        return self.model_dump(mode="json")

    @classmethod
    def from_job(cls, data: dict[str, Any]) -> ZendeskEvent:
        """Rebuild from a job argument."""
        return cls.model_validate(data)


class Ignored(_Frozen):
    """A well-formed delivery the hub has no use for (a user event, a brand change, ...)."""

    zendesk_type: str


def parse_webhook(body: bytes) -> ZendeskEvent | Ignored:
    """A verified webhook body as a ZendeskEvent (or Ignored); Rejected(400) when malformed."""
    data = json_of(body, "the webhook body")
    if not isinstance(data, dict):
        raise Rejected(400, "the webhook body is not a JSON object")
    try:
        if data.get("feedback_hub") == "trigger":
            return _from_trigger(data)
        if isinstance(data.get("type"), str) and data["type"].startswith(EVENT_PREFIX):
            return _from_event(data)
    except (ValidationError, ValueError, TypeError, AttributeError, KeyError) as exc:
        raise Rejected(
            400, f"the webhook body is not a ticket event the hub knows: {exc}"
        ) from None
    raise Rejected(
        400,
        "the webhook body is neither a Zendesk event (type zen:event-type:...) "
        "nor the trigger JSON feedback-hub installs",
    )


# ---------------------------------------------------------------- event-subscribed


def _from_event(data: dict[str, Any]) -> ZendeskEvent | Ignored:
    zendesk_type = data["type"].removeprefix(EVENT_PREFIX)
    kind = EVENT_TYPES.get(zendesk_type)
    if kind is None:
        return Ignored(zendesk_type=zendesk_type)
    detail = _obj(data, "detail")
    event = _obj(data, "event")
    subject = str(data.get("subject") or "")
    ticket_id = _int(detail.get("id")) or _int(subject.rpartition(":")[2])
    if ticket_id is None:
        raise ValueError("no ticket id in detail.id or subject")
    event_id = data.get("id")
    if not event_id:
        raise ValueError("the event has no id")
    ticket = TicketState(
        id=ticket_id,
        subject=str(detail.get("subject") or ""),
        description=str(detail.get("description") or ""),
        status=_lower(detail.get("status")),
        priority=_lower(detail.get("priority")),
        type=_lower(detail.get("type")),
        tags=tuple(str(t) for t in detail.get("tags") or ()),
        group_id=_int(detail.get("group_id")),
        assignee_id=_int(detail.get("assignee_id")),
        requester_id=_int(detail.get("requester_id")),
        external_id=_str(detail.get("external_id")),
        via=_str((detail.get("via") or {}).get("channel")),
        updated_at=_str(detail.get("updated_at")),
    )
    comment = None
    if kind == "comment_added":
        raw = _obj(event, "comment")
        author = raw.get("author") or {}
        comment = CommentAdded(
            id=_str(raw.get("id")),
            body=str(raw.get("body") or ""),
            public=_is_public(raw.get("is_public"), ticket_id),
            author_id=_int(author.get("id")),
            author_name=_str(author.get("name")),
            author_is_staff=author.get("is_staff") if "is_staff" in author else None,
        )
    tags = event.get("tags") or {}
    return ZendeskEvent(
        source="event",
        key=f"event:{event_id}",
        kind=kind,
        zendesk_type=zendesk_type,
        ticket=ticket,
        occurred_at=_str(data.get("time")),
        actor_id=_int(detail.get("actor_id")),
        comment=comment,
        previous=_value(event.get("previous")),
        current=_value(event.get("current")),
        tags_added=tuple(str(t) for t in tags.get("added") or ()),
        tags_removed=tuple(str(t) for t in tags.get("removed") or ()),
    )


# ---------------------------------------------------------------- trigger-connected


def _from_trigger(data: dict[str, Any]) -> ZendeskEvent:
    raw = _obj(data, "ticket")
    ticket_id = _int(raw.get("id"))
    if ticket_id is None:
        raise ValueError("ticket.id is not a number")
    ticket = TicketState(
        id=ticket_id,
        subject=str(raw.get("subject") or ""),
        status=_lower(_filled(raw.get("status"))),
        priority=_lower(_filled(raw.get("priority"))),
        type=_lower(_filled(raw.get("type"))),
        # {{ticket.tags}} is the tags separated by spaces.
        tags=tuple(str(_filled(raw.get("tags")) or "").split()),
        group_name=_filled(raw.get("group")),
        assignee_name=_filled(raw.get("assignee")),
        requester_id=_int(_filled(raw.get("requester_id"))),
        external_id=_filled(raw.get("external_id")),
        via=_lower(_filled(raw.get("via"))),
        updated_at=_filled(raw.get("updated_at")),
    )
    comment = None
    raw_comment = data.get("comment") or {}
    if isinstance(raw_comment, dict) and _filled(raw_comment.get("body")):
        comment = CommentAdded(
            id=_filled(raw_comment.get("id")),
            body=str(raw_comment["body"]),
            public=_is_public(raw_comment.get("is_public"), ticket_id),
            author_id=_int(_filled(raw_comment.get("author_id"))),
            author_name=_filled(raw_comment.get("author_name")),
        )
    trigger = str(data.get("trigger") or "updated")
    key = f"trigger:{ticket_id}:{trigger}:{ticket.updated_at}:{comment.id if comment else ''}"
    return ZendeskEvent(
        source="trigger",
        key=key,
        kind="created" if trigger == "created" else "updated",
        zendesk_type=f"trigger.{trigger}",
        ticket=ticket,
        occurred_at=ticket.updated_at,
        actor_id=_int(_filled((data.get("actor") or {}).get("id"))),
        comment=comment,
    )


# ---------------------------------------------------------------- helpers


def _obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ValueError(f"{key} is not an object")
    return value


def _int(value: Any) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _is_public(value: Any, ticket_id: int | None) -> bool:
    """Whether Zendesk says the comment is public: true or "true" only.

    Anything else (missing, empty, an unfilled placeholder) counts as internal, and is
    logged: a reply that should have reached its reporter is then visible to an operator.
    """
    said = str(value).strip().lower() if value is not None else ""
    if value is True or said == "true":
        return True
    if value is not False and said != "false":
        logs.event(log, "zendesk.comment.visibility_unknown", logging.WARNING,
                   ticket=ticket_id, is_public=str(value)[:40])  # fmt: skip
    return False


def _str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _lower(value: Any) -> str | None:
    # Event payloads spell enumerations in capitals ("OPEN"), triggers as displayed ("Open").
    return None if value in (None, "") else str(value).strip().lower()


def _filled(value: Any) -> str | None:
    """A trigger placeholder's value; empty, "-" or an unfilled {{...}} count as none."""
    if value is None:
        return None
    text = str(value).strip()
    if not text or text == "-" or (text.startswith("{{") and text.endswith("}}")):
        return None
    return text


def _value(value: Any) -> Any:
    # status_changed carries "OPEN"; assignment changes carry ids (or objects with an id).
    if isinstance(value, dict):
        return _value(value.get("id", value.get("name")))
    if isinstance(value, str):
        return value.strip().lower()
    return value
