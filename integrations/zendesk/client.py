"""Building a zenpy client for any ZENDESK_URL, https://acme.zendesk.com or http://127.0.0.1:PORT."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import requests
from zenpy import Zenpy

DEFAULT_TIMEOUT = 15.0


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
