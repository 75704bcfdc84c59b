"""`Report`: the normalized intake, whatever the source; jobs take it as plain JSON data."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Source = Literal["slack_command", "slack_modal", "slack_shortcut", "slack_reaction", "mobile"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Reporter(_Frozen):
    """Who sent the report, as far as the source knows."""

    name: str | None = None
    email: str | None = None
    slack_team_id: str | None = None
    slack_user_id: str | None = None
    # A stable id from the source when there is no email (mobile user id, ...).
    external_id: str | None = None


class ReportFields(_Frozen):
    """Structured facts about the report, used by routing rules and ticket fields."""

    platform: str | None = None
    app_id: str | None = None
    app_version: str | None = None
    build: str | None = None
    os: str | None = None
    os_version: str | None = None
    device: str | None = None
    locale: str | None = None
    category: str | None = None
    severity: str | None = None
    # A Slack Connect requester: of another organization, and its Zendesk name when mapped.
    external: bool = False
    organization: str | None = None


class AttachmentRef(_Frozen):
    """A file waiting in attachment storage for the worker to upload to Zendesk."""

    key: str
    filename: str
    content_type: str
    size: int


class ReplyContext(_Frozen):
    """Where to answer the reporter: Slack team, channel, user, thread and response_url."""

    team_id: str | None = None
    channel_id: str | None = None
    user_id: str | None = None
    thread_ts: str | None = None
    message_ts: str | None = None
    response_url: str | None = None
    permalink: str | None = None


class Report(_Frozen):
    """One report from any source, ready to become a Zendesk ticket."""

    source: Source
    idempotency_key: str = Field(min_length=1, max_length=500)
    reporter: Reporter = Field(default_factory=Reporter)
    subject: str
    description: str
    tags: tuple[str, ...] = ()
    fields: ReportFields = Field(default_factory=ReportFields)
    custom: dict[str, str] = Field(default_factory=dict)
    # Short labelled facts for the agent ("Workspace", "Device", ...), shown as a
    # block under the description in the ticket, in this order.
    context: dict[str, str] = Field(default_factory=dict)
    attachments: tuple[AttachmentRef, ...] = ()
    crash_signature: str | None = None
    reply: ReplyContext = Field(default_factory=ReplyContext)
    received_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def key_digest(self) -> str:
        """A short stable digest of the idempotency key, safe in ids and URLs."""
        # Asked for three times while a report is taken in; a copy with another key
        # (model_copy) gets its own, so it is cached by value, not on the object.
        return _key_digest(self.source, self.idempotency_key)

    @property
    def external_id(self) -> str:
        """The Zendesk ticket external_id: the same report always maps to the same one."""
        return f"feedback-hub-{self.key_digest}"

    @property
    def text(self) -> str:
        """Subject and description together, for taxonomy and related-issue matching."""
        return f"{self.subject}\n{self.description}"

    def to_job(self) -> dict[str, Any]:
        """Plain JSON-safe data for an rq job argument."""
        return self.model_dump(mode="json")

    @classmethod
    def from_job(cls, data: dict[str, Any]) -> Report:
        """Rebuild a Report from a job argument."""
        return cls.model_validate(data)


def digest(*parts: str) -> str:
    """A 32-hex-character digest of the parts, for ids derived from outside keys."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\x00")
    return h.hexdigest()[:32]


@lru_cache(maxsize=256)
def _key_digest(source: str, idempotency_key: str) -> str:
    return digest(source, idempotency_key)
