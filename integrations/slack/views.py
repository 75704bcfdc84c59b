"""The Slack blueprint: verify, parse, enqueue, answer (Slack wants the answer within 3 s).

POST /slack/interactions   the form's submit, and the "Send to support" message shortcut.
POST /slack/commands       is answered before Flask, from the objects set up here
                           (integrations/slack/commands.py).

The one Slack Web API call made here is views.open, which Slack only accepts within
3 s of the trigger; everything else that talks to Slack runs in a worker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from redis.exceptions import RedisError

from integrations import logs
from integrations.errors import HubError
from integrations.queue.jobs import FILE_REACTION, RELAY_REPORTER_REPLY, REPORT_RECEIVED
from integrations.report import Report
from integrations.slack import messages, reports
from integrations.slack.api import SlackApi
from integrations.slack.loop import thread_key
from integrations.slack.payloads import (
    MessageShortcut,
    OtherEvent,
    ReactionAdded,
    UrlVerification,
    ViewSubmission,
    parse_event,
    parse_interaction,
)
from integrations.slack.threads import reaction_key
from integrations.slack.verify import SlackVerifier
from integrations.web import hub

log = logging.getLogger(__name__)

blueprint = Blueprint("slack", __name__, url_prefix="/slack")

# views.open must finish inside Slack's 3 s with the network and our own time on top.
VIEWS_OPEN_TIMEOUT = 2.0


@dataclass
class SlackIntake:
    """What the Slack views share, built once per app: the verifier and the views.open client."""

    verifier: SlackVerifier
    api: SlackApi | None


@blueprint.record_once
def _setup(state: BlueprintSetupState) -> None:
    settings = state.app.extensions["feedback_hub"].settings
    assert settings.slack_signing_secret, "web settings always have SLACK_SIGNING_SECRET"
    api = None
    if settings.slack_bot_token:
        api = SlackApi(settings, timeout=VIEWS_OPEN_TIMEOUT, attempts=1)
    state.app.extensions["slack"] = SlackIntake(SlackVerifier(settings.slack_signing_secret), api)


def intake(app: Flask | None = None) -> SlackIntake:
    """The Slack views' shared objects (tests swap the verifier's clock here)."""
    found: SlackIntake = (app or current_app).extensions["slack"]
    return found


def _verified_body() -> bytes:
    # The raw bytes, before Flask parses any form: the signature covers exactly these.
    body = request.get_data(cache=True, as_text=False, parse_form_data=False)
    intake().verifier.verify(body, request.headers)
    return body


def _json(payload: dict[str, Any]) -> Response:
    return jsonify(payload)


# ---------------------------------------------------------------- /slack/interactions


@blueprint.post("/interactions")
def interactions() -> Response:
    """Interactivity: the feedback form's submit and the "Send to support" shortcut."""
    body = _verified_body()
    interaction = parse_interaction(body)
    answer = None
    if isinstance(interaction, ViewSubmission):
        answer = _submitted(interaction)
    elif isinstance(interaction, MessageShortcut):
        answer = _shortcut(interaction)
    elif interaction.type == "block_actions":
        # Engineering messages' buttons ("Acknowledge"): integrations/slack/engineering.py.
        from integrations.slack.engineering import handle_block_actions

        return handle_block_actions(body, hub().redis)
    # An empty 200 acknowledges (and closes a submitted form); block_actions,
    # view_closed and other apps' shortcuts need nothing more.
    return _json(answer) if answer else Response(status=200)


def _submitted(submission: ViewSubmission) -> dict[str, Any] | None:
    if submission.callback_id != messages.MODAL_CALLBACK_ID:
        return None
    errors = reports.form_errors(submission)
    if errors:
        return messages.modal_errors(errors)
    report = reports.modal_report(submission)
    try:
        hub().file_report(report)
    except RedisError as exc:
        logs.event(log, "slack.intake.not_queued", logging.ERROR, error=type(exc).__name__)
        # The form stays open with the person's words in it; Submit again retries.
        return messages.modal_errors({"summary": messages.FORM_NOT_FILED})
    logs.event(log, "slack.form.queued", report=report.key_digest, team=submission.team_id)
    return {"response_action": "update", "view": messages.modal_receipt()}


