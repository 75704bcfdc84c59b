"""POST /slack/events: the Events API. A reporter's reply in a ticket's thread becomes a comment.

Signed like every Slack request (v0). The first request Slack sends is a
`url_verification` whose challenge is echoed. Slack retries a delivery it thinks
failed (at once, +1 min, +5 min, with X-Slack-Retry-Num): the job is queued once
per `event_id`, so a retry of a delivery that was queued changes nothing, and a
retry of one that was not queued still gets through.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from pydantic import BaseModel, ConfigDict, ValidationError

from integrations import logs
from integrations.errors import Rejected
from integrations.queue.jobs import RELAY_REPORTER_REPLY
from integrations.slack.verify import SlackVerifier
from integrations.web import hub

log = logging.getLogger(__name__)

blueprint = Blueprint("slack_events", __name__, url_prefix="/slack")


class _Frozen(BaseModel):
    # Slack adds fields over time; unknown ones are ignored, never an error.
    model_config = ConfigDict(frozen=True, extra="ignore")


class UrlVerification(_Frozen):
    """Slack checking the events URL: the challenge is echoed."""

    challenge: str


class MessagePosted(_Frozen):
    """A `message` event: someone wrote in a channel or DM the app is in."""

    event_id: str
    team_id: str = ""
    channel: str
    user: str | None = None
    text: str = ""
    ts: str
    thread_ts: str | None = None
    bot_id: str | None = None
    subtype: str | None = None
    channel_type: str | None = None

    @property
    def is_person_in_thread(self) -> bool:
        """A person's plain message inside a thread (not the thread's first message)."""
        # Bots (the hub's own posts included) carry bot_id; edits, joins and the
        # like carry a subtype. Neither is a reply from the reporter.
        plain = self.bot_id is None and self.subtype in (None, "file_share") and bool(self.user)
        return plain and self.thread_ts is not None and self.thread_ts != self.ts

    def to_job(self) -> dict[str, Any]:
        """Plain JSON-safe data for an rq job argument."""
        return self.model_dump(mode="json")

    @classmethod
    def from_job(cls, data: dict[str, Any]) -> MessagePosted:
        """Rebuild from a job argument."""
        return cls.model_validate(data)


class OtherEvent(_Frozen):
    """Any other event callback: acknowledged, nothing to do."""

    type: str


def parse_event(body: bytes) -> UrlVerification | MessagePosted | OtherEvent:
    """An Events API request from its verified JSON body; Rejected(400) when malformed."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Rejected(400, "not a Slack event: the body is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise Rejected(400, "not a Slack event: no type")
    try:
        if data["type"] == "url_verification":
            return UrlVerification.model_validate(data)
        if data["type"] != "event_callback":
            return OtherEvent(type=data["type"])
        event = data.get("event")
        if not isinstance(event, dict) or event.get("type") != "message":
            kind = event.get("type") if isinstance(event, dict) else None
            return OtherEvent(type=str(kind or "unknown"))
        return MessagePosted.model_validate(
            {**event, "event_id": data.get("event_id"), "team_id": data.get("team_id") or ""}
        )
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0]["loc"])
        raise Rejected(400, f"not a Slack {data['type']} payload: {where} is missing") from None


def thread_key(channel: str, thread_ts: str) -> str:
    """Redis key: which ticket a Slack thread talks about (set when the hub posts in it)."""
    return f"hub:slack:thread:{channel}:{thread_ts}"


@dataclass
class EventsIntake:
    """The events view's verifier (tests swap its clock)."""

    verifier: SlackVerifier


@blueprint.record_once
def _setup(state: BlueprintSetupState) -> None:
    settings = state.app.extensions["feedback_hub"].settings
    assert settings.slack_signing_secret, "web settings always have SLACK_SIGNING_SECRET"
    state.app.extensions["slack_events"] = EventsIntake(
        SlackVerifier(settings.slack_signing_secret)
    )


def intake(app: Flask | None = None) -> EventsIntake:
    """The events view's shared objects."""
    found: EventsIntake = (app or current_app).extensions["slack_events"]
    return found


@blueprint.post("/events")
def events() -> Response:
    """An Events API delivery: url_verification, or a message that may be a reporter's reply."""
    body = request.get_data(cache=True, as_text=False, parse_form_data=False)
    intake().verifier.verify(body, request.headers)
    event = parse_event(body)
    if isinstance(event, UrlVerification):
        return jsonify(challenge=event.challenge)
    if isinstance(event, OtherEvent) or not event.is_person_in_thread:
        return jsonify(ok=True)
    assert event.thread_ts is not None
    ticket = hub().redis.get(thread_key(event.channel, event.thread_ts))
    if ticket is None:
        # A thread the hub never posted a ticket update in: not ours to relay.
        return jsonify(ok=True)
    enqueued = hub().enqueue(RELAY_REPORTER_REPLY, event.to_job(), int(ticket), key=event.event_id)
    logs.event(
        log,
        "slack.event.queued",
        event=event.event_id,
        ticket=int(ticket),
        retry=request.headers.get("X-Slack-Retry-Num"),
        created=enqueued.created,
    )
    return jsonify(ok=True)
