"""The zenpy gateway: everything the hub asks of Zendesk, idempotent and rate limited."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

from redis import Redis
from zenpy import Zenpy
from zenpy.lib.api_objects import Comment, CustomField, Organization, User
from zenpy.lib.api_objects import Ticket as ZTicket
from zenpy.lib.endpoint import Url
from zenpy.lib.exception import APIException, RecordNotFoundException, ZenpyException

from integrations import logs
from integrations.errors import Permanent, Retryable
from integrations.queue.ratelimit import RateLimiter
from integrations.settings import Settings
from integrations.zendesk.client import GuardedSession, idempotent, zenpy_client

log = logging.getLogger(__name__)

# Group and user ids change rarely; a stale id makes a 422 that lands in dead
# letters with the reason, so an hour is a fair trade for the requests saved.
ID_CACHE_SECONDS = 3600
GROUPS_KEY = "hub:zendesk:groups"
GROUPS_FRESH_KEY = "hub:zendesk:groups:fresh"
# A group name or id missing from the cached list refetches the list at most this often.
GROUPS_REFRESH_SECONDS = 300


class UnknownName(Permanent):
    """A group or agent the rules name that Zendesk does not have."""


@dataclass(frozen=True)
class Ticket:
    """What Zendesk returned that the hub needs."""

    id: int
    url: str
    status: str
    subject: str = ""
    tags: tuple[str, ...] = ()
    group_id: int | None = None
    priority: str | None = None
    type: str | None = None
    problem_id: int | None = None
    external_id: str | None = None
    requester_id: int | None = None

    def to_job(self) -> dict[str, Any]:
        """JSON-safe data for a job argument."""
        return asdict(self)

    @classmethod
    def from_job(cls, data: dict[str, Any]) -> Ticket:
        """Rebuild from a job argument (jobs queued by earlier versions carry a request_url)."""
        fields = {k: v for k, v in data.items() if k != "request_url"}
        return cls(**{**fields, "tags": tuple(data.get("tags") or ())})


@dataclass(frozen=True)
class PostedComment:
    """One comment on a ticket, as Zendesk lists it."""

    id: int
    author_id: int | None
    public: bool
    body: str
    created_at: str


@dataclass(frozen=True)
class TicketDraft:
    """A ticket the hub is about to create: all ids resolved."""

    external_id: str
    subject: str
    body: str
    requester: dict[str, Any]
    tags: tuple[str, ...] = ()
    priority: str | None = None
    type: str | None = None
    group_id: int | None = None
    assignee_id: int | None = None
    problem_id: int | None = None
    custom_fields: dict[int, Any] = field(default_factory=dict)
    uploads: tuple[str, ...] = ()


class ZendeskGateway:
    """Tickets, uploads, users and groups through zenpy, with 4xx/5xx/429 turned into hub errors."""

    def __init__(self, client: Zenpy, redis: Redis, base_url: str) -> None:
        self.client = client
        self.redis = redis
        self.base_url = base_url.rstrip("/")

    @classmethod
    def from_settings(cls, settings: Settings, redis: Redis) -> ZendeskGateway:
        """The gateway for the configured Zendesk, sharing one rate limit across workers."""
        assert settings.zendesk_url and settings.zendesk_email
        session = GuardedSession(RateLimiter(redis, "zendesk"))
        client = zenpy_client(
            settings.zendesk_url,
            settings.zendesk_email,
            token=settings.zendesk_api_token,
            oauth_token=settings.zendesk_oauth_token,
            session=session,
        )
        return cls(client, redis, settings.zendesk_url)

    # ------------------------------------------------------------ tickets

    def agent_url(self, ticket_id: int) -> str:
        """The link an agent or reporter opens for a ticket."""
        return f"{self.base_url}/agent/tickets/{ticket_id}"

    def find_by_external_id(self, external_id: str) -> Ticket | None:
        """The ticket created for this external_id, if there is one."""
        with _zendesk_errors("find ticket"):
            for found in self.client.tickets(external_id=external_id):
                return self._ticket(found)
        return None

    def create_ticket(self, draft: TicketDraft) -> tuple[Ticket, bool]:
        """Create the ticket once per external_id; returns (ticket, created)."""
        # A create that may have reached Zendesk before (a retry, a replay, a
        # worker killed mid-call) is looked up first; a first attempt is not,
        # which saves a request per ticket against the rate limit.
        attempt_key = f"hub:zendesk:attempt:{draft.external_id}"
        first_attempt = bool(self.redis.set(attempt_key, 1, nx=True, ex=30 * 24 * 3600))
        if not first_attempt:
            existing = self.find_by_external_id(draft.external_id)
            if existing is not None:
                logs.event(
                    log, "zendesk.ticket.exists", ticket=existing.id, external_id=draft.external_id
                )
                return existing, False

        fields: dict[str, Any] = {
            "subject": draft.subject,
            "comment": Comment(body=draft.body, public=True, uploads=list(draft.uploads) or None),
            "tags": list(draft.tags),
            "priority": draft.priority,
            "type": draft.type,
            "group_id": draft.group_id,
            "assignee_id": draft.assignee_id,
            "problem_id": draft.problem_id,
            "external_id": draft.external_id,
            "custom_fields": [CustomField(id=k, value=v) for k, v in draft.custom_fields.items()],
        }
        if "requester_id" in draft.requester:
            fields["requester_id"] = draft.requester["requester_id"]
        ticket = ZTicket(**{k: v for k, v in fields.items() if v not in (None, [])})
        if "email" in draft.requester:
            # Sent as `requester: {name, email}`: Zendesk finds or creates the
            # user within the create. zenpy's `requester` setter wants a saved
            # User (it copies its id), so the attribute is set directly.
            ticket._requester = User(
                name=draft.requester.get("name"), email=draft.requester["email"]
            )
        # Without a requester Zendesk makes the API user the requester.
        # The report's key as Idempotency-Key: a create held past the client's timeout
        # (and resent) lands once; the external_id lookup above is the second line.
        try:
            with _zendesk_errors("create ticket"), idempotent(draft.external_id):
                audit = self.client.tickets.create(ticket)
        except Permanent as exc:
            # The key was used for a different body (a retry after the draft changed,
            # e.g. a re-resolved group): the ticket exists; find it.
            if "IdempotentRequestError" not in (exc.body or ""):
                raise
            existing = self.find_by_external_id(draft.external_id)
            if existing is None:
                raise Retryable(
                    "Zendesk took this report's key but the ticket is not found yet"
                ) from None
            logs.event(
                log, "zendesk.ticket.exists", ticket=existing.id, external_id=draft.external_id
            )
            return existing, False
        created = self._ticket(audit.ticket)
        logs.event(log, "zendesk.ticket.created", ticket=created.id, external_id=draft.external_id)
        return created, True

    def get_ticket(self, ticket_id: int) -> Ticket:
        """One ticket by id."""
        with _zendesk_errors("get ticket"):
            return self._ticket(self.client.tickets(id=ticket_id))

    def update_ticket(self, ticket_id: int, **changes: Any) -> Ticket:
        """Change a ticket's fields (tags, status, problem_id, type, ...)."""
        with _zendesk_errors("update ticket"):
            current = self.client.tickets(id=ticket_id)
            for name, value in changes.items():
                setattr(current, name, value)
            audit = self.client.tickets.update(current)
        return self._ticket(audit.ticket)

    def create_problem(
        self, external_id: str, subject: str, body: str, tags: tuple[str, ...] = ()
    ) -> tuple[Ticket, bool]:
        """Create a problem ticket once per external_id; returns (ticket, created)."""
        draft = TicketDraft(
            external_id=external_id,
            subject=subject,
            body=body,
            # No requester: Zendesk makes the API user the requester, so no customer
            # is copied on the problem; customers hear through their incidents.
            requester={},
            tags=tags,
            type="problem",
        )
        return self.create_ticket(draft)

    def link_incident(self, ticket_id: int, problem_id: int) -> tuple[Ticket, bool]:
        """Make a ticket an incident of a problem; returns (ticket, changed)."""
        with _zendesk_errors("link incident"):
            current = self.client.tickets(id=ticket_id)
            if current.type == "incident" and current.problem_id == problem_id:
                return self._ticket(current), False
            current.type = "incident"
            current.problem_id = problem_id
            audit = self.client.tickets.update(current)
        logs.event(log, "zendesk.incident.linked", ticket=ticket_id, problem=problem_id)
        return self._ticket(audit.ticket), True

    def add_comment(
        self, ticket_id: int, body: str, *, public: bool, author_id: int | None = None
    ) -> None:
        """Add a comment (public reply or internal note) to a ticket."""
        with _zendesk_errors("add comment"):
            current = self.client.tickets(id=ticket_id)
            current.comment = Comment(body=body, public=public, author_id=author_id)
            self.client.tickets.update(current)

    def comments(self, ticket_id: int) -> list[PostedComment]:
        """A ticket's comments, oldest first (the first is the ticket's description)."""
        with _zendesk_errors("list comments"):
            return [
                PostedComment(
                    id=int(c.id),
                    author_id=c.author_id,
                    public=bool(c.public),
                    body=str(c.body or ""),
                    created_at=str(c.created_at or ""),
                )
                for c in self.client.tickets.comments(ticket=ticket_id)
            ]

    def add_tags(self, ticket_id: int, tags: tuple[str, ...]) -> bool:
        """Add tags the ticket lacks (one read, and one update only when some are missing)."""
        with _zendesk_errors("add tags"):
            current = self.client.tickets(id=ticket_id)
            have = list(current.tags or ())
            missing = [t for t in tags if t not in have]
            if not missing:
                return False
            current.tags = have + missing
            self.client.tickets.update(current)
        return True

    # ------------------------------------------------------------ uploads

    def upload(self, filename: str, content_type: str, data: bytes) -> str:
        """Upload a file; the token attaches it to the ticket's first comment."""
        # zenpy writes target_name into the query string as it is: encoded here, so a name
        # with `&`, `#` or `%` is one parameter that Zendesk decodes back to the name.
        with _zendesk_errors("upload attachment"):
            upload = self.client.attachments.upload(
                io.BytesIO(data), target_name=quote(filename, safe=""), content_type=content_type
            )
        return str(upload.token)

    # ------------------------------------------------------------ users and groups

    def user_id(self, *, name: str | None, email: str | None, external_id: str | None) -> int:
        """The Zendesk user for this person, created when new (cached)."""
        key = f"hub:zendesk:user:{email or external_id}"
        if cached := self.redis.get(key):
            return int(cached)
        user = User(name=name or email or external_id, email=email, external_id=external_id)
        with _zendesk_errors("create or update user"):
            found = self.client.users.create_or_update(user)
        self.redis.set(key, found.id, ex=ID_CACHE_SECONDS)
        return int(found.id)

    def organization_id(self, name: str) -> int:
        """The organization named `name`, created once when missing (cached).

        Keyed by an external id made from the name, so a retry finds the one it created.
        One that Zendesk already has under that name (made by hand or by another
        integration) is used as it is.
        """
        external_id = "feedback-hub:" + "-".join(name.casefold().split())
        key = f"hub:zendesk:organization:{external_id}"
        if cached := self.redis.get(key):
            return int(cached)
        try:
            with _zendesk_errors("create or update organization"):
                found = self.client.organizations.create_or_update(
                    Organization(name=name, external_id=external_id)
                )
        except Permanent as exc:
            # create_or_update matches by id or external_id only, and names are unique: an
            # organization with this name but another (or no) external id is a 422 forever.
            if not _name_taken(exc):
                raise
            organization = self._organization_named(name)
            # Its external_id is another system's: left as it is, ours is never written over it.
            logs.event(
                log,
                "zendesk.organization.adopted",
                organization=organization,
                external_id=external_id,
                reason="name_taken",
            )
        else:
            organization = int(found.id)
            logs.event(log, "zendesk.organization.ready", organization=organization)
        self.redis.set(key, organization, ex=ID_CACHE_SECONDS)
        return organization

    def _organization_named(self, name: str) -> int:
        """The id of the organization Zendesk has under `name` (an exact match, any case)."""
        # Search Organizations by name (GET /api/v2/organizations/search.json?name=, exact and
        # case-insensitive per Zendesk's API reference). zenpy 2.0.57 has no call for it, and its
        # `organizations.external` writes the query into the path unencoded and appends
        # `?page[size]=` after it. zenpy's own `_get` is used with a URL from its `_build_url`:
        # the same session (auth, shared rate limit, short retries, 429 as Retryable) and the
        # same response checks as every other call, so `_zendesk_errors` maps its failures.
        api = self.client.organizations
        with _zendesk_errors("find organization by name"):
            url = api._build_url(Url("organizations/search.json"))
            found = [(o.name, int(o.id)) for o in api._get(url, params={"name": name})]
        if not found:
            # Renamed or deleted since the 422: the next attempt creates it.
            raise Retryable(f"Zendesk said organization {name!r} exists but does not find it")
        # Names are unique (ignoring case); two can exist after a race Zendesk documents.
        # The one spelled exactly as configured wins, then the oldest.
        found.sort(key=lambda o: (o[0] != name, o[1]))
        return found[0][1]

    def join_organization(
        self, *, name: str | None, email: str | None, external_id: str | None, organization_id: int
    ) -> int:
        """Make a requester a member of an organization (their new tickets join it)."""
        key = f"hub:zendesk:member:{organization_id}:{email or external_id}"
        if cached := self.redis.get(key):
            return int(cached)
        user = User(
            name=name or email or external_id,
            email=email,
            external_id=None if email else external_id,
            organization_id=organization_id,
        )
        with _zendesk_errors("create or update user"):
            found = self.client.users.create_or_update(user)
        self.redis.set(key, found.id, ex=ID_CACHE_SECONDS)
        return int(found.id)

    def agent_id(self, email: str) -> int:
        """The id of the agent with this email (cached); Permanent when there is none."""
        key = f"hub:zendesk:agent:{email.casefold()}"
        if cached := self.redis.get(key):
            return int(cached)
        with _zendesk_errors("find agent"):
            found = [
                u for u in self.client.users.search(query=f"email:{email}") if u.role != "end-user"
            ]
        if not found:
            raise UnknownName(f"Zendesk has no agent with email {email!r}")
        self.redis.set(key, found[0].id, ex=ID_CACHE_SECONDS)
        return int(found[0].id)

    def group_id(self, name: str) -> int:
        """The id of the group with this name (cached); UnknownName when there is none."""
        folded = name.casefold()
        groups = self._groups(lambda known: folded in known)
        if folded not in groups:
            names = ", ".join(sorted(display for _, display in groups.values())) or "none"
            raise UnknownName(f"Zendesk has no group named {name!r} (groups: {names})")
        return groups[folded][0]

    def group_name(self, group_id: int) -> str | None:
        """The name of the group with this id (cached); None when unknown."""
        groups = self._groups(lambda known: any(gid == group_id for gid, _ in known.values()))
        return next((display for gid, display in groups.values() if gid == group_id), None)

    def _groups(
        self, has: Callable[[dict[str, tuple[int, str]]], bool]
    ) -> dict[str, tuple[int, str]]:
        """Zendesk's groups, folded name -> (id, name), from Redis; refetched when stale.

        A name the rules use but Zendesk lacks would otherwise cost a request
        per ticket: a miss refetches the list at most every few minutes.
        """
        cached = self.redis.get(GROUPS_KEY)
        groups = (
            {k: (int(v[0]), str(v[1])) for k, v in json.loads(cached).items()} if cached else {}
        )
        if cached and (
            has(groups)
            or not self.redis.set(GROUPS_FRESH_KEY, 1, nx=True, ex=GROUPS_REFRESH_SECONDS)
        ):
            return groups
        with _zendesk_errors("list groups"):
            groups = {
                str(g.name).casefold(): (int(g.id), str(g.name)) for g in self.client.groups()
            }
        pipe = self.redis.pipeline()
        pipe.set(GROUPS_KEY, json.dumps(groups), ex=ID_CACHE_SECONDS)
        pipe.set(GROUPS_FRESH_KEY, 1, ex=GROUPS_REFRESH_SECONDS)
        pipe.execute()
        return groups

    def user_name(self, user_id: int) -> str | None:
        """A user's display name (cached); None when Zendesk has no such user."""
        key = f"hub:zendesk:user-name:{user_id}"
        if cached := self.redis.get(key):
            return cached.decode() if isinstance(cached, bytes) else str(cached)
        try:
            with _zendesk_errors("show user"):
                user = self.client.users(id=user_id)
        except Permanent:
            return None
        name = str(user.name or user.email or user_id)
        self.redis.set(key, name, ex=ID_CACHE_SECONDS)
        return name

    def is_agent(self, user_id: int) -> bool | None:
        """Whether a user is support staff (role agent or admin; cached a day); None when
        Zendesk has no such user. Trigger payloads do not say who wrote a comment."""
        key = f"hub:zendesk:user-staff:{user_id}"
        if (cached := self.redis.get(key)) is not None:
            return cached in (b"1", "1")
        try:
            with _zendesk_errors("show user"):
                user = self.client.users(id=user_id)
        except Permanent:
            return None
        staff = str(user.role or "").lower() in ("agent", "admin")
        self.redis.set(key, "1" if staff else "0", ex=ID_CACHE_SECONDS)
        return staff

    def add_note(self, ticket_id: int, body: str, *, add_tags: tuple[str, ...] = ()) -> Ticket:
        """Add an internal note and tags in one update."""
        with _zendesk_errors("add note"):
            current = self.client.tickets(id=ticket_id)
            current.comment = Comment(body=body, public=False)
            current.tags = list(dict.fromkeys([*(current.tags or ()), *add_tags]))
            audit = self.client.tickets.update(current)
        return self._ticket(audit.ticket)

    # ------------------------------------------------------------ helpers

    def _ticket(self, t: Any) -> Ticket:
        return Ticket(
            id=int(t.id),
            url=self.agent_url(int(t.id)),
            status=str(t.status or "new"),
            subject=str(t.subject or ""),
            tags=tuple(t.tags or ()),
            group_id=t.group_id,
            priority=t.priority,
            type=t.type,
            problem_id=t.problem_id,
            external_id=t.external_id,
            requester_id=t.requester_id,
        )


