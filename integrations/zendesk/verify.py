"""Zendesk's webhook signature: HMAC-SHA256 over the timestamp and the raw body, base64."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from werkzeug.datastructures import Headers

from integrations.errors import Rejected

SIGNATURE = "X-Zendesk-Webhook-Signature"
TIMESTAMP = "X-Zendesk-Webhook-Signature-Timestamp"
INVOCATION = "X-Zendesk-Webhook-Invocation-Id"
WEBHOOK_ID = "X-Zendesk-Webhook-Id"


class ZendeskVerifier:
    """Checks base64(HMAC-SHA256(secret, timestamp + raw body)); raises Rejected(401) otherwise.

    Zendesk's "Verifying webhook authenticity": no separator between timestamp and
    body, and the digest is base64, not hex.
    """

    def __init__(
        self, secret: str, window_seconds: int = 300, clock: Callable[[], float] = time.time
    ) -> None:
        self._secret = secret.encode()
        self.window = window_seconds
        self.clock = clock

    def signature(self, timestamp: str, body: bytes) -> str:
        """The signature Zendesk sends for this timestamp and body."""
        mac = hmac.new(self._secret, timestamp.encode() + body, hashlib.sha256)
        return base64.b64encode(mac.digest()).decode()

    def verify(self, body: bytes, headers: Headers | Mapping[str, str]) -> None:
        """Return when Zendesk signed `body` within the window; raise Rejected(401) if not."""
        signature = headers.get(SIGNATURE)
        timestamp = headers.get(TIMESTAMP)
        if not signature or not timestamp:
            raise Rejected(401, f"missing {SIGNATURE} or {TIMESTAMP}")
        try:
            moment = datetime.fromisoformat(timestamp.strip())
        except ValueError:
            raise Rejected(401, f"{TIMESTAMP} is not an ISO 8601 time") from None
        # Zendesk sends UTC with a Z; a time without a zone is read as UTC too.
        signed_at = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
        # Said apart from a bad signature, so an operator with a drifting clock sees why.
        if abs(self.clock() - signed_at) > self.window:
            raise Rejected(
                401, f"the webhook timestamp is more than {self.window} seconds from now"
            )
        expected = self.signature(timestamp, body)
        if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
            raise Rejected(401, "the Zendesk webhook signature does not match this request")