def _shortcut(shortcut: MessageShortcut) -> dict[str, Any] | None:
    if shortcut.callback_id != messages.SHORTCUT_CALLBACK_ID:
        return None
    report = reports.shortcut_report(shortcut)
    try:
        enqueued = hub().file_report(report)
    except RedisError as exc:
        logs.event(log, "slack.intake.not_queued", logging.ERROR, error=type(exc).__name__)
        # A shortcut's reply body is not shown to anyone: say it in a modal instead.
        _show_not_filed(shortcut.trigger_id)
        return messages.could_not_file()
    try:
        _queue_receipt(report, shortcut, duplicate=not enqueued.created)
    except RedisError as exc:
        # The report is safe; only the early receipt is lost ("Ticket #N filed" still comes).
        logs.event(log, "slack.receipt.not_queued", logging.WARNING, error=type(exc).__name__)
    logs.event(
        log,
        "slack.shortcut.queued",
        report=report.key_digest,
        team=shortcut.team_id,
        created=enqueued.created,
    )
    return None


def _queue_receipt(report: Report, shortcut: MessageShortcut, *, duplicate: bool) -> None:
    # The shortcut's HTTP answer shows nothing, so a worker sends the receipt through the
    # response_url; a second use of the shortcut on the same message is told it was sent.
    # At the front of the tickets queue, the one workers take first: the next free worker
    # sends it, ahead of the report's own job and any backlog of reports waiting to be
    # filed (on the notify queue it waited for all of them, and could come after
    # "Ticket #N filed").
    hub().enqueue(
        REPORT_RECEIVED,
        report.to_job(),
        duplicate,
        key=f"{report.external_id}:{shortcut.trigger_id}",
    )


def _show_not_filed(trigger_id: str) -> None:
    api = intake().api
    if api is None or not trigger_id:
        return
    try:
        api.open_view(trigger_id, messages.not_filed_notice())
    except HubError as exc:
        logs.event(log, "slack.notice.not_opened", logging.WARNING, reason=str(exc))


# ---------------------------------------------------------------- POST /slack/events
# The Events API. Slack retries a delivery it thinks failed (at once, +1 min, +5 min,
# with X-Slack-Retry-Num): the job is queued once per `event_id`, so a retry of a
# delivery that was queued changes nothing, and one that was not still gets through.


@blueprint.post("/events")
def events() -> Response:
    """An Events API delivery: url_verification, or a message that may be a reporter's reply."""
    event = parse_event(_verified_body())
    if isinstance(event, UrlVerification):
        return jsonify(challenge=event.challenge)
    if isinstance(event, ReactionAdded):
        return _reaction(event)
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
        event_id=event.event_id,
        ticket=int(ticket),
        retry=request.headers.get("X-Slack-Retry-Num"),
        created=enqueued.created,
    )
    return jsonify(ok=True)


def _reaction(event: ReactionAdded) -> Response:
    """The ticket emoji on a message: its thread is filed by a worker, once per message."""
    settings = hub().settings
    # Skin tones arrive as "name::skin-tone-2".
    emoji = event.reaction.split("::", 1)[0]
    if emoji != settings.slack_ticket_emoji or not event.on_message:
        return jsonify(ok=True)
    allowed = settings.slack_ticket_channels
    if allowed and event.item.channel not in allowed:
        logs.event(log, "slack.reaction.channel_not_allowed", channel=event.item.channel)
        return jsonify(ok=True)
    # Keyed by the message, not the delivery: a second reaction, by anyone, is the same job.
    enqueued = hub().enqueue(FILE_REACTION, event.to_job(), key=reaction_key(event))
    logs.event(
        log,
        "slack.reaction.queued",
        event_id=event.event_id,
        channel=event.item.channel,
        message_ts=event.item.ts,
        retry=request.headers.get("X-Slack-Retry-Num"),
        created=enqueued.created,
    )
    return jsonify(ok=True)
