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


def feedback_body(n: int, text: str, **fields: str) -> bytes:
    """The n-th of many distinct `/feedback <text>` invocations, with the fields Slack sends
    (its docs' example values); `fields` replace any of them."""
    return command_body(
        **{
            "token": "gIkuvaNzQIHg97ATvDxqgjtO",
            "team_id": "T0001",
            "team_domain": "example",
            "channel_id": "C2147483705",
            "channel_name": "test",
            "user_id": f"U{n}",
            "user_name": "Steve",
            "command": "/feedback",
            "text": text,
            "response_url": f"https://hooks.slack.com/commands/1234/{n}",
            # One per invocation: the report's idempotency key.
            "trigger_id": f"13345224609.738474920.{n:032x}",
            "api_app_id": "A123456",
            **fields,
        }
    )


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
