"""A local Zendesk: the slice of the Support API the hub uses, in memory, served over real HTTP.

Responses follow the shapes of the real API (Zendesk's API reference and the
cassettes zenpy records against real accounts), so the real zenpy client
deserializes them. It can also act as an agent (reply, note, solve, tag) and
send the resulting event webhooks, signed as Zendesk signs them.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import json
import logging
import mimetypes
import re
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

import requests
from flask import Response, g, has_request_context, jsonify, render_template_string, request
from werkzeug.exceptions import HTTPException

from integrations import logs
from integrations.sandbox.server import CONTROL, MinuteWindow, Sandbox
from integrations.sandbox.signing import zendesk_timestamp, zendesk_webhook_headers

log = logging.getLogger(__name__)

PRIORITIES = ("urgent", "high", "normal", "low")
TYPES = ("problem", "incident", "question", "task")
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
CREATE_MANY_MAX = 100
# X-Rate-Limit when no limit is injected: Zendesk Enterprise's requests per minute.
NOMINAL_RATE_LIMIT = 700
EVENT_PREFIX = "zen:event-type:"
TICKET_EVENTS = (
    "ticket.comment_added",
    "ticket.status_changed",
    "ticket.tags_changed",
    "ticket.priority_changed",
)

Json = dict[str, Any]


class Invalid(Exception):
    """A request Zendesk refuses; rendered like its real error bodies."""

    def __init__(self, status: int, body: Json) -> None:
        super().__init__(body.get("description") or body.get("error"))
        self.status = status
        self.body = body


def record_invalid(field: str, description: str, error: str = "InvalidValue") -> Invalid:
    """A 422 shaped like Zendesk's: RecordInvalid with per-field details."""
    return Invalid(
        422,
        {
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {field: [{"description": description, "error": error}]},
        },
    )


def not_found() -> Invalid:
    return Invalid(404, {"error": "RecordNotFound", "description": "Not found"})


def _iso(moment: float | None = None) -> str:
    return zendesk_timestamp(moment)


def _tags(values: Iterable[Any]) -> list[str]:
    """Tags as Zendesk stores them: lower case, no spaces (a space separates two tags), unique."""
    out: list[str] = []
    for value in values:
        for tag in str(value).lower().split():
            if tag not in out:
                out.append(tag)
    return out


@dataclass
class Delivery:
    """One webhook request the sandbox sent, and what came back."""

    webhook_id: str
    type: str
    ticket_id: int
    status: int | None
    error: str | None
    at: str
    invocation_id: str


@dataclass
class StoredFile:
    """The bytes behind an attachment, so the page can link to them."""

    file_name: str
    content_type: str
    data: bytes


