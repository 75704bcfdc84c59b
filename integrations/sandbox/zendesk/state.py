"""The emulated account in memory: users, groups, tickets with their comments and audits, uploads.

Every change takes the sandbox's lock: the werkzeug server answers each request on a thread.
"""

from __future__ import annotations

import mimetypes
import re
import secrets
import time
from typing import Any

from flask import has_request_context, request

from integrations import logs
from integrations.sandbox.server import Sandbox
from integrations.sandbox.zendesk.records import (
    PRIORITIES,
    STATUSES,
    TYPES,
    Delivery,
    Json,
    StoredFile,
    comment_event,
    create_event,
    iso,
    log,
    new_audit,
    new_comment,
    new_ticket,
    new_user,
    not_found,
    record_invalid,
    tag_list,
    to_int,
)

UPDATABLE = (
    "subject",
    "priority",
    "type",
    "status",
    "problem_id",
    "group_id",
    "assignee_id",
    "external_id",
    "due_at",
)


class ZendeskAccount(Sandbox):
    """One emulated account's records, and the changes the API and the agent make to them."""

    def __init__(self, *, email: str, account_id: int) -> None:
        super().__init__()
        self.email = email
        self.account_id = account_id
        self._next_id = {
            "ticket": 1,
            "user": 10001,
            "group": 20001,
            "object": 900000001,
            "organization": 360001,
        }
        self.tickets: dict[int, Json] = {}
        self.comments: dict[int, list[Json]] = {}
        self.audits: dict[int, list[Json]] = {}
        self.users: dict[int, Json] = {}
        self.groups: dict[int, Json] = {}
        # Organizations (Slack Connect customers' companies); a ticket joins its requester's.
        self.organizations: dict[int, Json] = {}
        # Custom ticket fields, by id (rules name them by id: `custom_fields` in a rules file).
        self.ticket_fields: dict[int, Json] = {}
        self.uploads: dict[str, Json] = {}
        self.files: dict[str, StoredFile] = {}
        self.job_statuses: dict[str, Json] = {}
        self.webhooks: dict[str, Json] = {}
        self.webhook_secrets: dict[str, str] = {}
        self.triggers: dict[int, Json] = {}
        self.deliveries: list[Delivery] = []
        self.agent = self.add_user("Sandbox Agent", email, role="admin")
        self.add_group("Support")

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
        now = iso()
        user = new_user(self._id("user"), name, email, role, external_id, now)
        with self.lock:
            self.users[user["id"]] = user
        return user

    def add_group(self, name: str, description: str = "") -> Json:
        """Add a group tickets can be assigned to; returns it."""
        now = iso()
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

    def add_organization(self, name: str, external_id: str | None = None) -> Json:
        """Add an organization (as an admin or another integration would); returns it."""
        now = iso()
        organization: Json = {
            "id": self._id("organization"),
            "name": name,
            "external_id": external_id,
            "tags": [],
            "created_at": now,
            "updated_at": now,
        }
        with self.lock:
            self.organizations[organization["id"]] = organization
        return organization

    def organizations_named(self, name: str) -> list[Json]:
        """The organizations whose name is `name`, ignoring case (Zendesk's exact-name match)."""
        folded = name.casefold()
        with self.lock:
            return [o for o in self.organizations.values() if o["name"].casefold() == folded]

    def add_ticket_field(self, title: str, field_id: int | None = None, kind: str = "text") -> Json:
        """Add a custom ticket field (with the id a rules file names, when given); returns it."""
        now = iso()
        fid = field_id or self._id("object")
        field: Json = {
            "id": fid,
            "type": kind,
            "title": title,
            "raw_title": title,
            "description": "",
            "active": True,
            "required": False,
            "removable": True,
            "created_at": now,
            "updated_at": now,
        }
        with self.lock:
            self.ticket_fields[fid] = field
        return field

    def user_by_email(self, email: str) -> Json | None:
        """The user with this email (case-insensitive), if any."""
        with self.lock:
            for user in self.users.values():
                if user["email"] and user["email"] == email.lower():
                    return user
        return None

    # ------------------------------------------------------------ tickets

    def ticket_json(self, ticket: Json) -> Json:
        """A ticket as the API returns it."""
        return {"url": f"{self.base()}/api/v2/tickets/{ticket['id']}.json", **ticket}

    def ticket_or_404(self, ticket_id: int) -> Json:
        """The stored ticket, or Zendesk's 404 when there is none."""
        with self.lock:
            ticket = self.tickets.get(ticket_id)
        if ticket is None:
            raise not_found()
        return ticket

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
            problem = self.tickets.get(to_int(problem_id) or -1)
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
        elif (
            data.get("requester_id") is not None and to_int(data["requester_id"]) not in self.users
        ):
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
        return new_comment(self._id("object"), raw, body, attachments, author_id, audit_id)

    def _requester_id(self, data: Json, author_id: int) -> int:
        requester = data.get("requester")
        if isinstance(requester, dict) and requester.get("email"):
            found = self.user_by_email(requester["email"])
            if found is None:
                name = requester.get("name") or requester["email"].split("@")[0]
                found = self.add_user(name, requester["email"])
            return int(found["id"])
        return to_int(data.get("requester_id")) or author_id

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
            now = iso()
            requester_id = self._requester_id(data, author_id)
            ticket = new_ticket(tid, data, comment, requester_id, author_id, now)
            # As Zendesk does: a ticket without one joins its requester's organization.
            ticket["organization_id"] = to_int(data.get("organization_id")) or (
                self.users.get(requester_id) or {}
            ).get("organization_id")
            events: list[Json] = [comment_event(comment)]
            for field in ("subject", "status", "priority", "type", "requester_id", "group_id"):
                if ticket[field] is not None:
                    events.append(create_event(self._id("object"), field, ticket[field]))
            if ticket["tags"]:
                events.append(create_event(self._id("object"), "tags", ticket["tags"]))
            audit = new_audit(audit_id, tid, author_id, events)
            self.tickets[tid] = ticket
            self.comments[tid] = [comment]
            self.audits[tid] = [audit]
            if ticket["problem_id"]:
                self.tickets[ticket["problem_id"]]["has_incidents"] = True
            logs.event(log, "sandbox.zendesk.ticket.created", ticket_id=tid)
            return ticket, audit

    def _changes(self, ticket: Json, data: Json, author_id: int) -> dict[str, Any]:
        """The fields an update payload sets, with the tags it adds and removes applied."""
        changes: dict[str, Any] = {}
        for field in UPDATABLE:
            if field in data:
                value = data[field]
                if field.endswith("_id") and field != "external_id":
                    value = to_int(value)
                changes[field] = value
        if "requester" in data or "requester_id" in data:
            changes["requester_id"] = self._requester_id(data, author_id)
        tags = list(ticket["tags"])
        if "tags" in data:
            tags = tag_list(data["tags"] or [])
        tags = tag_list([*tags, *(data.get("additional_tags") or [])])
        removed = set(tag_list(data.get("remove_tags") or []))
        tags = [t for t in tags if t not in removed]
        if tags != ticket["tags"]:
            changes["tags"] = tags
        if "custom_fields" in data:
            merged = {f["id"]: f for f in ticket["custom_fields"]}
            for f in data["custom_fields"] or []:
                merged[to_int(f.get("id"))] = {"id": to_int(f.get("id")), "value": f.get("value")}
            changes["custom_fields"] = list(merged.values())
        return changes

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
            changes = self._changes(ticket, data, author_id)
            # An agent's public reply opens a new ticket, as in Zendesk's agent workspace.
            is_agent = self.users.get(author_id, {}).get("role") != "end-user"
            if comment and comment["public"] and is_agent and ticket["status"] == "new":
                changes.setdefault("status", "open")
            events: list[Json] = [comment_event(comment)] if comment else []
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
            ticket["updated_at"] = iso()
            audit = new_audit(audit_id, ticket_id, author_id, events)
            if comment:
                self.comments[ticket_id].append(comment)
            self.audits[ticket_id].append(audit)
            logs.event(log, "sandbox.zendesk.ticket.updated", ticket_id=ticket_id)
            return ticket, audit

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
                    "expires_at": iso(time.time() + 3600),
                    "_attachments": [],
                }
                self.uploads[upload["token"]] = upload
            upload["_attachments"].append(attachment)
            return upload
