"""The control endpoints under /__sandbox: reset, webhook target, deliveries, agent actions.

Tests and `feedback-hub simulate` drive the sandbox through these; they are never counted,
limited, faulted or authenticated (see Sandbox). Faults and stats are the shared ones in
integrations/sandbox/server.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING

from flask import Response, jsonify, request

from integrations.sandbox.server import CONTROL
from integrations.sandbox.zendesk.api import Route
from integrations.sandbox.zendesk.records import Delivery, Json, comment_json, not_found
from integrations.sandbox.zendesk.webhooks import WebhookAccount

if TYPE_CHECKING:
    from integrations.sandbox.zendesk.sandbox import ZendeskSandbox


def _reply(zd: WebhookAccount, ticket_id: int, data: Json) -> list[Delivery]:
    return zd.agent_reply(ticket_id, data["body"], status=data.get("status"))


def _note(zd: WebhookAccount, ticket_id: int, data: Json) -> list[Delivery]:
    return zd.agent_note(ticket_id, data["body"])


def _solve(zd: WebhookAccount, ticket_id: int, data: Json) -> list[Delivery]:
    return zd.agent_solve(ticket_id, data.get("body"))


def _tags(zd: WebhookAccount, ticket_id: int, data: Json) -> list[Delivery]:
    return zd.agent_tags(ticket_id, data.get("add", ()), data.get("remove", ()))


# What POST /__sandbox/tickets/<id>/<action> does, by action.
AGENT_ACTIONS: dict[str, Callable[[WebhookAccount, int, Json], list[Delivery]]] = {
    "reply": _reply,
    "note": _note,
    "solve": _solve,
    "tags": _tags,
}


class SandboxControl:
    """The endpoints that drive the sandbox itself rather than emulate Zendesk."""

    def __init__(self, sandbox: ZendeskSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        """Every control endpoint, in the order they are registered."""
        return [
            ("POST", f"{CONTROL}/reset", self.reset),
            ("DELETE", f"{CONTROL}/stats", self.reset_stats),
            ("POST", f"{CONTROL}/webhook", self.webhook_target),
            ("GET", f"{CONTROL}/deliveries", self.deliveries),
            ("GET", f"{CONTROL}/tickets", self.dump_tickets),
            ("GET", f"{CONTROL}/tickets/<int:ticket_id>/event/<event_type>", self.event_for),
            ("POST", f"{CONTROL}/tickets/<int:ticket_id>/<action>", self.act),
        ]

    def reset(self) -> Response:
        """Healthy again, with zero counts and an empty rate-limit minute; records are kept."""
        zd = self.sandbox
        zd.clear_faults()
        zd.reset_stats()
        with zd.lock:
            zd.window.clear()
        return jsonify(ok=True)

    def reset_stats(self) -> Response:
        """Start counting requests from zero; answers the (empty) counts."""
        self.sandbox.reset_stats()
        return jsonify(self.sandbox.stats())

    def webhook_target(self) -> Response:
        """Send every ticket event to {"url": ...}, signed with {"secret": ...}."""
        data = request.get_json(force=True) or {}
        return jsonify(webhook_id=self.sandbox.set_webhook_target(data["url"], data["secret"]))

    def deliveries(self) -> Response:
        """Every webhook request sent so far, oldest first."""
        with self.sandbox.lock:
            return jsonify(deliveries=[asdict(d) for d in self.sandbox.deliveries])

    def dump_tickets(self) -> Response:
        """Every ticket with its comments."""
        zd = self.sandbox
        with zd.lock:
            items = [
                {
                    **zd.ticket_json(t),
                    "comments": [comment_json(zd.base(), c) for c in zd.comments[t["id"]]],
                }
                for t in zd.tickets.values()
            ]
        return jsonify(tickets=items)

    def event_for(self, ticket_id: int, event_type: str) -> Response:
        """The webhook payload an event of `event_type` on the ticket would have (not sent)."""
        with self.sandbox.lock:
            ticket = self.sandbox.tickets.get(ticket_id)
        if ticket is None:
            raise not_found()
        return jsonify(self.sandbox.ticket_event(event_type, ticket, {}))

    def act(self, ticket_id: int, action: str) -> Response | tuple[Response, int]:
        """The agent acts on the ticket; answers the ticket and the webhooks that were sent."""
        data = request.get_json(silent=True) or {}
        perform = AGENT_ACTIONS.get(action)
        if perform is None:
            return jsonify(error=f"unknown action {action!r}: reply, note, solve, tags"), 404
        sent = perform(self.sandbox, ticket_id, data)
        with self.sandbox.lock:
            ticket = self.sandbox.ticket_json(self.sandbox.tickets[ticket_id])
        return jsonify(ticket=ticket, deliveries=[asdict(d) for d in sent])