def _name_taken(exc: Permanent) -> bool:
    """True for Zendesk's 422 that says an organization already has this name, and only that.

    Its body: {"error": "RecordInvalid", "description": "Record validation errors", "details":
    {"name": [{"description": "Name: <name> has already been taken", "error": "DuplicateValue"}]}}.
    """
    if exc.status != 422:
        return False
    try:
        body = json.loads(exc.body or "")
    except ValueError:
        return False
    if not isinstance(body, dict) or body.get("error") != "RecordInvalid":
        return False
    details = body.get("details")
    if not isinstance(details, dict):
        return False
    refusals = details.get("name")
    return (
        set(details) == {"name"}
        and isinstance(refusals, list)
        and bool(refusals)
        and all(isinstance(r, dict) and r.get("error") == "DuplicateValue" for r in refusals)
    )


@contextmanager
def _zendesk_errors(action: str) -> Iterator[None]:
    """Turn zenpy errors into the hub's: 4xx is Permanent (with the body), the rest retries."""
    try:
        yield
    except (Retryable, Permanent):
        raise
    except RecordNotFoundException as exc:
        raise Permanent(
            f"Zendesk could not {action}: not found", status=404, body=str(exc)
        ) from None
    except APIException as exc:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        body = response.text[:2000] if response is not None else str(exc)
        if status is not None and 400 <= status < 500 and status != 429:
            raise Permanent(
                f"Zendesk refused to {action} ({status})", status=status, body=body
            ) from None
        raise Retryable(f"Zendesk failed to {action} ({status})") from None
    except ZenpyException as exc:
        raise Retryable(f"Zendesk client failed to {action}: {type(exc).__name__}") from None
