"""Who may use the console: Sign in with Slack (OpenID Connect), the session, CSRF, the audit.

The session is Flask's own signed cookie (itsdangerous, SECRET_KEY), HttpOnly,
SameSite=Lax, Secure when the request came over https, expiring after
SESSION_HOURS (the signature carries the time, so an old cookie is refused even if
a browser keeps it). Sign-in is Slack's OpenID Connect code flow: slack_sdk builds
the authorize URL and calls `openid.connect.token` and `openid.connect.userInfo`;
the user must be in ADMIN_SLACK_USERS or in the user group ADMIN_SLACK_USERGROUP
(`usergroups.users.list`, with the bot token) and, when the bot token is set, in the
hub's own workspace (`auth.test`).

The CSRF check is written here rather than taken from Flask-WTF: the console has a
handful of forms and no WTForms, and the whole check is one token in the signed session
compared in constant time with the one the form or `X-CSRF-Token` header sends.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urljoin

from flask import Flask, Request, request, session
from flask.sessions import SecureCookieSessionInterface
from redis import Redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth import OpenIDConnectAuthorizeUrlGenerator

from integrations import logs
from integrations.settings import Settings

log = logging.getLogger(__name__)

SESSION_HOURS = 12
# A signed-in person's right to enter is looked at again this often (ADMIN_SLACK_USERS on
# every request; the user group's members, a Slack call, at most this often): someone
# removed from either is out within minutes, not when their cookie lapses.
RECHECK_SECONDS = 300
COOKIE_NAME = "feedback_hub_console"
SCOPES = ("openid", "email", "profile")
AUDIT_KEY = "hub:console:audit"
AUDIT_KEPT = 10_000
# Slack's userInfo names the workspace with this claim.
TEAM_CLAIM = "https://slack.com/team_id"


class ConsoleSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, Secure whenever the browser reached the hub over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        # Behind Heroku's router the app sees http; the router says https in this header.
        forwarded = request.headers.get("X-Forwarded-Proto", "")
        return request.is_secure or forwarded.split(",")[0].strip() == "https"


def configure_sessions(app: Flask, settings: Settings) -> None:
    """Give the app the console's cookie settings (only the console uses the session)."""
    app.secret_key = settings.secret_key
    app.session_interface = ConsoleSessions()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_PATH="/admin",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
    )


@dataclass(frozen=True)
class Person:
    """The signed-in Slack user."""

    user_id: str
    name: str
    email: str | None
    team_id: str | None

    @property
    def label(self) -> str:
        """How the audit and the pages name them."""
        return f"{self.name} ({self.user_id})"


def signed_in() -> Person | None:
    """The person of this request's session, or None."""
    user = session.get("user")
    if not isinstance(user, dict) or "user_id" not in user:
        return None
    return Person(**user)


def still_allowed(settings: Settings) -> bool:
    """Whether this request's session may go on; a session that may not is cleared.

    Flask re-signs the cookie on every request, so its lifetime alone never ends a session
    in use: it ends SESSION_HOURS after sign-in ("since"), and when the person is no
    longer allowed (checked at sign-in, then again as RECHECK_SECONDS says).
    """
    person = signed_in()
    if person is None:
        return True
    now = time.time()
    since = session.get("since")
    expired = not isinstance(since, (int, float)) or now - since > SESSION_HOURS * 3600
    gone = False
    if not expired and person.user_id not in settings.admin_slack_users:
        checked = session.get("checked")
        if not settings.admin_slack_usergroup:
            gone = True  # off the list, and no group to be in
        elif not isinstance(checked, (int, float)) or now - checked >= RECHECK_SECONDS:
            gone = not allowed(settings, person.user_id, _bot(settings))
            session["checked"] = now
    if expired or gone:
        logs.event(log, "console.session_ended", user=person.user_id,
                   why="expired" if expired else "no longer allowed")  # fmt: skip
        session.clear()
        return False
    return True


def csrf_token() -> str:
    """This session's CSRF token (made on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok(req: Request) -> bool:
    """Whether a state-changing request carries this session's token (form field or header)."""
    expected = session.get("csrf")
    sent = req.form.get("csrf_token") or req.headers.get("X-CSRF-Token") or ""
    return isinstance(expected, str) and hmac.compare_digest(sent.encode(), expected.encode())


# ---------------------------------------------------------------- Sign in with Slack


