"""POST /zendesk/webhook: verify Zendesk's signature, parse, deduplicate, enqueue, answer.

Zendesk waits about 12 s and retries some failures; duplicates happen, so each
event is queued once (by its event id) and each invocation answered once. The
work (rules, engineering channels, the reporter) runs in workers/ticket_events.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState

from integrations import logs
from integrations.errors import Rejected
from integrations.queue import DEDUPE_SECONDS
from integrations.queue.jobs import HANDLE_TICKET_EVENT
from integrations.web import hub
from integrations.zendesk.payloads import Ignored, parse_webhook
from integrations.zendesk.verify import INVOCATION, WEBHOOK_ID, ZendeskVerifier

log = logging.getLogger(__name__)

blueprint = Blueprint("zendesk", __name__, url_prefix="/zendesk")


@dataclass
class ZendeskIntake:
    """What the webhook view shares, built once per app (tests swap the clock here)."""

    verifier: ZendeskVerifier | None


@blueprint.record_once
def _setup(state: BlueprintSetupState) -> None:
    settings = state.app.extensions["feedback_hub"].settings
    verifier = None
    if settings.zendesk_webhook_secret:
        verifier = ZendeskVerifier(settings.zendesk_webhook_secret, settings.zendesk_webhook_window)
    state.app.extensions["zendesk"] = ZendeskIntake(verifier)


def intake(app: Flask | None = None) -> ZendeskIntake:
    """The webhook view's shared objects."""
    found: ZendeskIntake = (app or current_app).extensions["zendesk"]
    return found


def _invocation_key(invocation_id: str) -> str:
    return f"hub:zendesk:invocation:{invocation_id[:100]}"


@blueprint.post("/webhook")
def webhook() -> tuple[Response, int]:
    """A Zendesk webhook delivery: verified, parsed and queued once; answered at once."""
    verifier = intake().verifier
    if verifier is None:
        raise Rejected(
            503,
            "ZENDESK_WEBHOOK_SECRET is not set: the hub cannot verify Zendesk webhooks "
            "(run `feedback-hub zendesk setup` and set the secret it prints)",
            code="not_configured",
        )
    # The raw bytes: the signature covers exactly these.
    body = request.get_data(cache=True, as_text=False, parse_form_data=False)
    verifier.verify(body, request.headers)

    redis = hub().redis
    invocation = request.headers.get(INVOCATION, "").strip()
    if invocation and redis.exists(_invocation_key(invocation)):
        logs.event(log, "zendesk.webhook.duplicate", invocation=invocation)
        return jsonify(ok=True, duplicate=True), 200

    parsed = parse_webhook(body)
    if isinstance(parsed, Ignored):
        logs.event(log, "zendesk.webhook.ignored", type=parsed.zendesk_type)
        return jsonify(ok=True, ignored=parsed.zendesk_type), 200

    enqueued = hub().enqueue(HANDLE_TICKET_EVENT, parsed.to_job(), key=parsed.key)
    # Marked only once the job is durable: a delivery that failed before this is
    # not mistaken for a duplicate when Zendesk retries it.
    if invocation:
        redis.set(_invocation_key(invocation), 1, ex=DEDUPE_SECONDS)
    logs.event(
        log,
        "zendesk.webhook.queued",
        ticket=parsed.ticket.id,
        type=parsed.zendesk_type,
        invocation=invocation or None,
        webhook=request.headers.get(WEBHOOK_ID),
        created=enqueued.created,
    )
    return jsonify(ok=True, queued=enqueued.created, ticket=parsed.ticket.id), 200
