"""Slack's v0 request signatures, checked on the raw body before anything parses it."""

from __future__ import annotations

from collections.abc import Mapping

from slack_sdk.signature import Clock, SignatureVerifier
from werkzeug.datastructures import Headers

from integrations.errors import Rejected

# Slack's documented replay window (and slack_sdk's): five minutes either way.
MAX_AGE_SECONDS = 5 * 60
# Enough digits for any time this side of the year 33658.
UNIX_DIGITS = 12


class SlackVerifier:
    """Checks X-Slack-Signature over `v0:{timestamp}:{raw body}`; raises Rejected(401) otherwise."""

    def __init__(self, signing_secret: str, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self._verifier = SignatureVerifier(signing_secret, clock=self.clock)

    def verify(self, body: bytes, headers: Mapping[str, str] | Headers) -> None:
        """Return when Slack signed `body` within five minutes; raise Rejected(401) if not."""
        timestamp = headers.get("X-Slack-Request-Timestamp")
        signature = headers.get("X-Slack-Signature")
        if not timestamp or not signature:
            raise Rejected(401, "missing X-Slack-Signature or X-Slack-Request-Timestamp")
        # Slack sends whole seconds in decimal digits. Anything else is refused before any
        # arithmetic: a 400-digit number once overflowed the float subtraction (a 500).
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= UNIX_DIGITS):
            raise Rejected(401, "X-Slack-Request-Timestamp is not a Unix time")
        age = abs(self.clock.now() - int(timestamp))
        # Said apart from a bad signature, so an operator with a drifting clock sees why.
        if age > MAX_AGE_SECONDS:
            raise Rejected(401, "the request timestamp is more than 5 minutes from now")
        try:
            valid = self._verifier.is_valid(body, timestamp, signature)
        except UnicodeDecodeError:
            # slack_sdk signs text; Slack only ever sends UTF-8, so this body is not Slack's.
            valid = False
        if not valid:
            raise Rejected(401, "the Slack signature does not match this request")
