"""Building a zenpy client for any ZENDESK_URL, https://acme.zendesk.com or http://127.0.0.1:PORT."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit

import requests
from requests import Response
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential
from urllib3.exceptions import NewConnectionError
from zenpy import Zenpy

from integrations.errors import Retryable
from integrations.queue.ratelimit import RateLimiter

DEFAULT_TIMEOUT = 15.0
# The Idempotency-Key sent on the POSTs made inside `idempotent(key)`.
_IDEMPOTENCY_KEY: ContextVar[str | None] = ContextVar("zendesk_idempotency_key", default=None)


@contextmanager
def idempotent(key: str) -> Iterator[None]:
    """Send `Idempotency-Key: key` on the creates made inside (zenpy has no way to add a
    header to one request). Zendesk answers a repeat of the same create with its first
    answer for two hours (developer.zendesk.com, ticketing API introduction,
    "Idempotency"), so such a create may be resent within the call."""
    token = _IDEMPOTENCY_KEY.set(key)
    try:
        yield
    finally:
        _IDEMPOTENCY_KEY.reset(token)


def zenpy_client(
    url: str,
    email: str,
    *,
    token: str | None = None,
    oauth_token: str | None = None,
    session: requests.Session | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Zenpy:
    """A real zenpy client for `url`; `session` lets the caller own the HTTP layer."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    subdomain, _, domain = host.partition(".")
    # zenpy builds https://{subdomain}.{domain}; these two variables are its
    # documented overrides for any other base URL (the sandbox, a proxy).
    # A worker talks to exactly one Zendesk, so setting them process-wide is safe.
    os.environ["ZENPY_FORCE_SCHEME"] = parts.scheme
    os.environ["ZENPY_FORCE_NETLOC"] = parts.netloc
    return Zenpy(
        subdomain=subdomain or host,
        domain=domain or host,
        email=email,
        token=token,
        oauth_token=None if token else oauth_token,
        session=session,
        timeout=timeout,
        # Tickets are cached for 30 s otherwise; the idempotency check must see Zendesk itself.
        disable_cache=True,
    )


# 5xx and connection errors are retried here, a few times within seconds;
# longer outages and rate limits become Retryable and are the job queue's business.
_TRANSIENT_TRIES = 3
# Pacing waits up to this long happen in place; longer ones reschedule the job.
PACING_SLEEP_LIMIT = 1.0


class GuardedSession(requests.Session):
    """The HTTP layer under zenpy: shared rate limit, short retries, and no sleeping on 429."""

    def __init__(self, limiter: RateLimiter | None = None, *, backoff: float = 0.5) -> None:
        super().__init__()
        self.limiter = limiter
        self.backoff = backoff

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Response:
        """Send one API request; raise Retryable instead of letting zenpy sleep or give up."""
        key = _IDEMPOTENCY_KEY.get() if _creates(method) else None
        if key is not None:
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "Idempotency-Key": key}
        retrying = Retrying(
            stop=stop_after_attempt(_TRANSIENT_TRIES),
            wait=wait_exponential(multiplier=self.backoff, max=4),
            retry=retry_if_exception_type(_Transient),
            reraise=True,
        )
        try:
            return retrying(self._send_once, method, url, *args, **kwargs)
        except _Transient as exc:
            raise Retryable(f"Zendesk: {exc}", retry_after=None) from None

    def _send_once(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> Response:
        if self.limiter is not None:
            # Short pacing waits are slept; rate-limit waits reschedule the job.
            self.limiter.acquire(sleep_up_to=PACING_SLEEP_LIMIT)
        # A create sent with an Idempotency-Key can be sent again: Zendesk answers the
        # repeat with the first create's answer instead of making a second ticket.
        resendable = not _creates(method) or "Idempotency-Key" in (kwargs.get("headers") or {})
        try:
            response = super().request(method, url, *args, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            if not resendable and not _never_sent(exc):
                # The create may have reached Zendesk: a resend could make a second
                # ticket. The job's retry looks it up by external_id first.
                raise Retryable(f"{type(exc).__name__} creating at {_where(url)}") from None
            raise _Transient(f"{type(exc).__name__} talking to {_where(url)}") from None
        if self.limiter is not None:
            wait = self.limiter.observe(response.status_code, response.headers)
        else:
            wait = None
        if response.status_code == 429:
            raise Retryable("Zendesk rate limited the request (429)", retry_after=wait)
        if response.status_code >= 500:
            if not resendable:
                # A 5xx does not prove nothing was created (a proxy's 502/504 after
                # Zendesk took it): not resent here, for the same reason as above.
                raise Retryable(f"{_where(url)} answered {response.status_code} to a create")
            raise _Transient(f"{_where(url)} answered {response.status_code}")
        return response


def _creates(method: str | bytes) -> bool:
    # POST is the method that is not safe to repeat (tickets, uploads, users).
    text = method.decode() if isinstance(method, bytes) else method
    return text.upper() == "POST"


def _never_sent(exc: Exception) -> bool:
    """True when the request surely never reached Zendesk: no connection was made."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


class _Transient(Exception):
    """A failure worth a quick retry inside the call."""


def _where(url: str | bytes) -> str:
    text = url.decode() if isinstance(url, bytes) else url
    parts = urlsplit(text)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
