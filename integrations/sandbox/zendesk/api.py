"""The emulated Support API: one method per endpoint, listed in `ZendeskApi.routes`."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from flask import Response, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from integrations.sandbox.zendesk.records import (
    Invalid,
    Json,
    audit_json,
    comment_json,
    group_json,
    iso,
    job_json,
    not_found,
    organization_json,
    record_invalid,
    to_int,
    to_str,
    upload_json,
    user_json,
)
from integrations.sandbox.zendesk.webhooks import WebhookAccount

CREATE_MANY_MAX = 100

# (HTTP method, URL rule, view); the view's name is the Flask endpoint.
Route = tuple[str, str, Callable[..., ResponseReturnValue]]
# How long Zendesk keeps an Idempotency-Key's answer (ticketing API introduction).
IDEMPOTENCY_SECONDS = 2 * 3600


@dataclass(frozen=True)
class _Kept:
    """The first answer to a create with an Idempotency-Key."""

    payload: str  # sha256 of the request body
    body: bytes
    status: int
    location: str
    expires: float


def invalid(exc: Invalid) -> tuple[Response, int]:
    """A refused request, answered with Zendesk's error body."""
    return jsonify(exc.body), exc.status


def http_error(exc: HTTPException) -> tuple[Response, int]:
    """Werkzeug's errors (unknown path, wrong method) in Zendesk's JSON error shape."""
    status = exc.code or 500
    if status == 404:
        return jsonify(error="InvalidEndpoint", description="Not found"), 404
    return jsonify(error=exc.name, description=exc.description), status


