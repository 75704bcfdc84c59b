"""Signed Slack requests for tests, the end-to-end run and the benchmark: real signatures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import Clock

from integrations.sandbox.signing import slack_headers

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture_body(name: str) -> bytes:
    """A slash command fixture's form body, as Slack sends it."""
    return (FIXTURES / name).read_bytes().rstrip(b"\n")


def fixture_payload(name: str) -> dict[str, Any]:
    """An interaction fixture's payload."""
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def command_body(**fields: str) -> bytes:
    """A slash command form body with these fields (in the order given)."""
    return urlencode(fields).encode()


def interaction_body(payload: dict[str, Any]) -> bytes:
    """An interaction's form body: `payload=<url-encoded JSON>`, as Slack sends it."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed_headers(secret: str, body: bytes, timestamp: int | str | None = None) -> dict[str, str]:
    """The headers Slack sends with `body`, signed with slack_sdk's own algorithm."""
    return slack_headers(secret, body, timestamp=None if timestamp is None else str(timestamp))


class FixedClock(Clock):
    """A clock for SignatureVerifier that always says `now`."""

    def __init__(self, now: float) -> None:
        self.value = now

    def now(self) -> float:
        """The fixed time."""
        return self.value
