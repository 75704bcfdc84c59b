"""ZendeskSandbox: the account served over HTTP, behind Zendesk's faults, rate limit and auth."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from typing import Any

from flask import Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from integrations.sandbox.server import CONTROL, MinuteWindow
from integrations.sandbox.zendesk.api import ZendeskApi, http_error, invalid
from integrations.sandbox.zendesk.control import SandboxControl
from integrations.sandbox.zendesk.page import TicketsPage
from integrations.sandbox.zendesk.records import Invalid
from integrations.sandbox.zendesk.webhooks import WebhookAccount

# X-Rate-Limit when no limit is injected: Zendesk Enterprise's requests per minute.
NOMINAL_RATE_LIMIT = 700


class ZendeskSandbox(WebhookAccount):
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
        super().__init__(email=email, account_id=account_id)
        self.token = token
        self.oauth_token = oauth_token
        self.window = MinuteWindow()
        self._routes()

    def set_faults(self, **changes: Any) -> None:
        """Change the faults; a new rate limit starts from an empty minute."""
        super().set_faults(**changes)
        if "rate_limit" in changes:
            with self.lock:
                self.window.clear()

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
        limited = self._rate_limited(limit)
        if limited is not None:
            return limited
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

    def _rate_limited(self, limit: int | None) -> Response | None:
        """A 429 when the injected `limit` is used up; otherwise count the request."""
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
        app.register_error_handler(Invalid, invalid)
        app.register_error_handler(HTTPException, http_error)
        routes = [
            *ZendeskApi(self).routes(),
            *SandboxControl(self).routes(),
            *TicketsPage(self).routes(),
        ]
        for method, rule, view in routes:
            app.add_url_rule(rule, view_func=view, methods=[method])