class SignInRefused(Exception):
    """Slack said no, or the user may not use the console; the message is for the page."""

    def __init__(self, message: str, *, status: int = 403, person: Person | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.person = person


def authorize_url(settings: Settings, redirect_uri: str, state: str, nonce: str) -> str:
    """Where the browser goes to sign in: Slack's (or the sandbox's) OpenID Connect page."""
    assert settings.slack_client_id
    generator = OpenIDConnectAuthorizeUrlGenerator(
        client_id=settings.slack_client_id,
        redirect_uri=redirect_uri,
        scopes=list(SCOPES),
        # https://slack.com/api/ -> https://slack.com/openid/connect/authorize; the sandbox alike.
        authorization_url=urljoin(settings.slack_api_url, "../openid/connect/authorize"),
    )
    return generator.generate(state=state, nonce=nonce)


def sign_in(settings: Settings, code: str, redirect_uri: str) -> Person:
    """Exchange the code for the user's identity and check they may use the console."""
    assert settings.slack_client_id and settings.slack_client_secret
    client = WebClient(base_url=settings.slack_api_url, timeout=10)
    try:
        token = client.openid_connect_token(
            client_id=settings.slack_client_id,
            client_secret=settings.slack_client_secret,
            code=code,
            redirect_uri=redirect_uri,
        )
        info = WebClient(
            base_url=settings.slack_api_url, token=token["access_token"], timeout=10
        ).openid_connect_userInfo()
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown") if exc.response is not None else "unknown"
        logs.event(log, "console.signin_failed", logging.WARNING, error=error)
        raise SignInRefused(
            f"Slack did not sign you in ({error}). Try again.", status=400
        ) from None
    person = Person(
        user_id=str(info.get("https://slack.com/user_id") or info.get("sub") or ""),
        name=str(info.get("name") or info.get("given_name") or "someone"),
        email=info.get("email"),
        team_id=info.get(TEAM_CLAIM),
    )
    if not person.user_id:
        raise SignInRefused("Slack did not say who you are. Try again.", status=400)
    bot = _bot(settings)
    if bot is not None and person.team_id and person.team_id != _hub_team(bot):
        raise SignInRefused(
            "This console belongs to another Slack workspace: sign in with the hub's workspace.",
            person=person,
        )
    if not allowed(settings, person.user_id, bot):
        raise SignInRefused(
            f"You are signed in to Slack as {person.name}, but you are not allowed to use this"
            " console. Ask an operator to add your Slack user id to ADMIN_SLACK_USERS"
            " or you to the console's Slack user group.",
            person=person,
        )
    logs.event(log, "console.signed_in", user=person.user_id)
    return person


def allowed(settings: Settings, user_id: str, bot: WebClient | None) -> bool:
    """ADMIN_SLACK_USERS, then the members of ADMIN_SLACK_USERGROUP."""
    if user_id in settings.admin_slack_users:
        return True
    if settings.admin_slack_usergroup and bot is not None:
        try:
            members = bot.usergroups_users_list(usergroup=settings.admin_slack_usergroup)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            logs.event(log, "console.usergroup_failed", logging.WARNING, error=error)
            return False
        return user_id in (members.get("users") or [])
    return False


def _bot(settings: Settings) -> WebClient | None:
    if not settings.slack_bot_token:
        return None
    return WebClient(base_url=settings.slack_api_url, token=settings.slack_bot_token, timeout=10)


def _hub_team(bot: WebClient) -> str | None:
    try:
        return bot.auth_test().get("team_id")
    except SlackApiError:
        return None


# ---------------------------------------------------------------- audit


@dataclass(frozen=True)
class AuditEntry:
    """One action someone took in the console: who, what, on what, when."""

    at: float
    who: str
    action: str
    target: str
    detail: str

    @property
    def when(self) -> str:
        """UTC, to the second."""
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.at))


def audit(redis: Redis, person: Person, action: str, target: str, detail: str = "") -> None:
    """Record an action (newest first, the last AUDIT_KEPT kept) and log it."""
    entry = {"at": time.time(), "who": person.label, "action": action, "target": target}
    entry["detail"] = detail
    pipe = redis.pipeline(transaction=False)
    pipe.lpush(AUDIT_KEY, json.dumps(entry))
    pipe.ltrim(AUDIT_KEY, 0, AUDIT_KEPT - 1)
    pipe.execute()
    logs.event(log, "console.action", user=person.user_id, action=action, target=target)


def audit_entries(redis: Redis, *, target: str | None = None, limit: int = 20) -> list[AuditEntry]:
    """The newest actions, only those on `target` (or on targets starting with it) if given."""
    out = []
    for raw in redis.lrange(AUDIT_KEY, 0, 999 if target else limit - 1):
        data: dict[str, Any] = json.loads(raw)
        if target is None or str(data.get("target", "")).startswith(target):
            out.append(AuditEntry(**data))
            if len(out) == limit:
                break
    return out
