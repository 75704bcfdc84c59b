"""Zendesk's records as the Support API spells them: errors, value rules, new objects, renderings.

Pure functions of their arguments; the account (state.py) stores what they build, and the
routes render it with the base URL of the request.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from integrations.sandbox.signing import zendesk_timestamp

# Named after the package, not this module: the `logger` of every log line stays what it was
# when the sandbox was one module (integrations/sandbox/zendesk.py).
log = logging.getLogger("integrations.sandbox.zendesk")

PRIORITIES = ("urgent", "high", "normal", "low")
TYPES = ("problem", "incident", "question", "task")
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
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
    """A 404 shaped like Zendesk's for a record that does not exist."""
    return Invalid(404, {"error": "RecordNotFound", "description": "Not found"})


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


# ---------------------------------------------------------------- values


def iso(moment: float | None = None) -> str:
    """A timestamp as the API writes them (now unless `moment` is given)."""
    return zendesk_timestamp(moment)


def tag_list(values: Iterable[Any]) -> list[str]:
    """Tags as Zendesk stores them: lower case, no spaces (a space separates two tags), unique."""
    out: list[str] = []
    for value in values:
        for tag in str(value).lower().split():
            if tag not in out:
                out.append(tag)
    return out


def to_int(value: Any) -> int | None:
    """An id from a payload, or None when it is missing or not a number."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def to_str(value: Any) -> str | None:
    """`value` as text, keeping None."""
    return None if value is None else str(value)


def to_upper(value: Any) -> str | None:
    """`value` in capitals, keeping None."""
    # Ticket event payloads spell enumerations in capitals ("OPEN", "LOW", "TASK").
    return None if value is None else str(value).upper()


def api_via() -> Json:
    """The `via` of anything made through the API."""
    return {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}}


# ---------------------------------------------------------------- new records


def new_user(
    uid: int, name: str, email: str | None, role: str, external_id: str | None, now: str
) -> Json:
    """A user with every field the Users API returns."""
    return {
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


def new_comment(
    comment_id: int,
    raw: Json,
    body: str,
    attachments: list[Json],
    author_id: int,
    audit_id: int,
) -> Json:
    """A comment with a non-blank `body`, from the payload `raw` it came in."""
    html_body = raw.get("html_body")
    return {
        "id": comment_id,
        "type": "Comment",
        "author_id": to_int(raw.get("author_id")) or author_id,
        "body": body,
        "html_body": html_body or f'<div class="zd-comment"><p>{html.escape(body)}</p></div>',
        "plain_body": body,
        "public": bool(raw.get("public", True)),
        "attachments": attachments,
        "audit_id": audit_id,
        "via": api_via(),
        "created_at": iso(),
        "metadata": {"system": {"client": "sandbox", "ip_address": "127.0.0.1"}, "custom": {}},
    }


def new_ticket(
    tid: int, data: Json, comment: Json, requester_id: int, author_id: int, now: str
) -> Json:
    """A ticket created from the payload `data` with its first comment."""
    custom_fields = [
        {"id": to_int(f.get("id")), "value": f.get("value")}
        for f in data.get("custom_fields") or []
    ]
    assignee_id = to_int(data.get("assignee_id"))
    return {
        "id": tid,
        "external_id": data.get("external_id"),
        "via": api_via(),
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
        "requester_id": requester_id,
        "submitter_id": author_id,
        "assignee_id": assignee_id,
        "organization_id": None,
        "group_id": to_int(data.get("group_id")),
        "collaborator_ids": [],
        "follower_ids": [],
        "email_cc_ids": [],
        "forum_topic_id": None,
        "problem_id": to_int(data.get("problem_id")),
        "has_incidents": False,
        "is_public": comment["public"],
        "due_at": data.get("due_at"),
        "tags": tag_list(data.get("tags") or []),
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


def create_event(event_id: int, field: str, value: Any) -> Json:
    """An audit event for a field set when its ticket was created."""
    return {"id": event_id, "type": "Create", "field_name": field, "value": value}


def comment_event(comment: Json) -> Json:
    """The audit event of a comment."""
    keys = ("id", "type", "author_id", "body", "html_body", "plain_body", "public")
    return {
        **{k: comment[k] for k in keys},
        "attachments": comment["attachments"],
        "audit_id": comment["audit_id"],
    }


def new_audit(audit_id: int, ticket_id: int, author_id: int, events: list[Json]) -> Json:
    """The audit of one change to a ticket."""
    return {
        "id": audit_id,
        "ticket_id": ticket_id,
        "created_at": iso(),
        "author_id": author_id,
        "metadata": {"system": {"client": "sandbox", "ip_address": "127.0.0.1"}, "custom": {}},
        "via": api_via(),
        "events": events,
    }


# ---------------------------------------------------------------- as the API returns them


def user_json(base: str, user: Json) -> Json:
    """A user with its API `url`."""
    return {"url": f"{base}/api/v2/users/{user['id']}.json", **user}


def group_json(base: str, group: Json) -> Json:
    """A group with its API `url`."""
    return {"url": f"{base}/api/v2/groups/{group['id']}.json", **group}


def organization_json(base: str, organization: Json) -> Json:
    """An organization with its API `url`."""
    return {"url": f"{base}/api/v2/organizations/{organization['id']}.json", **organization}


def job_json(base: str, job: Json) -> Json:
    """A job status with its API `url`."""
    return {"url": f"{base}/api/v2/job_statuses/{job['id']}.json", **job}


def attachment_json(base: str, attachment: Json) -> Json:
    """An attachment with its URLs, without the sandbox's own `_` keys."""
    name = quote(attachment["file_name"])
    content_url = f"{base}/attachments/token/{attachment['_token']}/?name={name}"
    out = {k: v for k, v in attachment.items() if not k.startswith("_")}
    return {
        "url": f"{base}/api/v2/attachments/{attachment['id']}.json",
        **out,
        "content_url": content_url,
        "mapped_content_url": content_url,
    }


def comment_json(base: str, comment: Json) -> Json:
    """A comment with its attachments rendered."""
    out = dict(comment)
    out["attachments"] = [attachment_json(base, a) for a in comment["attachments"]]
    return out


def audit_json(base: str, audit: Json) -> Json:
    """An audit with its comment events' attachments rendered."""
    out = dict(audit)
    out["events"] = [
        {**e, "attachments": [attachment_json(base, a) for a in e["attachments"]]}
        if e["type"] == "Comment"
        else e
        for e in audit["events"]
    ]
    return out


def upload_json(base: str, upload: Json) -> Json:
    """An upload: its token, and its attachments (the last one also as `attachment`)."""
    attachments = [attachment_json(base, a) for a in upload["_attachments"]]
    return {
        "token": upload["token"],
        "expires_at": upload["expires_at"],
        "attachments": attachments,
        "attachment": attachments[-1],
    }