class ZendeskSandbox(Sandbox):
    """Tickets, comments, users, groups, uploads, webhooks, triggers: in memory, thread-safe."""

    name = "zendesk"

    def __init__(
        self,
        *,
        email: str = "agent@example.com",
        token: str | None = "sandbox-token",  # noqa: S107 - a local emulator's default
        oauth_token: str | None = None,
        account_id: int = 1000001,
    ) -> None:
        super().__init__()
        self.email = email
        self.token = token
        self.oauth_token = oauth_token
        self.account_id = account_id
        self.window = MinuteWindow()
        self._next_id = {"ticket": 1, "user": 10001, "group": 20001, "object": 900000001}
        self.tickets: dict[int, Json] = {}
        self.comments: dict[int, list[Json]] = {}
        self.audits: dict[int, list[Json]] = {}
        self.users: dict[int, Json] = {}
        self.groups: dict[int, Json] = {}
        self.uploads: dict[str, Json] = {}
        self.files: dict[str, StoredFile] = {}
        self.job_statuses: dict[str, Json] = {}
        self.webhooks: dict[str, Json] = {}
        self.webhook_secrets: dict[str, str] = {}
        self.triggers: dict[int, Json] = {}
        self.deliveries: list[Delivery] = []
        self.agent = self.add_user("Sandbox Agent", email, role="admin")
        self.add_group("Support")
        self._routes()

    # ------------------------------------------------------------ ids and seeds

    def _id(self, kind: str) -> int:
        with self.lock:
            value = self._next_id[kind]
            self._next_id[kind] += 1
            return value

    def base(self) -> str:
        """The URL objects' `url` fields start with."""
        if has_request_context():
            return request.host_url.rstrip("/")
        return self.url if self._server is not None else "http://127.0.0.1"

    def add_user(
        self,
        name: str,
        email: str | None,
        *,
        role: str = "end-user",
        external_id: str | None = None,
    ) -> Json:
        """Add a user (agents, admins, end users); returns the stored user."""
        now = _iso()
        uid = self._id("user")
        user: Json = {
            "id": uid,
            "name": name,
            "email": email.lower() if email else None,
            "created_at": now,
            "updated_at": now,
            "time_zone": "UTC",
            "iana_time_zone": "Etc/UTC",
            "phone": None,
            "shared_phone_number": None,
            "photo": None,
            "locale_id": 1,
            "locale": "en-US",
            "organization_id": None,
            "role": role,
            "verified": role != "end-user",
            "external_id": external_id,
            "tags": [],
            "alias": None,
            "active": True,
            "shared": False,
            "shared_agent": False,
            "last_login_at": None,
            "two_factor_auth_enabled": None,
            "signature": None,
            "details": None,
            "notes": None,
            "role_type": None,
            "custom_role_id": None,
            "moderator": role != "end-user",
            "ticket_restriction": None if role != "end-user" else "requested",
            "only_private_comments": False,
            "restricted_agent": role == "agent",
            "suspended": False,
            "default_group_id": None,
            "report_csv": False,
            "user_fields": {},
        }
        with self.lock:
            self.users[uid] = user
        return user

    def add_group(self, name: str, description: str = "") -> Json:
        """Add a group tickets can be assigned to; returns it."""
        now = _iso()
        gid = self._id("group")
        group: Json = {
            "id": gid,
            "name": name,
            "description": description,
            "default": not self.groups,
            "deleted": False,
            "is_public": True,
            "created_at": now,
            "updated_at": now,
        }
        with self.lock:
            self.groups[gid] = group
        return group

    def user_by_email(self, email: str) -> Json | None:
        """The user with this email (case-insensitive), if any."""
        with self.lock:
            for user in self.users.values():
                if user["email"] and user["email"] == email.lower():
                    return user
        return None

    # ------------------------------------------------------------ rendering

    def _user_json(self, user: Json) -> Json:
        return {"url": f"{self.base()}/api/v2/users/{user['id']}.json", **user}

    def _group_json(self, group: Json) -> Json:
        return {"url": f"{self.base()}/api/v2/groups/{group['id']}.json", **group}

    def ticket_json(self, ticket: Json) -> Json:
        """A ticket as the API returns it."""
        return {"url": f"{self.base()}/api/v2/tickets/{ticket['id']}.json", **ticket}

    def _attachment_json(self, attachment: Json) -> Json:
        base = self.base()
        name = quote(attachment["file_name"])
        content_url = f"{base}/attachments/token/{attachment['_token']}/?name={name}"
        out = {k: v for k, v in attachment.items() if not k.startswith("_")}
        return {
            "url": f"{base}/api/v2/attachments/{attachment['id']}.json",
            **out,
            "content_url": content_url,
            "mapped_content_url": content_url,
        }

    def _comment_json(self, comment: Json) -> Json:
        out = dict(comment)
        out["attachments"] = [self._attachment_json(a) for a in comment["attachments"]]
        return out

    def _audit_json(self, audit: Json) -> Json:
        out = dict(audit)
        out["events"] = [
            {**e, "attachments": [self._attachment_json(a) for a in e["attachments"]]}
            if e["type"] == "Comment"
            else e
            for e in audit["events"]
        ]
        return out

    def _listing(self, key: str, items: list[Json]) -> Json:
        """A collection in the pagination the client asked for: cursor (page[size]) or offset."""
        if any(k.startswith("page[") for k in request.args):
            return {
                key: items,
                "meta": {"has_more": False, "after_cursor": None, "before_cursor": None},
                "links": {"next": None, "prev": None},
            }
        return {key: items, "next_page": None, "previous_page": None, "count": len(items)}

    # ------------------------------------------------------------ tickets

    def _validate(self, data: Json) -> None:
        for field, allowed, label in (
            ("priority", PRIORITIES, "Priority"),
            ("type", TYPES, "Type"),
            ("status", STATUSES, "Status"),
        ):
            value = data.get(field)
            if value is not None and value not in allowed:
                raise record_invalid(field, f"{label}: {value} is not valid")
        problem_id = data.get("problem_id")
        if problem_id is not None:
            problem = self.tickets.get(_int(problem_id) or -1)
            if problem is None:
                raise record_invalid("problem_id", f"Problem: ticket {problem_id} does not exist")
            if problem["type"] != "problem":
                raise record_invalid("problem_id", f"Problem: ticket {problem_id} is not a problem")
        requester = data.get("requester")
        if isinstance(requester, dict):
            email = requester.get("email")
            if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", str(email)):
                raise record_invalid(
                    "requester", f"Requester: Email: {email} is not properly formatted"
                )
        elif data.get("requester_id") is not None and _int(data["requester_id"]) not in self.users:
            raise record_invalid("requester", "Requester: is invalid")

    def _comment(self, raw: Any, author_id: int, audit_id: int) -> Json | None:
        if raw is None:
            return None
        if isinstance(raw, str):
            raw = {"body": raw}
        body = raw.get("body") or ""
        html_body = raw.get("html_body")
        if not body and html_body:
            body = re.sub(r"<[^>]+>", "", html_body)
        if not body.strip():
            return None
        attachments = []
        for token in raw.get("uploads") or []:
            upload = self.uploads.pop(str(token), None)
            if upload is not None:
                attachments.extend(upload["_attachments"])
        return {
            "id": self._id("object"),
            "type": "Comment",
            "author_id": _int(raw.get("author_id")) or author_id,
            "body": body,
            "html_body": html_body or f'<div class="zd-comment"><p>{html.escape(body)}</p></div>',
            "plain_body": body,
            "public": bool(raw.get("public", True)),
            "attachments": attachments,
            "audit_id": audit_id,
            "via": _via(),
            "created_at": _iso(),
            "metadata": {"system": {"client": "sandbox", "ip_address": "127.0.0.1"}, "custom": {}},
        }

    def _requester_id(self, data: Json, author_id: int) -> int:
        requester = data.get("requester")
        if isinstance(requester, dict) and requester.get("email"):
            found = self.user_by_email(requester["email"])
            if found is None:
                name = requester.get("name") or requester["email"].split("@")[0]
                found = self.add_user(name, requester["email"])
            return int(found["id"])
        return _int(data.get("requester_id")) or author_id

    def create_ticket(self, data: Json, author_id: int | None = None) -> tuple[Json, Json]:
        """Create a ticket from an API payload; returns (ticket, audit) or raises Invalid."""
        author_id = author_id or self.agent["id"]
        with self.lock:
            self._validate(data)
            audit_id = self._id("object")
            raw_comment = data.get("comment")
            if raw_comment is None and data.get("description"):
                raw_comment = {"body": data["description"]}
            comment = self._comment(raw_comment, author_id, audit_id)
            if comment is None:
                raise record_invalid("description", "Description: cannot be blank", "BlankValue")
            tid = self._id("ticket")
            now = _iso()
            custom_fields = [
                {"id": _int(f.get("id")), "value": f.get("value")}
                for f in data.get("custom_fields") or []
            ]
            assignee_id = _int(data.get("assignee_id"))
            ticket: Json = {
                "id": tid,
                "external_id": data.get("external_id"),
                "via": _via(),
                "created_at": now,
                "updated_at": now,
                "generated_timestamp": int(time.time()),
                "type": data.get("type"),
                "subject": data.get("subject"),
                "raw_subject": data.get("subject"),
                "description": comment["body"],
                "priority": data.get("priority"),
                "status": data.get("status") or ("open" if assignee_id else "new"),
                "recipient": None,
                "requester_id": self._requester_id(data, author_id),
                "submitter_id": author_id,
                "assignee_id": assignee_id,
                "organization_id": None,
                "group_id": _int(data.get("group_id")),
                "collaborator_ids": [],
                "follower_ids": [],
                "email_cc_ids": [],
                "forum_topic_id": None,
                "problem_id": _int(data.get("problem_id")),
                "has_incidents": False,
                "is_public": comment["public"],
                "due_at": data.get("due_at"),
                "tags": _tags(data.get("tags") or []),
                "custom_fields": custom_fields,
                "satisfaction_rating": None,
                "sharing_agreement_ids": [],
                "custom_status_id": None,
                "fields": custom_fields,
                "followup_ids": [],
                "ticket_form_id": None,
                "brand_id": None,
                "allow_channelback": False,
                "allow_attachments": True,
                "from_messaging_channel": False,
            }
            events: list[Json] = [self._comment_event(comment)]
            for field in ("subject", "status", "priority", "type", "requester_id", "group_id"):
                if ticket[field] is not None:
                    events.append(_create_event(self._id("object"), field, ticket[field]))
            if ticket["tags"]:
                events.append(_create_event(self._id("object"), "tags", ticket["tags"]))
            audit = self._audit(audit_id, tid, author_id, events)
            self.tickets[tid] = ticket
            self.comments[tid] = [comment]
            self.audits[tid] = [audit]
            if ticket["problem_id"]:
                self.tickets[ticket["problem_id"]]["has_incidents"] = True
            logs.event(log, "sandbox.zendesk.ticket.created", ticket_id=tid)
            return ticket, audit

    def update_ticket(
        self, ticket_id: int, data: Json, author_id: int | None = None
    ) -> tuple[Json, Json]:
        """Apply an API update payload; returns (ticket, audit) or raises Invalid."""
        author_id = author_id or self.agent["id"]
        with self.lock:
            ticket = self.tickets.get(ticket_id)
            if ticket is None:
                raise not_found()
            if ticket["status"] == "closed":
                raise record_invalid("status", "Status: closed prevents ticket update")
            self._validate(data)
            audit_id = self._id("object")
            comment = self._comment(data.get("comment"), author_id, audit_id)
            changes: dict[str, Any] = {}
            for field in (
                "subject",
                "priority",
                "type",
                "status",
                "problem_id",
                "group_id",
                "assignee_id",
                "external_id",
                "due_at",
            ):
                if field in data:
                    value = data[field]
                    if field.endswith("_id") and field != "external_id":
                        value = _int(value)
                    changes[field] = value
            if "requester" in data or "requester_id" in data:
                changes["requester_id"] = self._requester_id(data, author_id)
            tags = list(ticket["tags"])
            if "tags" in data:
                tags = _tags(data["tags"] or [])
            tags = _tags([*tags, *(data.get("additional_tags") or [])])
            removed = set(_tags(data.get("remove_tags") or []))
            tags = [t for t in tags if t not in removed]
            if tags != ticket["tags"]:
                changes["tags"] = tags
            if "custom_fields" in data:
                merged = {f["id"]: f for f in ticket["custom_fields"]}
                for f in data["custom_fields"] or []:
                    merged[_int(f.get("id"))] = {"id": _int(f.get("id")), "value": f.get("value")}
                changes["custom_fields"] = list(merged.values())
            # An agent's public reply opens a new ticket, as in Zendesk's agent workspace.
            is_agent = self.users.get(author_id, {}).get("role") != "end-user"
            if comment and comment["public"] and is_agent and ticket["status"] == "new":
                changes.setdefault("status", "open")
            events: list[Json] = [self._comment_event(comment)] if comment else []
            for field, value in changes.items():
                previous = ticket.get(field)
                if value == previous:
                    continue
                if field not in ("custom_fields",):
                    events.append(
                        {
                            "id": self._id("object"),
                            "type": "Change",
                            "field_name": field,
                            "value": value,
                            "previous_value": previous,
                        }
                    )
                ticket[field] = value
            if "custom_fields" in changes:
                ticket["fields"] = ticket["custom_fields"]
            if "subject" in changes:
                ticket["raw_subject"] = ticket["subject"]
            if ticket["problem_id"] and ticket["problem_id"] in self.tickets:
                self.tickets[ticket["problem_id"]]["has_incidents"] = True
            ticket["updated_at"] = _iso()
            audit = self._audit(audit_id, ticket_id, author_id, events)
            if comment:
                self.comments[ticket_id].append(comment)
            self.audits[ticket_id].append(audit)
            logs.event(log, "sandbox.zendesk.ticket.updated", ticket_id=ticket_id)
            return ticket, audit

    def _comment_event(self, comment: Json) -> Json:
        keys = ("id", "type", "author_id", "body", "html_body", "plain_body", "public")
        return {
            **{k: comment[k] for k in keys},
            "attachments": comment["attachments"],
            "audit_id": comment["audit_id"],
        }

    def _audit(self, audit_id: int, ticket_id: int, author_id: int, events: list[Json]) -> Json:
        return {
            "id": audit_id,
            "ticket_id": ticket_id,
            "created_at": _iso(),
            "author_id": author_id,
            "metadata": {"system": {"client": "sandbox", "ip_address": "127.0.0.1"}, "custom": {}},
            "via": _via(),
            "events": events,
        }

    def find_tickets(self, external_id: str | None = None) -> list[Json]:
        """Tickets, oldest first; only those with `external_id` when given."""
        with self.lock:
            return [
                t
                for t in self.tickets.values()
                if external_id is None or t["external_id"] == external_id
            ]

    # ------------------------------------------------------------ uploads

    def upload(
        self, file_name: str, data: bytes, content_type: str | None = None, token: str | None = None
    ) -> Json:
        """Store an upload (adding to `token`'s when given); returns the upload with its token."""
        if not content_type or content_type == "application/octet-stream":
            content_type = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        file_token = secrets.token_urlsafe(18)
        attachment: Json = {
            "id": self._id("object"),
            "file_name": file_name,
            "content_type": content_type,
            "size": len(data),
            "width": None,
            "height": None,
            "inline": False,
            "deleted": False,
            "malware_access_override": False,
            "malware_scan_result": "not_scanned",
            "thumbnails": [],
            "_token": file_token,
        }
        with self.lock:
            self.files[file_token] = StoredFile(file_name, content_type, data)
            upload = self.uploads.get(token or "")
            if upload is None:
                upload = {
                    "token": secrets.token_urlsafe(18),
                    # Unattached upload tokens expire after 60 minutes (Zendesk's uploads docs).
                    "expires_at": _iso(time.time() + 3600),
                    "_attachments": [],
                }
                self.uploads[upload["token"]] = upload
            upload["_attachments"].append(attachment)
            return upload

    def _upload_json(self, upload: Json) -> Json:
        attachments = [self._attachment_json(a) for a in upload["_attachments"]]
        return {
            "token": upload["token"],
            "expires_at": upload["expires_at"],
            "attachments": attachments,
            "attachment": attachments[-1],
        }

    # ------------------------------------------------------------ webhooks and the agent

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
        now = _iso()
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

    def ticket_event(
        self, event_type: str, ticket: Json, event: Json, *, actor_id: int | None = None
    ) -> Json:
        """An event-subscribed webhook payload for `ticket` (Zendesk's "Ticket events" schema)."""
        detail = {
            "actor_id": _str(actor_id or self.agent["id"]),
            "assignee_id": _str(ticket["assignee_id"]),
            "brand_id": _str(ticket["brand_id"]),
            "created_at": ticket["created_at"],
            "custom_status": _str(ticket["custom_status_id"]),
            "description": ticket["description"],
            "external_id": ticket["external_id"],
            "form_id": _str(ticket["ticket_form_id"]),
            "group_id": _str(ticket["group_id"]),
            "id": str(ticket["id"]),
            "is_public": ticket["is_public"],
            "organization_id": _str(ticket["organization_id"]),
            "priority": _upper(ticket["priority"]),
            "requester_id": _str(ticket["requester_id"]),
            "status": _upper(ticket["status"]),
            "subject": ticket["subject"],
            "submitter_id": _str(ticket["submitter_id"]),
            "tags": list(ticket["tags"]),
            "type": _upper(ticket["type"]),
            "updated_at": ticket["updated_at"],
            "via": {"channel": "web_service"},
        }
        name = event_type if event_type.startswith(EVENT_PREFIX) else EVENT_PREFIX + event_type
        return {
            "type": name,
            "account_id": self.account_id,
            "id": str(uuid.uuid4()),
            "time": _iso(),
            "zendesk_event_version": "2022-11-06",
            "subject": f"zen:ticket:{ticket['id']}",
            "detail": detail,
            "event": event,
        }

    def _events_from_audit(self, ticket: Json, audit: Json) -> list[Json]:
        sequence = uuid.uuid4().hex.upper()
        out: list[tuple[str, Json]] = []
        for e in audit["events"]:
            if e["type"] == "Comment":
                author = self.users.get(e["author_id"], {})
                out.append(
                    (
                        "ticket.comment_added",
                        {
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
                                        "content_url": self._attachment_json(a)["content_url"],
                                    }
                                    for a in e["attachments"]
                                ],
                            }
                        },
                    )
                )
            elif e["field_name"] == "status":
                out.append(
                    (
                        "ticket.status_changed",
                        {"current": _upper(e["value"]), "previous": _upper(e["previous_value"])},
                    )
                )
            elif e["field_name"] == "priority":
                out.append(
                    (
                        "ticket.priority_changed",
                        {"current": _upper(e["value"]), "previous": _upper(e["previous_value"])},
                    )
                )
            elif e["field_name"] == "tags":
                before, after = e["previous_value"] or [], e["value"] or []
                added = [t for t in after if t not in before]
                removed = [t for t in before if t not in after]
                out.append(("ticket.tags_changed", {"tags": {"added": added, "removed": removed}}))
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
            hook["id"], payload["type"], ticket_id, status, error, _iso(), invocation_id
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

    def _act(self, ticket_id: int, update: Json) -> list[Delivery]:
        ticket, audit = self.update_ticket(ticket_id, update, self.agent["id"])
        payloads = self._events_from_audit(ticket, audit)
        for incident, incident_audit in self.solve_incidents(ticket, audit):
            payloads += self._events_from_audit(incident, incident_audit)
        return self.send_events(payloads)

    def solve_incidents(self, ticket: Json, audit: Json) -> list[tuple[Json, Json]]:
        """After `audit` solved a problem ticket: solve its open incidents, as Zendesk does.

        Zendesk solves every incident linked to a problem when the problem is
        solved, adding the problem's public comment of that update to each.
        """
        solved = any(
            e["type"] == "Change" and e["field_name"] == "status" and e["value"] == "solved"
            for e in audit["events"]
        )
        if ticket["type"] != "problem" or not solved:
            return []
        comment = next((e for e in audit["events"] if e["type"] == "Comment" and e["public"]), None)
        update: Json = {"status": "solved"}
        if comment is not None:
            update["comment"] = {"body": comment["body"], "public": True}
        with self.lock:
            incidents = [
                t["id"]
                for t in self.tickets.values()
                if t["problem_id"] == ticket["id"] and t["status"] not in ("solved", "closed")
            ]
        return [self.update_ticket(tid, update, audit["author_id"]) for tid in incidents]

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

    # ------------------------------------------------------------ HTTP

    def _authenticated(self) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic" and self.token:
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            user_ok = hmac.compare_digest(user.lower(), f"{self.email.lower()}/token")
            return hmac.compare_digest(password, self.token) and user_ok
        if scheme.lower() == "bearer" and self.oauth_token:
            return hmac.compare_digest(value, self.oauth_token)
        return False

    def _guard(self) -> Response | None:
        """Faults, rate limit and authentication, in the order a client meets them."""
        path = request.path
        if path.startswith(CONTROL) or path == "/":
            return None
        with self.lock:
            faults = self.faults
            down, delay, limit = faults.down, faults.delay, faults.rate_limit
        if down:
            return Response(
                "<html><body><h1>503 Service Unavailable</h1>"
                "No server is available to handle this request.</body></html>",
                503,
                content_type="text/html",
            )
        if delay:
            time.sleep(delay)
        now = self.now()
        with self.lock:
            used = self.window.used(now)
            nominal = limit or NOMINAL_RATE_LIMIT
            if limit is not None and used >= limit:
                retry_after = self.window.retry_after(now)
                g.rate = (nominal, 0)
                response = jsonify(
                    error="APIRateLimitExceeded",
                    description="Number of allowed API requests per minute exceeded",
                )
                response.status_code = 429
                response.headers["Retry-After"] = str(retry_after)
                return response
            self.window.add(now)
            g.rate = (nominal, max(0, nominal - used - 1))
        status = self.injected_error()
        if status is not None:
            response = jsonify(error="InternalError", description="Injected by the sandbox")
            response.status_code = status
            return response
        if path.startswith("/api/") and not self._authenticated():
            response = jsonify(error="Couldn't authenticate you")
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Basic realm="Web Password"'
            return response
        return None

    def _after(self, response: Response) -> Response:
        path = request.path
        if path.startswith(CONTROL) or path == "/":
            return response
        nominal, remaining = g.get("rate", (NOMINAL_RATE_LIMIT, NOMINAL_RATE_LIMIT))
        response.headers["X-Rate-Limit"] = str(nominal)
        response.headers["X-Rate-Limit-Remaining"] = str(remaining)
        rule = request.url_rule.rule if request.url_rule else "unmatched"
        route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)
        self.count(f"{request.method} {route}", response.status_code)
        return response

    def _routes(self) -> None:
        app = self.app
        app.before_request(self._guard)
        app.after_request(self._after)

        @app.errorhandler(Invalid)
        def invalid(exc: Invalid) -> tuple[Response, int]:
            return jsonify(exc.body), exc.status

        @app.errorhandler(HTTPException)
        def http_error(exc: HTTPException) -> tuple[Response, int]:
            status = exc.code or 500
            if status == 404:
                return jsonify(error="InvalidEndpoint", description="Not found"), 404
            return jsonify(error=exc.name, description=exc.description), status

        def body(key: str) -> Json:
            data = request.get_json(silent=True)
            if not isinstance(data, dict) or not isinstance(data.get(key), dict):
                raise Invalid(
                    400, {"error": "InvalidValue", "description": f"Expected a JSON '{key}' object"}
                )
            return data[key]

        def ticket_or_404(ticket_id: int) -> Json:
            with self.lock:
                ticket = self.tickets.get(ticket_id)
            if ticket is None:
                raise not_found()
            return ticket

        @app.post("/api/v2/tickets.json")
        def create_ticket() -> tuple[Response, int]:
            ticket, audit = self.create_ticket(body("ticket"), self._caller_id())
            response = jsonify(ticket=self.ticket_json(ticket), audit=self._audit_json(audit))
            response.headers["Location"] = f"{self.base()}/api/v2/tickets/{ticket['id']}.json"
            return response, 201

        @app.get("/api/v2/tickets.json")
        def list_tickets() -> Response:
            found = self.find_tickets(request.args.get("external_id"))
            return jsonify(self._listing("tickets", [self.ticket_json(t) for t in found]))

        @app.get("/api/v2/tickets/<int:ticket_id>.json")
        def show_ticket(ticket_id: int) -> Response:
            return jsonify(ticket=self.ticket_json(ticket_or_404(ticket_id)))

        @app.put("/api/v2/tickets/<int:ticket_id>.json")
        def update_ticket(ticket_id: int) -> Response:
            ticket, audit = self.update_ticket(ticket_id, body("ticket"), self._caller_id())
            self.solve_incidents(ticket, audit)
            return jsonify(ticket=self.ticket_json(ticket), audit=self._audit_json(audit))

        @app.get("/api/v2/tickets/<int:ticket_id>/comments.json")
        def comments(ticket_id: int) -> Response:
            ticket_or_404(ticket_id)
            with self.lock:
                items = [self._comment_json(c) for c in self.comments[ticket_id]]
            return jsonify(self._listing("comments", items))

        @app.get("/api/v2/tickets/<int:ticket_id>/incidents.json")
        def incidents(ticket_id: int) -> Response:
            ticket_or_404(ticket_id)
            with self.lock:
                items = [
                    self.ticket_json(t)
                    for t in self.tickets.values()
                    if t["problem_id"] == ticket_id
                ]
            return jsonify(self._listing("tickets", items))

        @app.post("/api/v2/tickets/create_many.json")
        def create_many() -> Response:
            data = request.get_json(silent=True) or {}
            items = data.get("tickets")
            if not isinstance(items, list):
                raise Invalid(400, {"error": "InvalidValue", "description": "Expected 'tickets'"})
            if len(items) > CREATE_MANY_MAX:
                raise Invalid(
                    400,
                    {
                        "error": "TooManyValues",
                        "description": f"Too many values. Max {CREATE_MANY_MAX} allowed.",
                    },
                )
            results: list[Json] = []
            for index, item in enumerate(items):
                try:
                    ticket, _ = self.create_ticket(item, self._caller_id())
                    results.append({"index": index, "id": ticket["id"]})
                except Invalid as exc:
                    results.append(
                        {
                            "index": index,
                            "error": exc.body.get("error"),
                            "details": json.dumps(exc.body.get("details")),
                        }
                    )
            job_id = uuid.uuid4().hex
            job = {
                "id": job_id,
                "total": len(items),
                "progress": len(items),
                "status": "completed",
                "message": "Completed at "
                + time.strftime("%Y-%m-%d %H:%M:%S +0000", time.gmtime()),
                "results": results,
            }
            with self.lock:
                self.job_statuses[job_id] = job
            # The work is done at once; the first answer still says "queued", as Zendesk's does.
            queued = {**job, "total": None, "progress": None, "status": "queued"}
            queued.update(message=None, results=None)
            return jsonify(job_status=self._job_json(queued))

        @app.get("/api/v2/job_statuses/<job_id>.json")
        def job_status(job_id: str) -> Response:
            with self.lock:
                job = self.job_statuses.get(job_id)
            if job is None:
                raise not_found()
            return jsonify(job_status=self._job_json(job))

        @app.post("/api/v2/users/create_or_update.json")
        def create_or_update_user() -> tuple[Response, int]:
            data = body("user")
            with self.lock:
                user = None
                if data.get("email"):
                    user = self.user_by_email(data["email"])
                if user is None and data.get("external_id"):
                    user = next(
                        (
                            u
                            for u in self.users.values()
                            if u["external_id"] == str(data["external_id"])
                        ),
                        None,
                    )
                status = 200
                if user is None:
                    if not data.get("name"):
                        raise record_invalid("name", "Name: is too short (minimum one character)")
                    user = self.add_user(
                        data["name"],
                        data.get("email"),
                        role=data.get("role", "end-user"),
                        external_id=_str(data.get("external_id")),
                    )
                    status = 201
                for field in ("name", "phone", "locale", "time_zone", "notes", "details"):
                    if data.get(field) is not None:
                        user[field] = data[field]
                if data.get("external_id") is not None:
                    user["external_id"] = str(data["external_id"])
                user["updated_at"] = _iso()
            return jsonify(user=self._user_json(user)), status

        @app.get("/api/v2/users/search.json")
        def search_users() -> Response:
            query = (request.args.get("query") or "").strip().lower()
            if query.startswith("email:"):
                query = query.removeprefix("email:")
            external_id = request.args.get("external_id")
            with self.lock:
                found = [
                    u
                    for u in self.users.values()
                    if (external_id is not None and u["external_id"] == external_id)
                    or (query and (query == (u["email"] or "") or query in u["name"].lower()))
                ]
            return jsonify(self._listing("users", [self._user_json(u) for u in found]))

        @app.get("/api/v2/users/me.json")
        def me() -> Response:
            return jsonify(user=self._user_json(self.agent))

        @app.get("/api/v2/users/<int:user_id>.json")
        def show_user(user_id: int) -> Response:
            with self.lock:
                user = self.users.get(user_id)
            if user is None:
                raise not_found()
            return jsonify(user=self._user_json(user))

        @app.get("/api/v2/groups.json")
        def list_groups() -> Response:
            with self.lock:
                items = [self._group_json(gr) for gr in self.groups.values()]
            return jsonify(self._listing("groups", items))

        @app.post("/api/v2/groups.json")
        def create_group() -> tuple[Response, int]:
            data = body("group")
            if not data.get("name"):
                raise record_invalid("name", "Name: cannot be blank", "BlankValue")
            group = self.add_group(data["name"], data.get("description") or "")
            return jsonify(group=self._group_json(group)), 201

        @app.get("/api/v2/groups/<int:group_id>.json")
        def show_group(group_id: int) -> Response:
            with self.lock:
                group = self.groups.get(group_id)
            if group is None:
                raise not_found()
            return jsonify(group=self._group_json(group))

        @app.post("/api/v2/uploads.json")
        def upload() -> tuple[Response, int]:
            file_name = request.args.get("filename")
            if not file_name:
                raise Invalid(400, {"error": "InvalidValue", "description": "filename is required"})
            stored = self.upload(
                file_name, request.get_data(), request.content_type, request.args.get("token")
            )
            return jsonify(upload=self._upload_json(stored)), 201

        @app.get("/attachments/token/<file_token>/")
        def attachment_bytes(file_token: str) -> Response:
            with self.lock:
                stored = self.files.get(file_token)
            if stored is None:
                raise not_found()
            return Response(stored.data, content_type=stored.content_type)

        @app.post("/api/v2/webhooks")
        def create_webhook() -> tuple[Response, int]:
            return jsonify(webhook=self.create_webhook(body("webhook"))), 201

        @app.get("/api/v2/webhooks")
        def list_webhooks() -> Response:
            with self.lock:
                items = list(self.webhooks.values())
            return jsonify(
                webhooks=items,
                meta={"has_more": False, "after_cursor": None, "before_cursor": None},
                links={"next": None, "prev": None},
            )

        @app.get("/api/v2/webhooks/<webhook_id>")
        def show_webhook(webhook_id: str) -> Response:
            with self.lock:
                hook = self.webhooks.get(webhook_id)
            if hook is None:
                raise not_found()
            return jsonify(webhook=hook)

        @app.get("/api/v2/webhooks/<webhook_id>/signing_secret")
        def signing_secret(webhook_id: str) -> Response:
            with self.lock:
                secret = self.webhook_secrets.get(webhook_id)
            if secret is None:
                raise not_found()
            return jsonify(signing_secret={"algorithm": "SHA256", "secret": secret})

        @app.post("/api/v2/triggers.json")
        def create_trigger() -> tuple[Response, int]:
            data = body("trigger")
            if not data.get("title"):
                raise record_invalid("title", "Title: cannot be blank", "BlankValue")
            if not data.get("actions"):
                raise record_invalid("actions", "Actions: cannot be blank", "BlankValue")
            now = _iso()
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
            return jsonify(trigger=trigger), 201

        @app.get("/api/v2/triggers.json")
        def list_triggers() -> Response:
            with self.lock:
                items = list(self.triggers.values())
            return jsonify(self._listing("triggers", items))

        self._control_routes()

        @app.get("/")
        def page() -> str:
            return render(None)

        # Where the hub's links point (the agent interface, the Help Center
        # request a reporter opens): the one ticket.
        @app.get("/agent/tickets/<int:ticket_id>")
        @app.get("/hc/requests/<int:ticket_id>")
        def agent_ticket(ticket_id: int) -> str:
            ticket_or_404(ticket_id)
            return render(ticket_id)

        def render(only: int | None) -> str:
            with self.lock:
                tickets = sorted(
                    (t for t in self.tickets.values() if only is None or t["id"] == only),
                    key=lambda t: -t["id"],
                )
                rows = [
                    {
                        "ticket": t,
                        "requester": self.users.get(t["requester_id"]),
                        "group": self.groups.get(t["group_id"] or -1),
                        "comments": [
                            {
                                "comment": c,
                                "author": self.users.get(c["author_id"]),
                                "attachments": [self._attachment_json(a) for a in c["attachments"]],
                            }
                            for c in self.comments[t["id"]]
                        ],
                    }
                    for t in tickets
                ]
                deliveries = list(reversed(self.deliveries[-50:]))
            return render_template_string(PAGE, rows=rows, deliveries=deliveries)

    def _caller_id(self) -> int:
        return int(self.agent["id"])

    def _job_json(self, job: Json) -> Json:
        return {"url": f"{self.base()}/api/v2/job_statuses/{job['id']}.json", **job}

    def set_faults(self, **changes: Any) -> None:
        """Change the faults; a new rate limit starts from an empty minute."""
        super().set_faults(**changes)
        if "rate_limit" in changes:
            with self.lock:
                self.window.clear()

    def _control_routes(self) -> None:
        app = self.app

        @app.post(f"{CONTROL}/reset")
        def reset() -> Response:
            self.clear_faults()
            self.reset_stats()
            with self.lock:
                self.window.clear()
            return jsonify(ok=True)

        @app.delete(f"{CONTROL}/stats")
        def reset_stats() -> Response:
            self.reset_stats()
            return jsonify(self.stats())

        @app.post(f"{CONTROL}/webhook")
        def webhook_target() -> Response:
            data = request.get_json(force=True) or {}
            return jsonify(webhook_id=self.set_webhook_target(data["url"], data["secret"]))

        @app.get(f"{CONTROL}/deliveries")
        def deliveries() -> Response:
            with self.lock:
                return jsonify(deliveries=[asdict(d) for d in self.deliveries])

        @app.get(f"{CONTROL}/tickets")
        def dump_tickets() -> Response:
            with self.lock:
                items = [
                    {
                        **self.ticket_json(t),
                        "comments": [self._comment_json(c) for c in self.comments[t["id"]]],
                    }
                    for t in self.tickets.values()
                ]
            return jsonify(tickets=items)

        @app.get(f"{CONTROL}/tickets/<int:ticket_id>/event/<event_type>")
        def event_for(ticket_id: int, event_type: str) -> Response:
            with self.lock:
                ticket = self.tickets.get(ticket_id)
            if ticket is None:
                raise not_found()
            return jsonify(self.ticket_event(event_type, ticket, {}))

        @app.post(f"{CONTROL}/tickets/<int:ticket_id>/<action>")
        def act(ticket_id: int, action: str) -> Response | tuple[Response, int]:
            data = request.get_json(silent=True) or {}
            if action == "reply":
                sent = self.agent_reply(ticket_id, data["body"], status=data.get("status"))
            elif action == "note":
                sent = self.agent_note(ticket_id, data["body"])
            elif action == "solve":
                sent = self.agent_solve(ticket_id, data.get("body"))
            elif action == "tags":
                sent = self.agent_tags(ticket_id, data.get("add", ()), data.get("remove", ()))
            else:
                return jsonify(error=f"unknown action {action!r}: reply, note, solve, tags"), 404
            with self.lock:
                ticket = self.ticket_json(self.tickets[ticket_id])
            return jsonify(ticket=ticket, deliveries=[asdict(d) for d in sent])


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _upper(value: Any) -> str | None:
    # Ticket event payloads spell enumerations in capitals ("OPEN", "LOW", "TASK").
    return None if value is None else str(value).upper()


