"""The account's webhooks, and an agent whose actions send them, signed as Zendesk signs them."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Iterable

import requests

from integrations import logs
from integrations.sandbox.signing import zendesk_webhook_headers
from integrations.sandbox.zendesk.records import (
    EVENT_PREFIX,
    TICKET_EVENTS,
    Delivery,
    Invalid,
    Json,
    attachment_json,
    iso,
    log,
    record_invalid,
    to_str,
    to_upper,
)
from integrations.sandbox.zendesk.state import ZendeskAccount


class WebhookAccount(ZendeskAccount):
    """The account plus its webhooks and triggers; ticket changes become signed event deliveries."""

    def create_webhook(self, data: Json, *, secret: str | None = None) -> Json:
        """Register a webhook from an API payload; its signing secret is generated unless given."""
        for field in ("name", "endpoint", "http_method", "request_format", "status"):
            if not data.get(field):
                raise Invalid(
                    400,
                    {
                        "errors": [
                            {
                                "code": "InvalidValue",
                                "title": f"{field} is required",
                                "source": {"pointer": f"/webhook/{field}"},
                            }
                        ]
                    },
                )
        now = iso()
        webhook_id = "01" + base64.b32encode(secrets.token_bytes(15)).decode()[:24]
        webhook = {
            "id": webhook_id,
            "name": data["name"],
            "status": data["status"],
            "endpoint": data["endpoint"],
            "http_method": data["http_method"],
            "request_format": data["request_format"],
            "subscriptions": list(data.get("subscriptions") or []),
            "created_at": now,
            "created_by": str(self.agent["id"]),
            "updated_at": now,
            "updated_by": str(self.agent["id"]),
            "signing_secret": {"algorithm": "SHA256", "secret": None},
        }
        with self.lock:
            self.webhooks[webhook_id] = webhook
            self.webhook_secrets[webhook_id] = secret or secrets.token_urlsafe(32)
        return webhook

    def set_webhook_target(self, url: str, secret: str) -> str:
        """Send every ticket event to `url`, signed with `secret` (replaces an earlier target)."""
        with self.lock:
            for wid in [w for w, hook in self.webhooks.items() if hook["name"] == "sandbox target"]:
                del self.webhooks[wid]
        hook = self.create_webhook(
            {
                "name": "sandbox target",
                "endpoint": url,
                "http_method": "POST",
                "request_format": "json",
                "status": "active",
                "subscriptions": [EVENT_PREFIX + t for t in TICKET_EVENTS],
            },
            secret=secret,
        )
        return str(hook["id"])

    def create_trigger(self, data: Json) -> Json:
        """Store a trigger from an API payload; the sandbox keeps it but never runs it."""
        if not data.get("title"):
            raise record_invalid("title", "Title: cannot be blank", "BlankValue")
        if not data.get("actions"):
            raise record_invalid("actions", "Actions: cannot be blank", "BlankValue")
        now = iso()
        tid = self._id("object")
        trigger = {
            "id": tid,
            "url": f"{self.base()}/api/v2/triggers/{tid}.json",
            "title": data["title"],
            "raw_title": data["title"],
            "active": data.get("active", True),
            "description": data.get("description"),
            "position": len(self.triggers) + 1,
            "conditions": data.get("conditions") or {"all": [], "any": []},
            "actions": data["actions"],
            "category_id": data.get("category_id"),
            "created_at": now,
            "updated_at": now,
        }
        with self.lock:
            self.triggers[tid] = trigger
        return trigger

    def ticket_event(
        self, event_type: str, ticket: Json, event: Json, *, actor_id: int | None = None
    ) -> Json:
        """An event-subscribed webhook payload for `ticket` (Zendesk's "Ticket events" schema)."""
        detail = {
            "actor_id": to_str(actor_id or self.agent["id"]),
            "assignee_id": to_str(ticket["assignee_id"]),
            "brand_id": to_str(ticket["brand_id"]),
            "created_at": ticket["created_at"],
            "custom_status": to_str(ticket["custom_status_id"]),
            "description": ticket["description"],
            "external_id": ticket["external_id"],
            "form_id": to_str(ticket["ticket_form_id"]),
            "group_id": to_str(ticket["group_id"]),
            "id": str(ticket["id"]),
            "is_public": ticket["is_public"],
            "organization_id": to_str(ticket["organization_id"]),
            "priority": to_upper(ticket["priority"]),
            "requester_id": to_str(ticket["requester_id"]),
            "status": to_upper(ticket["status"]),
            "subject": ticket["subject"],
            "submitter_id": to_str(ticket["submitter_id"]),
            "tags": list(ticket["tags"]),
            "type": to_upper(ticket["type"]),
            "updated_at": ticket["updated_at"],
            "via": {"channel": "web_service"},
        }
        name = event_type if event_type.startswith(EVENT_PREFIX) else EVENT_PREFIX + event_type
        return {
            "type": name,
            "account_id": self.account_id,
            "id": str(uuid.uuid4()),
            "time": iso(),
            "zendesk_event_version": "2022-11-06",
            "subject": f"zen:ticket:{ticket['id']}",
            "detail": detail,
            "event": event,
        }

    def _comment_added(self, e: Json) -> Json:
        author = self.users.get(e["author_id"], {})
        base = self.base()
        return {
            "comment": {
                "id": str(e["id"]),
                "body": e["body"],
                "is_public": e["public"],
                "author": {
                    "id": str(e["author_id"]),
                    "name": author.get("name"),
                    "is_staff": author.get("role") != "end-user",
                },
                "attachments": [
                    {
                        "id": str(a["id"]),
                        "file_name": a["file_name"],
                        "content_type": a["content_type"],
                        "content_url": attachment_json(base, a)["content_url"],
                    }
                    for a in e["attachments"]
                ],
            }
        }

    def _event_of(self, e: Json) -> tuple[str, Json] | None:
        """The ticket event (type, body) an audit event sends, if it sends one."""
        if e["type"] == "Comment":
            return "ticket.comment_added", self._comment_added(e)
        field = e["field_name"]
        if field in ("status", "priority"):
            change = {"current": to_upper(e["value"]), "previous": to_upper(e["previous_value"])}
            return f"ticket.{field}_changed", change
        if field == "tags":
            before, after = e["previous_value"] or [], e["value"] or []
            added = [t for t in after if t not in before]
            removed = [t for t in before if t not in after]
            return "ticket.tags_changed", {"tags": {"added": added, "removed": removed}}
        return None

    def _events_from_audit(self, ticket: Json, audit: Json) -> list[Json]:
        sequence = uuid.uuid4().hex.upper()
        out = [found for e in audit["events"] if (found := self._event_of(e)) is not None]
        payloads = []
        for position, (event_type, event) in enumerate(out, start=1):
            event = {
                "meta": {"sequence": {"id": sequence, "position": position, "total": len(out)}},
                **event,
            }
            payloads.append(
                self.ticket_event(event_type, ticket, event, actor_id=audit["author_id"])
            )
        return payloads

    def send_events(self, payloads: list[Json]) -> list[Delivery]:
        """POST each payload, signed, to every active webhook subscribed to its type."""
        with self.lock:
            hooks = [
                (h, self.webhook_secrets[h["id"]])
                for h in self.webhooks.values()
                if h["status"] == "active"
            ]
        sent = []
        for payload in payloads:
            for hook, secret in hooks:
                if hook["subscriptions"] and payload["type"] not in hook["subscriptions"]:
                    continue
                sent.append(self._deliver(hook, secret, payload))
        return sent

    def _deliver(self, hook: Json, secret: str, payload: Json) -> Delivery:
        body = json.dumps(payload).encode()
        invocation_id = str(self._id("object"))
        headers = zendesk_webhook_headers(
            secret,
            body,
            webhook_id=hook["id"],
            account_id=self.account_id,
            invocation_id=invocation_id,
        )
        status: int | None = None
        error: str | None = None
        try:
            # Zendesk waits about 12 seconds for a webhook endpoint to answer.
            response = requests.request(
                hook["http_method"], hook["endpoint"], data=body, headers=headers, timeout=12
            )
            status = response.status_code
        except requests.RequestException as exc:
            error = type(exc).__name__
        ticket_id = int(payload["subject"].rsplit(":", 1)[1])
        delivery = Delivery(
            hook["id"], payload["type"], ticket_id, status, error, iso(), invocation_id
        )
        with self.lock:
            self.deliveries.append(delivery)
        logs.event(
            log,
            "sandbox.zendesk.webhook.sent",
            ticket_id=ticket_id,
            type=payload["type"],
            status=status,
            error=error,
        )
        return delivery

    # ------------------------------------------------------------ the agent

    def _act(self, ticket_id: int, update: Json) -> list[Delivery]:
        ticket, audit = self.update_ticket(ticket_id, update, self.agent["id"])
        payloads = self._events_from_audit(ticket, audit)
        for incident, incident_audit in self.solve_incidents(ticket, audit):
            payloads += self._events_from_audit(incident, incident_audit)
        return self.send_events(payloads)

    def agent_reply(
        self, ticket_id: int, body: str, *, status: str | None = None
    ) -> list[Delivery]:
        """An agent answers the requester publicly; the resulting webhooks are sent."""
        update: Json = {"comment": {"body": body, "public": True}}
        if status:
            update["status"] = status
        return self._act(ticket_id, update)

    def agent_note(self, ticket_id: int, body: str) -> list[Delivery]:
        """An agent adds an internal note."""
        return self._act(ticket_id, {"comment": {"body": body, "public": False}})

    def agent_solve(self, ticket_id: int, body: str | None = None) -> list[Delivery]:
        """An agent solves the ticket, optionally with a public reply."""
        update: Json = {"status": "solved", "assignee_id": self.agent["id"]}
        if body:
            update["comment"] = {"body": body, "public": True}
        return self._act(ticket_id, update)

    def agent_tags(
        self, ticket_id: int, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> list[Delivery]:
        """An agent adds and removes tags."""
        return self._act(ticket_id, {"additional_tags": list(add), "remove_tags": list(remove)})