def body(key: str) -> Json:
    """The object under `key` in the request's JSON ({"ticket": {...}}), or a 400."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not isinstance(data.get(key), dict):
        raise Invalid(
            400, {"error": "InvalidValue", "description": f"Expected a JSON '{key}' object"}
        )
    return data[key]


def listing(key: str, items: list[Json]) -> Json:
    """A collection in the pagination the client asked for: cursor (page[size]) or offset."""
    if any(k.startswith("page[") for k in request.args):
        return {
            key: items,
            "meta": {"has_more": False, "after_cursor": None, "before_cursor": None},
            "links": {"next": None, "prev": None},
        }
    return {key: items, "next_page": None, "previous_page": None, "count": len(items)}


class ZendeskApi:
    """The REST endpoints zenpy and the hub call, over one account."""

    def __init__(self, account: WebhookAccount) -> None:
        self.account = account
        # Idempotency-Key -> the first answer (Zendesk keeps them two hours).
        self.idempotent: dict[str, _Kept] = {}
        self.idempotency_lock = threading.Lock()

    def routes(self) -> list[Route]:
        """Every endpoint, in the order they are registered."""
        return [
            ("POST", "/api/v2/tickets.json", self.create_ticket),
            ("GET", "/api/v2/tickets.json", self.list_tickets),
            ("GET", "/api/v2/tickets/<int:ticket_id>.json", self.show_ticket),
            ("PUT", "/api/v2/tickets/<int:ticket_id>.json", self.update_ticket),
            ("GET", "/api/v2/tickets/<int:ticket_id>/comments.json", self.comments),
            ("GET", "/api/v2/tickets/<int:ticket_id>/incidents.json", self.incidents),
            ("POST", "/api/v2/tickets/create_many.json", self.create_many),
            ("GET", "/api/v2/job_statuses/<job_id>.json", self.job_status),
            ("POST", "/api/v2/users/create_or_update.json", self.create_or_update_user),
            ("GET", "/api/v2/users/search.json", self.search_users),
            (
                "POST",
                "/api/v2/organizations/create_or_update.json",
                self.create_or_update_organization,
            ),
            ("GET", "/api/v2/organizations/search.json", self.search_organizations),
            ("GET", "/api/v2/users.json", self.list_users),
            ("GET", "/api/v2/users/me.json", self.me),
            ("GET", "/api/v2/users/<int:user_id>.json", self.show_user),
            ("GET", "/api/v2/groups.json", self.list_groups),
            ("POST", "/api/v2/groups.json", self.create_group),
            ("GET", "/api/v2/groups/<int:group_id>.json", self.show_group),
            ("GET", "/api/v2/ticket_fields.json", self.list_ticket_fields),
            ("POST", "/api/v2/uploads.json", self.upload),
            ("GET", "/attachments/token/<file_token>/", self.attachment_bytes),
            ("POST", "/api/v2/webhooks", self.create_webhook),
            ("GET", "/api/v2/webhooks", self.list_webhooks),
            ("GET", "/api/v2/webhooks/<webhook_id>", self.show_webhook),
            ("GET", "/api/v2/webhooks/<webhook_id>/signing_secret", self.signing_secret),
            ("POST", "/api/v2/triggers.json", self.create_trigger),
            ("GET", "/api/v2/triggers.json", self.list_triggers),
        ]

    def _caller_id(self) -> int:
        # Every API token belongs to the sandbox's agent: it is the author of what the API does.
        return int(self.account.agent["id"])

    # ------------------------------------------------------------ tickets

    def create_ticket(self) -> tuple[Response, int]:
        """Create Ticket: 201 with the ticket, its audit and a Location header.

        With an `Idempotency-Key` header, as Zendesk documents it: the first request
        with a key creates and its answer is kept for two hours; a later one with the
        same key and the same body gets that answer again (`x-idempotency-lookup: hit`)
        and creates nothing; the same key with another body is a 400
        IdempotentRequestError.
        """
        zd = self.account
        with zd.lock:
            held, zd.faults.hold_next_create = zd.faults.hold_next_create, 0.0
        if held:
            time.sleep(held)  # the proxy's hold: the client may have given up by now
        key = request.headers.get("Idempotency-Key")
        if not key:
            return self._create_ticket(zd)
        payload = hashlib.sha256(request.get_data()).hexdigest()
        with self.idempotency_lock:  # one request per key at a time, as Zendesk serialises
            kept = self.idempotent.get(key)
            if kept is not None and kept.expires > time.time():
                if kept.payload != payload:
                    error = jsonify(
                        error="IdempotentRequestError",
                        description="Idempotency key is already used for a different request",
                    )
                    return error, 400
                response = Response(kept.body, kept.status, content_type="application/json")
                response.headers["Location"] = kept.location
                response.headers["x-idempotency-lookup"] = "hit"
                return response, kept.status
            response, status = self._create_ticket(zd)
            self.idempotent[key] = _Kept(
                payload,
                response.get_data(),
                status,
                response.headers.get("Location", ""),
                time.time() + IDEMPOTENCY_SECONDS,
            )
            response.headers["x-idempotency-lookup"] = "miss"
            return response, status

    def _create_ticket(self, zd: WebhookAccount) -> tuple[Response, int]:
        ticket, audit = zd.create_ticket(body("ticket"), self._caller_id())
        response = jsonify(ticket=zd.ticket_json(ticket), audit=audit_json(zd.base(), audit))
        response.headers["Location"] = f"{zd.base()}/api/v2/tickets/{ticket['id']}.json"
        return response, 201

    def list_tickets(self) -> Response:
        """List Tickets, only those with `external_id` when it is given."""
        found = self.account.find_tickets(request.args.get("external_id"))
        return jsonify(listing("tickets", [self.account.ticket_json(t) for t in found]))

    def show_ticket(self, ticket_id: int) -> Response:
        """Show Ticket."""
        return jsonify(ticket=self.account.ticket_json(self.account.ticket_or_404(ticket_id)))

    def update_ticket(self, ticket_id: int) -> Response:
        """Update Ticket; solving a problem solves its incidents."""
        zd = self.account
        ticket, audit = zd.update_ticket(ticket_id, body("ticket"), self._caller_id())
        zd.solve_incidents(ticket, audit)
        return jsonify(ticket=zd.ticket_json(ticket), audit=audit_json(zd.base(), audit))

    def comments(self, ticket_id: int) -> Response:
        """List Comments of a ticket, oldest first."""
        zd = self.account
        zd.ticket_or_404(ticket_id)
        with zd.lock:
            items = [comment_json(zd.base(), c) for c in zd.comments[ticket_id]]
        return jsonify(listing("comments", items))

    def incidents(self, ticket_id: int) -> Response:
        """List Ticket Incidents of a problem ticket."""
        zd = self.account
        zd.ticket_or_404(ticket_id)
        with zd.lock:
            items = [zd.ticket_json(t) for t in zd.tickets.values() if t["problem_id"] == ticket_id]
        return jsonify(listing("tickets", items))

    def create_many(self) -> Response:
        """Create Many Tickets: done at once, answered with a queued job status."""
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
                ticket, _ = self.account.create_ticket(item, self._caller_id())
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
            "message": "Completed at " + time.strftime("%Y-%m-%d %H:%M:%S +0000", time.gmtime()),
            "results": results,
        }
        with self.account.lock:
            self.account.job_statuses[job_id] = job
        # The work is done at once; the first answer still says "queued", as Zendesk's does.
        queued = {**job, "total": None, "progress": None, "status": "queued"}
        queued.update(message=None, results=None)
        return jsonify(job_status=job_json(self.account.base(), queued))

    def job_status(self, job_id: str) -> Response:
        """Show Job Status, with each ticket's id or error."""
        with self.account.lock:
            job = self.account.job_statuses.get(job_id)
        if job is None:
            raise not_found()
        return jsonify(job_status=job_json(self.account.base(), job))

    # ------------------------------------------------------------ users and groups

    def _user_to_update(self, data: Json) -> Json | None:
        """The user a create_or_update payload names: by email, else by external id."""
        zd = self.account
        user = None
        if data.get("email"):
            user = zd.user_by_email(data["email"])
        if user is None and data.get("external_id"):
            user = next(
                (u for u in zd.users.values() if u["external_id"] == str(data["external_id"])),
                None,
            )
        return user

    def create_or_update_user(self) -> tuple[Response, int]:
        """Create Or Update User, matched by email, then external id (201 when created)."""
        zd = self.account
        data = body("user")
        with zd.lock:
            user = self._user_to_update(data)
            status = 200
            if user is None:
                if not data.get("name"):
                    raise record_invalid("name", "Name: is too short (minimum one character)")
                user = zd.add_user(
                    data["name"],
                    data.get("email"),
                    role=data.get("role", "end-user"),
                    external_id=to_str(data.get("external_id")),
                )
                status = 201
            for field in ("name", "phone", "locale", "time_zone", "notes", "details"):
                if data.get(field) is not None:
                    user[field] = data[field]
            if data.get("external_id") is not None:
                user["external_id"] = str(data["external_id"])
            if data.get("organization_id") is not None:
                user["organization_id"] = to_int(data["organization_id"])
            user["updated_at"] = iso()
        return jsonify(user=user_json(zd.base(), user)), status

    def create_or_update_organization(self) -> tuple[Response, int]:
        """Create Or Update Organization, matched by id, then external id (201 when created).

        Never matched by name: a new organization whose name another one has is a 422, as
        Zendesk answers it (`DuplicateValue` on `name`, the name in the description). Names
        are compared ignoring case, as Search Organizations matches them; that Zendesk's
        uniqueness check ignores case too is an assumption (unverified).
        """
        zd = self.account
        data = body("organization")
        with zd.lock:
            found = zd.organizations.get(to_int(data.get("id")) or 0) or next(
                (
                    o
                    for o in zd.organizations.values()
                    if data.get("external_id") and o["external_id"] == str(data["external_id"])
                ),
                None,
            )
            status = 200
            if found is None:
                name = data.get("name")
                if not name:
                    raise record_invalid("name", "Name: cannot be blank", "BlankValue")
                if zd.organizations_named(str(name)):
                    raise record_invalid(
                        "name", f"Name: {name} has already been taken", "DuplicateValue"
                    )
                found = zd.add_organization(str(name), to_str(data.get("external_id")))
                status = 201
            found["updated_at"] = iso()
        return jsonify(organization=organization_json(zd.base(), found)), status

    def search_organizations(self) -> Response:
        """Search Organizations by `external_id` or `name`: exact matches, ignoring case."""
        zd = self.account
        name, external_id = request.args.get("name"), request.args.get("external_id")
        if (name is None) == (external_id is None):
            raise Invalid(
                400,
                {"error": "InvalidValue", "description": "Search by either external_id or name"},
            )
        if name is not None:
            found = zd.organizations_named(name)
        else:
            wanted = str(external_id).casefold()
            with zd.lock:
                found = [
                    o
                    for o in zd.organizations.values()
                    if (o["external_id"] or "").casefold() == wanted
                ]
        return jsonify(listing("organizations", [organization_json(zd.base(), o) for o in found]))

    def search_users(self) -> Response:
        """Search Users by email, name or external id."""
        zd = self.account
        query = (request.args.get("query") or "").strip().lower()
        if query.startswith("email:"):
            query = query.removeprefix("email:")
        external_id = request.args.get("external_id")
        with zd.lock:
            found = [
                u
                for u in zd.users.values()
                if (external_id is not None and u["external_id"] == external_id)
                or (query and (query == (u["email"] or "") or query in u["name"].lower()))
            ]
        return jsonify(listing("users", [user_json(zd.base(), u) for u in found]))

    def list_users(self) -> Response:
        """List Users, only those with a `role[]` (or `role`) when given."""
        zd = self.account
        roles = set(request.args.getlist("role[]") + request.args.getlist("role"))
        with zd.lock:
            found = [u for u in zd.users.values() if not roles or u["role"] in roles]
        return jsonify(listing("users", [user_json(zd.base(), u) for u in found]))

    def me(self) -> Response:
        """Show the Currently Authenticated User: the sandbox's agent."""
        return jsonify(user=user_json(self.account.base(), self.account.agent))

    def show_user(self, user_id: int) -> Response:
        """Show User."""
        with self.account.lock:
            user = self.account.users.get(user_id)
        if user is None:
            raise not_found()
        return jsonify(user=user_json(self.account.base(), user))

    def list_groups(self) -> Response:
        """List Groups."""
        zd = self.account
        with zd.lock:
            items = [group_json(zd.base(), gr) for gr in zd.groups.values()]
        return jsonify(listing("groups", items))

    def create_group(self) -> tuple[Response, int]:
        """Create Group."""
        data = body("group")
        if not data.get("name"):
            raise record_invalid("name", "Name: cannot be blank", "BlankValue")
        group = self.account.add_group(data["name"], data.get("description") or "")
        return jsonify(group=group_json(self.account.base(), group)), 201

    def show_group(self, group_id: int) -> Response:
        """Show Group."""
        with self.account.lock:
            group = self.account.groups.get(group_id)
        if group is None:
            raise not_found()
        return jsonify(group=group_json(self.account.base(), group))

    def list_ticket_fields(self) -> Response:
        """List Ticket Fields (the custom ones: the sandbox has no system fields)."""
        zd = self.account
        with zd.lock:
            items = [
                {"url": f"{zd.base()}/api/v2/ticket_fields/{f['id']}.json", **f}
                for f in zd.ticket_fields.values()
            ]
        return jsonify(listing("ticket_fields", items))

    # ------------------------------------------------------------ uploads

    def upload(self) -> tuple[Response, int]:
        """Upload Files: the request body is the file, `token` adds it to an earlier upload."""
        file_name = request.args.get("filename")
        if not file_name:
            raise Invalid(400, {"error": "InvalidValue", "description": "filename is required"})
        stored = self.account.upload(
            file_name, request.get_data(), request.content_type, request.args.get("token")
        )
        return jsonify(upload=upload_json(self.account.base(), stored)), 201

    def attachment_bytes(self, file_token: str) -> Response:
        """An attachment's bytes, where its `content_url` points."""
        with self.account.lock:
            stored = self.account.files.get(file_token)
        if stored is None:
            raise not_found()
        return Response(stored.data, content_type=stored.content_type)

    # ------------------------------------------------------------ webhooks and triggers

    def create_webhook(self) -> tuple[Response, int]:
        """Create or Clone Webhook (create only)."""
        return jsonify(webhook=self.account.create_webhook(body("webhook"))), 201

    def list_webhooks(self) -> Response:
        """List Webhooks, cursor-paginated as Zendesk's are."""
        with self.account.lock:
            items = list(self.account.webhooks.values())
        return jsonify(
            webhooks=items,
            meta={"has_more": False, "after_cursor": None, "before_cursor": None},
            links={"next": None, "prev": None},
        )

    def show_webhook(self, webhook_id: str) -> Response:
        """Show Webhook (its secret is not in it)."""
        with self.account.lock:
            hook = self.account.webhooks.get(webhook_id)
        if hook is None:
            raise not_found()
        return jsonify(webhook=hook)

    def signing_secret(self, webhook_id: str) -> Response:
        """Show Webhook Signing Secret."""
        with self.account.lock:
            secret = self.account.webhook_secrets.get(webhook_id)
        if secret is None:
            raise not_found()
        return jsonify(signing_secret={"algorithm": "SHA256", "secret": secret})

    def create_trigger(self) -> tuple[Response, int]:
        """Create Trigger."""
        return jsonify(trigger=self.account.create_trigger(body("trigger"))), 201

    def list_triggers(self) -> Response:
        """List Triggers."""
        with self.account.lock:
            items = list(self.account.triggers.values())
        return jsonify(listing("triggers", items))
