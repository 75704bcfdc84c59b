"""How Zendesk and Slack sign the requests they send; the one place the sandboxes,
`feedback-hub simulate` and the hub's verifier tests take signatures from."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime

from slack_sdk.signature import SignatureVerifier


def zendesk_timestamp(now: float | None = None) -> str:
    """A webhook timestamp as Zendesk sends it: ISO 8601, UTC, seconds (2021-03-25T05:09:27Z)."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    """base64(HMAC-SHA256(secret, timestamp + body)): no separator, base64 rather than hex.

    Zendesk's "Verifying webhook authenticity" documents exactly this.
    """
    mac = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def zendesk_webhook_headers(
    secret: str,
    body: bytes,
    *,
    webhook_id: str,
    account_id: int,
    timestamp: str | None = None,
    invocation_id: str | None = None,
) -> dict[str, str]:
    """The headers of one signed Zendesk webhook request carrying `body`."""
    timestamp = timestamp or zendesk_timestamp()
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Zendesk Webhook",
        "X-Zendesk-Webhook-Signature": zendesk_signature(secret, timestamp, body),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
        "X-Zendesk-Webhook-Id": webhook_id,
        "X-Zendesk-Webhook-Invocation-Id": invocation_id or str(uuid.uuid4().int)[:14],
        "X-Zendesk-Account-Id": str(account_id),
    }


def slack_signature(secret: str, timestamp: str, body: bytes | str) -> str:
    """`v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}`, computed by slack_sdk itself."""
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    assert signature is not None, "slack_sdk returns None only without a secret"
    return signature


def slack_headers(
    secret: str, body: bytes | str, *, timestamp: str | None = None, content_type: str | None = None
) -> dict[str, str]:
    """The headers Slack sends with a signed request carrying `body`."""
    timestamp = timestamp or str(int(time.time()))
    return {
        "Content-Type": content_type or "application/x-www-form-urlencoded",
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": slack_signature(secret, timestamp, body),
    }
