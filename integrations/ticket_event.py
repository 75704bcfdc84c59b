"""`TicketEvent`: what ticket_event rules see of a Zendesk ticket event, whatever carried it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EventType = Literal[
    "created",
    "comment_added",
    "status_changed",
    "tags_changed",
    "priority_changed",
    "group_changed",
    "assignee_changed",
    "type_changed",
    "custom_field_changed",
]
ChangedField = Literal[
    "status",
    "priority",
    "group",
    "assignee",
    "tags",
    "type",
    "subject",
    "comment",
    "custom_fields",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Comment(_Frozen):
    """The comment an event added: public or internal, who wrote it, and its text."""

    public: bool = True
    author_id: int | None = None
    # end_user, agent or admin, as Zendesk's user roles.
    author_role: str | None = None
    body: str = ""


class TicketEvent(_Frozen):
    """A Zendesk ticket event, reduced to what rules need: the ticket now, and what changed."""

    type: EventType
    ticket_id: int
    subject: str = ""
    tags: tuple[str, ...] = ()
    status: str | None = None
    priority: str | None = None
    group: str | None = None
    assignee: str | None = None
    ticket_type: str | None = None
    custom_fields: dict[str, str] = Field(default_factory=dict)
    changed: tuple[ChangedField, ...] = ()
    # Previous values of changed fields, when the webhook says (e.g. {"priority": "normal"}).
    previous: dict[str, Any] = Field(default_factory=dict)
    comment: Comment | None = None
    # How the change was made: web, api, email, mail, rule, ... (Zendesk's via.channel).
    via: str | None = None
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def text(self) -> str:
        """Subject and the comment's text, for text conditions."""
        body = self.comment.body if self.comment else ""
        return f"{self.subject}\n{body}"

    def to_job(self) -> dict[str, Any]:
        """Plain JSON-safe data for an rq job argument."""
        return self.model_dump(mode="json")

    @classmethod
    def from_job(cls, data: dict[str, Any]) -> TicketEvent:
        """Rebuild a TicketEvent from a job argument."""
        return cls.model_validate(data)