def _via() -> Json:
    return {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}}


def _create_event(event_id: int, field: str, value: Any) -> Json:
    return {"id": event_id, "type": "Create", "field_name": field, "value": value}


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Zendesk sandbox</title>
<meta http-equiv="refresh" content="5">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:60em;color:#222}
.ticket{border:1px solid #ccc;border-radius:6px;padding:.8em 1em;margin:1em 0}
.meta{color:#555}.tag{background:#eef;border-radius:3px;padding:0 .3em;margin-right:.3em}
.comment{border-left:3px solid #8b8;padding:.2em .8em;margin:.5em 0;white-space:pre-wrap}
.internal{border-color:#db6;background:#fff8e6}
</style></head><body>
<h1>Zendesk sandbox</h1>
<p class="meta">{{ rows|length }} ticket(s), newest first. This page refreshes every 5 seconds.</p>
{% for row in rows %}{% set t = row.ticket %}
<div class="ticket" id="ticket-{{ t.id }}">
<h2>#{{ t.id }} {{ t.subject or "(no subject)" }}</h2>
<div class="meta">
status <b>{{ t.status }}</b> · priority {{ t.priority or "-" }} · type {{ t.type or "-" }}
· group {{ row.group.name if row.group else "-" }}
{% if t.problem_id %}· incident of
<a href="#ticket-{{ t.problem_id }}">#{{ t.problem_id }}</a>{% endif %}
{% if t.external_id %}· external id <code>{{ t.external_id }}</code>{% endif %}
</div>
<div class="meta">requester {% if row.requester %}{{ row.requester.name }}
&lt;{{ row.requester.email or "no email" }}&gt;{% else %}-{% endif %}</div>
<div>{% for tag in t.tags %}<span class="tag">{{ tag }}</span>{% endfor %}</div>
{% for c in row.comments %}
<div class="comment{% if not c.comment.public %} internal{% endif %}">
<div class="meta">{{ c.author.name if c.author else c.comment.author_id }} ·
{{ "public" if c.comment.public else "internal note" }} · {{ c.comment.created_at }}</div>
{{ c.comment.body }}
{% for a in c.attachments %}<div>📎 <a href="{{ a.content_url }}">{{ a.file_name }}</a>
({{ a.content_type }}, {{ a.size }} bytes)</div>{% endfor %}
</div>
{% endfor %}
</div>
{% else %}<p>No tickets yet.</p>{% endfor %}
<h2>Webhooks sent</h2>
{% for d in deliveries %}<div class="meta">{{ d.at }} {{ d.type }} ticket #{{ d.ticket_id }} →
{{ d.status or d.error }}</div>{% else %}<p class="meta">None yet.</p>{% endfor %}
</body></html>
"""
