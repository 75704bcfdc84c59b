"""Sign in with Slack (OpenID Connect), emulated on the Slack sandbox, and user groups.

`GET /openid/connect/authorize` is a page that lets you pick a sandbox user (where
Slack would ask for a password); it sends the browser back to `redirect_uri` with a
one-time code. `POST /api/openid.connect.token` (HTTP Basic client_id:client_secret,
as slack_sdk sends it) trades the code for a user token, and
`/api/openid.connect.userInfo` answers who that token belongs to, with Slack's claim
names. `usergroups.users.list` (bot token) lists a user group's members.
Docs: https://docs.slack.dev/authentication/sign-in-with-slack/
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import Response, jsonify, redirect, render_template_string, request
from werkzeug.wrappers import Response as BaseResponse

if TYPE_CHECKING:
    from integrations.sandbox.slack import SlackSandbox

Json = dict[str, Any]

CLIENT_ID = "sandbox-client-id"
CLIENT_SECRET = "sandbox-client-secret"  # noqa: S105 - the sandbox's own, never a real one
CODE_SECONDS = 600


@dataclass
class Grant:
    """A code (then a token) handed to one user for one client and redirect URI."""

    user_id: str
    client_id: str
    redirect_uri: str
    nonce: str | None
    at: float


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in to Sandbox | Slack sandbox</title>
<style>body{font:15px system-ui,sans-serif;margin:2em auto;max-width:32em}
button{display:block;width:100%;margin:.4em 0;padding:.6em;font:inherit;text-align:left}</style>
</head><body>
<h1>Sign in to the Sandbox workspace</h1>
<p>The Slack sandbox stands in for Slack: pick who you are. The app asks for
<code>{{ scope }}</code>.</p>
<form method="post">
{% for key, value in params.items() %}
<input type="hidden" name="{{ key }}" value="{{ value }}">{% endfor %}
{% for user in users %}
<button type="submit" name="user_id" value="{{ user.id }}">{{ user.real_name }}
 <small>({{ user.id }}, {{ user.profile.email }})</small></button>
{% endfor %}
<button type="submit" name="deny" value="1">Cancel</button>
</form></body></html>"""


@dataclass
class SignIn:
    """The sandbox's Slack app credentials for sign-in, and its user groups (id -> members)."""

    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    usergroups: dict[str, list[str]] = field(default_factory=dict)


def install(sandbox: SlackSandbox, refusal: Callable[[str], Exception]) -> SignIn:
    """Add the sign-in page, the two openid.connect methods and usergroups.users.list.

    `refusal(code)` is the sandbox's Slack error ({"ok": false, "error": code}).
    """
    oidc = SignIn()
    codes: dict[str, Grant] = {}
    tokens: dict[str, Grant] = {}
    app = sandbox.app

    @app.route("/openid/connect/authorize", methods=["GET", "POST"])
    def authorize() -> str | BaseResponse | tuple[str, int]:
        params = {
            k: request.values.get(k, "")
            for k in ("response_type", "client_id", "scope", "redirect_uri", "state", "nonce")
        }
        if params["response_type"] != "code" or not params["redirect_uri"]:
            return "invalid request: response_type=code and redirect_uri are required", 400
        if params["client_id"] != oidc.client_id:
            return "invalid client_id", 400
        if request.method == "GET":
            with sandbox.lock:
                users = list(sandbox.users.values())
            return render_template_string(_PAGE, params=params, users=users, scope=params["scope"])
        back = params["redirect_uri"] + ("&" if "?" in params["redirect_uri"] else "?")
        if request.form.get("deny") or request.form.get("user_id") not in sandbox.users:
            return redirect(back + urlencode({"error": "access_denied", "state": params["state"]}))
        code = "sandbox-code-" + secrets.token_urlsafe(16)
        with sandbox.lock:
            codes[code] = Grant(
                request.form["user_id"],
                params["client_id"],
                params["redirect_uri"],
                params["nonce"] or None,
                time.time(),
            )
        return redirect(back + urlencode({"code": code, "state": params["state"]}))

    @app.post("/api/openid.connect.token")
    def token() -> Response:
        client_id, client_secret = _basic_auth()
        client_id = client_id or request.form.get("client_id", "")
        client_secret = client_secret or request.form.get("client_secret", "")
        if client_id != oidc.client_id or not hmac.compare_digest(
            client_secret.encode(), oidc.client_secret.encode()
        ):
            return jsonify(ok=False, error="invalid_client_id")
        with sandbox.lock:
            grant = codes.pop(request.form.get("code", ""), None)
        if grant is None or time.time() - grant.at > CODE_SECONDS:
            return jsonify(ok=False, error="invalid_code")
        if grant.client_id != client_id:
            return jsonify(ok=False, error="invalid_code")
        if request.form.get("redirect_uri", grant.redirect_uri) != grant.redirect_uri:
            return jsonify(ok=False, error="bad_redirect_uri")
        access = "xoxp-sandbox-" + secrets.token_hex(12)
        with sandbox.lock:
            tokens[access] = grant
        sandbox._record("openid.connect.token", {"code": "..."}, True, None)
        return jsonify(
            ok=True,
            access_token=access,
            token_type="Bearer",  # noqa: S106 - a type name, not a secret
            # Not a signed JWT: the hub reads identity from userInfo, never from this.
            id_token="sandbox." + secrets.token_urlsafe(12),
        )

    @app.route("/api/openid.connect.userInfo", methods=["GET", "POST"])
    def user_info() -> Response:
        header = request.headers.get("Authorization", "")
        access = header.removeprefix("Bearer ").strip() or request.values.get("token", "")
        with sandbox.lock:
            grant = tokens.get(access)
            user = sandbox.users.get(grant.user_id) if grant else None
        if grant is None or user is None:
            return jsonify(ok=False, error="invalid_auth")
        sandbox._record("openid.connect.userInfo", {}, True, None)
        profile = user["profile"]
        return jsonify(
            ok=True,
            sub=user["id"],
            **{
                "https://slack.com/user_id": user["id"],
                "https://slack.com/team_id": user["team_id"],
                "https://slack.com/team_name": "Sandbox",
            },
            email=profile.get("email"),
            email_verified=True,
            name=user["real_name"],
            given_name=user["real_name"].split(" ")[0],
            picture=profile.get("image_72"),
            nonce=grant.nonce,
        )

    def usergroups_users_list(args: Json) -> Json:
        group = args.get("usergroup")
        with sandbox.lock:
            members = oidc.usergroups.get(str(group))
        if members is None:
            raise refusal("no_such_subteam")
        return {"users": list(members)}

    sandbox._methods["usergroups.users.list"] = usergroups_users_list
    return oidc


def _basic_auth() -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return "", ""
    try:
        decoded = base64.b64decode(header[6:]).decode()
    except (ValueError, UnicodeDecodeError):
        return "", ""
    client_id, _, client_secret = decoded.partition(":")
    return client_id, client_secret
