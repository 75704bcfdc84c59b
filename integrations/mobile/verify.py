"""App keys: `Authorization: Bearer <key>`, checked against MOBILE_API_KEYS in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from integrations.errors import Rejected

REALM = "feedback-hub mobile API"


class Unauthorized(Rejected):
    """401 with the WWW-Authenticate header RFC 6750 asks for."""

    def __init__(self, reason: str, *, invalid_token: bool) -> None:
        super().__init__(401, reason)
        challenge = f'Bearer realm="{REALM}"'
        if invalid_token:
            challenge += ', error="invalid_token"'
        self.headers = {"WWW-Authenticate": challenge}


def app_for(authorization: str | None, keys: Mapping[str, str]) -> str:
    """The app whose key the Authorization header carries; Unauthorized otherwise."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(
            "send the app's API key as 'Authorization: Bearer <key>'", invalid_token=False
        )
    # Digests have equal lengths, so compare_digest's time says nothing about the
    # key's length; every key is compared, so it says nothing about which matched.
    offered = hashlib.sha256(token.encode()).digest()
    found = None
    for app_id, key in keys.items():
        if hmac.compare_digest(offered, hashlib.sha256(key.encode()).digest()):
            found = app_id
    if found is None:
        raise Unauthorized("the API key is not valid", invalid_token=True)
    return found
